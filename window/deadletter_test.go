package window

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// produceUnprocessable writes, after the orders already in input, the three kinds of record a
// job can never process: an update without a before image (table mode), a record that is not
// in the registry's wire format, and one whose Avro body ends early.
func produceUnprocessable(t *testing.T, ctx context.Context, cl *kgo.Client, srcl *sr.Client, input string, at time.Time) {
	t.Helper()
	rec := updateWithoutBefore(t, ctx, srcl, input, at)
	short := append([]byte{}, rec.Value[:8]...)
	for _, r := range []*kgo.Record{
		{Topic: input, Key: rec.Key, Value: rec.Value},
		{Topic: input, Key: []byte("k"), Value: []byte(`{"not":"avro"}`)},
		{Topic: input, Key: []byte("k"), Value: short},
	} {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// updateWithoutBefore encodes, as cdcd would, an update of order 1 under the default replica
// identity: no before image.
func updateWithoutBefore(t *testing.T, ctx context.Context, srcl *sr.Client, input string, at time.Time) encode.Record {
	t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": input}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	ev := change.Event{Op: change.OpUpdate, Table: ordersTable, Pos: change.Position{Tx: 9}, CommitTime: at, TxID: "2",
		After: []change.Value{{State: change.Present, Int: 1}, {State: change.Present, Int: 1}, {State: change.Present, Str: "2.00"}}}
	var rec encode.Record
	if err := enc.Encode(ctx, &ev, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// With a dead-letter topic, a table-mode job sends the records it can never process there,
// in the same transaction as its input offsets, with the class, the cause and its fix and the
// record's origin in headers, and goes on: the windows hold every other change.
func TestJobDeadLettersWhatItCannotProcess(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at}})
	produceUnprocessable(t, ctx, cl, srcl, input, at)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 2, customer: 1, cents: 250, at: at}})

	spec := ordersJob(input)
	spec.Mode, spec.Ops, spec.Time = ModeTable, "", Path{"after", "id"} // an epoch-ms column
	spec.DeadLetter = spec.Output + ".dlq"
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()

	got := readResults(t, ctx, opts, srcl, spec.Output, 1, 40*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the job stopped: %v", err)
	}
	if len(got) != 1 || got[0].orders != 2 || got[0].revenue != "3.50" {
		t.Fatalf("want one window of orders 1 and 2 (2 orders, 3.50), got %+v", got)
	}
	letters := readLate(t, ctx, opts, spec.DeadLetter)
	if len(letters) != 3 {
		t.Fatalf("want 3 dead letters, got %d: %q", len(letters), letters)
	}
	for i, want := range []string{
		"cdcd.error.class=need_before_image cdcd.error.message=",
		"cdcd.error.class=undecodable_value cdcd.error.message=",
		"cdcd.error.class=undecodable_value cdcd.error.message=",
	} {
		if !strings.HasPrefix(letters[i], want) {
			t.Errorf("dead letter %d: want %q first, got %q", i, want, letters[i])
		}
		for _, h := range []string{"cdcd.window.job=orders_per_customer", "cdcd.origin=" + input + "[0]@", "fix:"} {
			if !strings.Contains(letters[i], h) {
				t.Errorf("dead letter %d lacks %q: %q", i, h, letters[i])
			}
		}
	}
	if !strings.Contains(letters[0], "REPLICA IDENTITY FULL") {
		t.Errorf("the first dead letter does not give the fix: %q", letters[0])
	}
	if st := job.Stats(); st.DeadLetters != 3 {
		t.Errorf("Stats().DeadLetters = %d, want 3", st.DeadLetters)
	}
}

// Without a dead-letter topic a record that is not in the registry's wire format stops the
// job with the fix; retrying would read it again forever.
func TestJobStopsOnRecordNotInWireFormat(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, 40*time.Second, input, 1)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at}})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: input, Value: []byte(`{"not":"avro"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	job, err := New(Config{Spec: ordersJob(input), KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	err = job.Run(ctx)
	var fe *FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "wire format") || !strings.Contains(err.Error(), "on_error: dlq") {
		t.Fatalf("want the job stopped, naming the record and the fix, got %v", err)
	}
}

// A table-mode job cannot retract the rows a TRUNCATE removed: without a dead-letter topic it
// stops with the fix instead of counting them on silently.
func TestJobTableModeTruncateStops(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at}})
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": input}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	var rec encode.Record
	if err := enc.Encode(ctx, &change.Event{Op: change.OpTruncate, Table: ordersTable, Pos: change.Position{Tx: 9}, CommitTime: at, TxID: "2"}, &rec); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: input, Key: rec.Key, Value: rec.Value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	spec := ordersJob(input)
	spec.Mode, spec.Ops, spec.Time = ModeTable, "", Path{"after", "id"}
	err = runUntilFatal(t, ctx, Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1})
	if err == nil || !strings.Contains(err.Error(), "TRUNCATE") || unprocessable(err) != ClassTruncate {
		t.Fatalf("want the job stopped naming the TRUNCATE and the fix, got %v", err)
	}
}

// A late record's JSON holds text values as JSON strings (not quoted twice) and NULL as null.
func TestLateRecordJSONValues(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}, {Name: "status", Fn: FnLast, Field: Path{"after", "status"}}}
	s.GroupBy = []Path{{"after", "shop"}, {"after", "region"}}
	j, err := New(Config{Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	r := j.lateRecord(LateRec{Rec: Rec{Group: []Value{String("new"), Null}, Vals: []Value{Null, String("paid")}, T: 0, Sign: 1}, Reason: "window closed"})
	body := string(r.Value)
	for _, want := range []string{`"after.shop":"new"`, `"after.region":null`, `"status":"paid"`} {
		if !strings.Contains(body, want) {
			t.Errorf("late record %s lacks %s", body, want)
		}
	}
}
