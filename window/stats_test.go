package window

import (
	"context"
	"testing"
	"time"
)

// Stats counts what committed (one input partition, so the hour-later orders come last): every input change once, every result once, and the gauges
// show the owned partitions' stream time.
func TestJobStats(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 40; i++ { // two customers, windows of 10:00 and 10:01, then one at 11:00
		orders = append(orders, order{id: int64(i), customer: int64(i % 2), cents: 100, at: base.Add(time.Duration(i*3) * time.Second)})
	}
	orders = append(orders, order{id: 100, customer: 0, cents: 1, at: base.Add(time.Hour)}, order{id: 101, customer: 1, cents: 1, at: base.Add(time.Hour)})
	produceOrders(t, ctx, cl, srcl, input, orders)
	spec := ordersJob(input)
	spec.Window.Grace = 0
	spec.IdleTimeout = 0
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	got := readResults(t, ctx, opts, srcl, spec.Output, 4, 30*time.Second)
	// The results are committed; the transaction that wrote them was counted before End
	// returned to the loop, which may not have run ended yet: wait for the counters.
	var s Stats
	for ctx.Err() == nil {
		if s = job.Stats(); s.RecordsOut >= uint64(len(got)) && s.RecordsIn >= uint64(len(orders)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d results, want 4", len(got))
	}
	if s.RecordsIn != uint64(len(orders)) || s.RecordsOut != 4 || s.RecordsLate != 0 || s.Commits == 0 {
		t.Errorf("stats %+v: want %d in, 4 out, 0 late, some commits", s, len(orders))
	}
	if s.OpenWindows != 2 { // the 11:00 windows are open
		t.Errorf("open windows %d, want 2", s.OpenWindows)
	}
	hour := base.Add(time.Hour)
	for p, st := range s.StreamTime {
		if !st.Equal(hour) {
			t.Errorf("partition %d stream time %s, want %s", p, st, hour)
		}
	}
	if len(s.StreamTime) == 0 {
		t.Error("no stream time")
	}
}
