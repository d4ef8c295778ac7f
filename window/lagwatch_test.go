package window

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The lag watcher reports records not yet committed by the job's group and how long the job
// has been behind; a partition whose only unread records are a transaction's commit marker is
// caught up (lag 0), not 1 forever.
func TestLagWatcher(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = "shop.public.orders"
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, RepartitionTopic("orders")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var last LagReport
	l := NewLagWatcher("orders", []string{topic, RepartitionTopic("orders")}, opts, 10*time.Second, nil, func(r LagReport) { last = r })
	defer l.lag.Close()
	check := func(step string, now time.Time, records int64, seconds float64) {
		t.Helper()
		if err := l.Measure(ctx, now); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var got int64 = -1
		for _, p := range last.Partitions {
			if p.Topic == topic && p.Partition == 0 {
				got = p.Records
			}
		}
		if got != records {
			t.Errorf("%s: lag %v records, want %v", step, got, records)
		}
		if got := last.Behind.Seconds(); got != seconds {
			t.Errorf("%s: lag %v s, want %v", step, got, seconds)
		}
	}
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	check("nothing committed", t0, 3, 0)
	check("still behind", t0.Add(10*time.Second), 3, 10)
	commit := func(at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, GroupID("orders"), offs); err != nil {
			t.Fatal(err)
		}
	}
	commit(3)
	check("caught up", t0.Add(20*time.Second), 0, 0)

	// One transactional record: the reader commits past it, not past the commit marker.
	tx, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.TransactionalID("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	check("one new record", t0.Add(30*time.Second), 2, 10) // the end was last where the job is 10 s ago
	commit(4)
	check("the marker is left", t0.Add(40*time.Second), 1, 0)
	check("the marker alone is caught up", t0.Add(50*time.Second), 0, 0)
}
