package window

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Stream time is the minimum over the input partitions of the largest event time each
// reached: a partition read ahead of another closes no window the other still feeds; an input
// partition that is expected holds stream time until it reports (or is released); the
// per-partition times survive a restore from the changelog.
func TestStreamTimeIsMinimumOverInputPartitions(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	in0, in1, in2 := Origin{Topic: "in", Partition: 0}, Origin{Topic: "in", Partition: 1}, Origin{Topic: "in", Partition: 2}
	p := NewProcessor(s)
	p.Expect([]Origin{in0, in1, in2})
	base := int64(1_700_000_040) * sec // a minute's start
	add := func(o Origin, at int64) {
		t.Helper()
		if err := p.Add(Rec{Group: []Value{Long(1)}, T: at, Sign: 1, Vals: []Value{Null}, Origin: o}); err != nil {
			t.Fatal(err)
		}
	}
	// Partition 0's chunk of a backlog: ten minutes.
	for m := int64(0); m < 10; m++ {
		add(in0, base+m*60*sec)
	}
	if res, late := p.TakeResults(); len(res) != 0 || len(late) != 0 {
		t.Fatalf("partitions 1 and 2 have not reported: nothing may close, got %d results, %d late", len(res), len(late))
	}
	// Partition 1 reports its first minute; partition 2 was read and had no event time.
	add(in1, base+5*sec)
	p.Watermark(in2, noTime)
	if res, late := p.TakeResults(); len(res) != 0 || len(late) != 0 {
		t.Fatalf("stream time is partition 1's (base+5s): nothing may close, got %d results, %d late", len(res), len(late))
	}
	// Partition 1 moves on: the first minute closes (end + grace = base+70s).
	p.Watermark(in1, base+70*sec)
	res, late := p.TakeResults()
	if len(res) != 1 || res[0].Start != base || res[0].Aggs[0].I != 2 || len(late) != 0 {
		t.Fatalf("want the first minute with 2 events, got %+v, late %d", res, len(late))
	}
	if st, _ := p.StreamTime(); st != base+70*sec {
		t.Fatalf("stream time %d, want %d", st, base+70*sec)
	}

	// Restored from the changelog, the processor knows each partition's time.
	q := NewProcessor(s)
	for _, kv := range p.TakeChanges() {
		if err := q.Restore(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	q.Expect([]Origin{in0, in1, in2})
	if len(q.wm.waiting) != 0 {
		t.Fatalf("after a restore, partitions still waited for: %v", q.wm.waiting)
	}
	if err := q.Add(Rec{Group: []Value{Long(1)}, T: base + 65*sec, Sign: 1, Vals: []Value{Null}, Origin: in1}); err != nil {
		t.Fatal(err)
	}
	if _, late := q.TakeResults(); len(late) != 0 {
		t.Fatalf("partition 1's record at base+65s went late after a restore")
	}
	q.Watermark(in1, base+10*60*sec) // partition 0 is at base+9m: stream time follows it
	res, _ = q.TakeResults()
	if len(res) != 7 { // minutes 1..7 close (minute 8 ends at base+9m, + grace)
		t.Fatalf("want 7 windows closed at stream time base+9m, got %d", len(res))
	}
}

// An input partition that has nothing more to read does not hold stream time back: orders
// keep arriving on partition 0 only, and the first minute closes by their event time (no
// wall-clock ticks), as it would on one partition.
func TestQuietInputPartitionDoesNotHoldWindows(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 2)
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 20; i++ {
		orders = append(orders, order{id: int64(i), customer: 1, cents: 100, at: base.Add(time.Duration(i) * time.Second)})
	}
	produceOrders(t, ctx, cl, srcl, input, orders) // both partitions get some
	// Then partition 0 alone goes on, minutes later.
	later := []order{{id: 100, customer: 2, cents: 1, at: base.Add(3 * time.Minute)}}
	pcl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	spec := ordersJob(input)
	spec.Window.Grace = 10 * time.Second
	spec.IdleTimeout = 0
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(2 * time.Second) // the first orders are through
	produceOrdersTo(t, ctx, pcl, srcl, input, 0, later)
	got := readResults(t, ctx, opts, srcl, spec.Output, 1, 20*time.Second)
	if len(got) != 1 || got[0].orders != 20 {
		t.Fatalf("want the first minute closed with 20 orders once partition 0 moved on, got %+v", got)
	}
}

// produceOrdersTo writes orders as produceOrders does, all into one partition.
func produceOrdersTo(t *testing.T, ctx context.Context, cl *kgo.Client, srcl *sr.Client, topic string, partition int32, orders []order) {
	t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": topic}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	var rec encode.Record
	for i, o := range orders {
		ev := change.Event{Op: change.OpCreate, Table: ordersTable, Pos: change.Position{Tx: uint64(i + 1)}, CommitTime: o.at, TxID: "1",
			After: []change.Value{{State: change.Present, Int: o.id}, {State: change.Present, Int: o.customer},
				{State: change.Present, Str: "0.01"}}}
		if err := enc.Encode(ctx, &ev, &rec); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Key: rec.Key, Value: rec.Value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// A released (idle) input partition is left out of the minimum until its next event time.
func TestIdleInputPartitionLeftOutUntilItsNextTime(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	a, b := Origin{Topic: "in", Partition: 0}, Origin{Topic: "in", Partition: 1}
	p := NewProcessor(s)
	p.Watermark(a, 10*sec)
	p.Watermark(b, 100*sec)
	if st, _ := p.StreamTime(); st != 10*sec {
		t.Fatalf("stream time %d, want partition 0's 10s", st/sec)
	}
	p.Watermark(a, idleTime)
	if st, _ := p.StreamTime(); st != 100*sec {
		t.Fatalf("partition 0 idle: stream time %ds, want partition 1's 100s", st/sec)
	}
	p.Watermark(b, 200*sec)
	p.Watermark(a, 150*sec) // partition 0 has event times again: it counts
	p.Watermark(b, 300*sec)
	if st, _ := p.StreamTime(); st != 200*sec {
		t.Fatalf("stream time %ds, want 200s (partition 0 at 150s counts again; stream time never goes back)", st/sec)
	}
}
