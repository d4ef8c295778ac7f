package window

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A window whose state outgrows the changelog's record limit (count_distinct over many
// values) stops the job with the reason and the fix, instead of aborting and retrying the same
// input forever.
func TestJobStopsOnWindowStateOverRecordLimit(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 300; i++ {
		orders = append(orders, order{id: int64(i), customer: 1, cents: int64(i), at: at})
	}
	produceOrders(t, ctx, cl, srcl, input, orders)
	spec := ordersJob(input)
	spec.Aggs = append(spec.Aggs, AggSpec{Name: "ids", Fn: FnCountDistinct, Field: Path{"after", "id"}})
	err := runUntilFatal(t, ctx, Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1, MaxMessageBytes: 4000})
	if err == nil || !strings.Contains(err.Error(), "record limit") || !strings.Contains(err.Error(), "max_message_bytes") {
		t.Fatalf("want the job stopped with the window's size, the limit and the fix, got %v", err)
	}
}

// runUntilFatal runs a job for up to 20 s and returns the FatalError that stopped it (nil if
// it did not stop, or stopped otherwise).
func runUntilFatal(t *testing.T, ctx context.Context, cfg Config) error {
	t.Helper()
	job, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = job.Run(rctx)
	var fe *FatalError
	if !errors.As(err, &fe) {
		return nil
	}
	return err
}

// A registry that refuses the result schema (other than 409: incompatible) stops the job at
// start with the refusal and the fix, instead of retrying forever.
func TestJobStopsWhenRegistryRefusesResultSchema(t *testing.T) {
	const input = "shop.public.orders"
	_, reg, opts, srcl := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: time.Now()}})
	spec := ordersJob(input)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/subjects/"+spec.Output+"-") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error_code":42201,"message":"Invalid schema"}`))
		return true
	})
	err = runUntilFatal(t, ctx, Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1})
	if err == nil || !strings.Contains(err.Error(), "Invalid schema") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("want the job stopped with the registry's refusal and the fix, got %v", err)
	}
}

// A second input topic whose summed decimal has another scale would give results of another
// type: the job refuses to start, naming both topics, instead of failing on every record.
func TestJobRefusesInputsOfDifferentDecimalScale(t *testing.T) {
	const input, other = "shop.public.orders", "shop2.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, other); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at}})
	wide := *ordersTable
	wide.Columns = append([]change.Column{}, ordersTable.Columns...)
	wide.Columns[2].Precision, wide.Columns[2].Scale, wide.Columns[2].SourceType = 12, 4, "numeric(12,4)"
	enc, err := encode.New(encode.Config{Pipeline: "shop2", Connector: "postgresql", TopicPrefix: "shop2"}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	var rec encode.Record
	ev := change.Event{Op: change.OpCreate, Table: &wide, Pos: change.Position{Tx: 1}, CommitTime: at, TxID: "1",
		After: []change.Value{{State: change.Present, Int: 1}, {State: change.Present, Int: 1}, {State: change.Present, Str: "1.0000"}}}
	if err := enc.Encode(ctx, &ev, &rec); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: other, Key: rec.Key, Value: rec.Value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	spec := ordersJob(input)
	spec.Topics = []string{input, other}
	err = runUntilFatal(t, ctx, Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1})
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "decimal of another scale") {
		t.Fatalf("want the job refused naming %s and the scale, got %v", other, err)
	}
}
