package window

import (
	"context"
	"errors"
	"github.com/hamba/avro/v2"
	"strings"
	"testing"
	"time"
)

// A job's state carries the spec that shaped it: a processor of a changed spec refuses the
// state, naming what changed and the fix; the same spec restores it.
func TestChangedSpecRefusesOldState(t *testing.T) {
	old := spec(WindowSpec{Type: Tumbling, Size: 5 * time.Minute, Grace: time.Minute})
	old.Aggs = []AggSpec{{Name: "n", Fn: FnCount}, {Name: "hi", Fn: FnMax, Field: Path{"after", "v"}}}
	p := NewProcessor(old)
	if err := p.Add(Rec{Group: []Value{Long(1)}, T: 1_700_000_000 * sec, Sign: 1, Vals: []Value{Null, Long(3)}}); err != nil {
		t.Fatal(err)
	}
	p.partitions = 3
	changes := p.TakeChanges()
	restore := func(s *Spec) error {
		q := NewProcessor(s)
		q.partitions = 3
		if s.Name == "more partitions" {
			q.partitions = 6
		}
		for _, kv := range changes {
			if err := q.Restore(kv.Key, kv.Value); err != nil {
				return err
			}
		}
		return nil
	}
	if err := restore(old); err != nil {
		t.Fatalf("the same spec: %v", err)
	}
	resized := *old
	resized.Window.Size = 10 * time.Minute
	swapped := *old
	swapped.Aggs = []AggSpec{old.Aggs[1], old.Aggs[0]}
	regrouped := *old
	regrouped.GroupBy = []Path{{"after", "region"}}
	repartitioned := *old
	repartitioned.Name = "more partitions"
	for name, c := range map[string]struct {
		s    *Spec
		want string
	}{"partitions": {&repartitioned, "partitions: 3 -> 6"}, "size": {&resized, "window.size: 5m0s -> 10m0s"}, "aggregates": {&swapped, "aggregates"}, "group_by": {&regrouped, "group_by"}} {
		err := restore(c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "new name") {
			t.Errorf("%s changed: got %v, want an error naming %q and the fix", name, err, c.want)
		}
	}
}

// A job restarted with a changed window size stops at once with a SpecChangedError naming
// the change, instead of emitting windows of both sizes for one group and start.
func TestJobWithChangedSpecRefusesToStart(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 2)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at}, {id: 2, customer: 2, cents: 100, at: at}})
	spec := ordersJob(input)
	spec.IdleTimeout = 0 // the windows stay open: state in the changelog
	run := func(s *Spec, d time.Duration) error {
		job, err := New(Config{Spec: s, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return job.Run(rctx)
	}
	done := make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	go func() {
		job, _ := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2})
		done <- job.Run(rctx)
	}()
	for changelogBytes(t, ctx, opts, ChangelogTopic(spec.Name)) == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	changed := *spec
	changed.Window.Size = 2 * time.Minute
	err := run(&changed, 30*time.Second)
	var sc *SpecChangedError
	if !errors.As(err, &sc) || !strings.Contains(err.Error(), "window.size: 1m0s -> 2m0s") {
		t.Fatalf("want the job stopped naming the changed size, got %v", err)
	}
	if err := run(spec, 5*time.Second); err != nil {
		t.Fatalf("the unchanged job: %v", err)
	}
}

// A sum over a text column names the aggregate's configuration key and a fix that works.
func TestSumOverTextNamesKeyAndFix(t *testing.T) {
	env := avro.MustParse(`{"type":"record","name":"Envelope","fields":[{"name":"after","type":["null",
		{"type":"record","name":"Value","fields":[{"name":"customer_id","type":"long"},{"name":"buyer","type":"string"}]}]}]}`)
	s := ordersJob("in")
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}, {Name: "buyers", Fn: FnSum, Field: Path{"after", "buyer"}}}
	j, err := New(Config{Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	err = j.buildSchemas(env)
	if err == nil || !strings.Contains(err.Error(), "aggregates[1]") || !strings.Contains(err.Error(), "after.buyer") || !strings.Contains(err.Error(), "fix: ") {
		t.Fatalf("want the key aggregates[1], the field and a fix, got %v", err)
	}
}
