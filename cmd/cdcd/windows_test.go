package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/window"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The lag watcher reports records not yet committed by the job's group and how long the job
// has been behind; a partition whose only unread records are a transaction's commit marker is
// caught up (lag 0), not 1 forever.
func TestWindowLagWatcher(t *testing.T) {
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
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, window.RepartitionTopic("orders")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	wm := metrics.NewWindowJobs(prometheus.NewRegistry())
	l := &lagWatcher{job: "orders", topics: []string{topic, window.RepartitionTopic("orders")}, kopts: opts, metrics: wm,
		log: slog.New(slog.DiscardHandler), interval: 10 * time.Second, parts: map[lagPartition]*lagHistory{}}
	check := func(step string, now time.Time, records, seconds float64) {
		t.Helper()
		if err := l.measure(ctx, adm, now); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := testutil.ToFloat64(wm.ConsumerLag.WithLabelValues("orders", topic, "0")); got != records {
			t.Errorf("%s: lag %v records, want %v", step, got, records)
		}
		if got := testutil.ToFloat64(wm.ConsumerLagSeconds.WithLabelValues("orders")); got != seconds {
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
		if _, err := adm.CommitOffsets(ctx, window.GroupID("orders"), offs); err != nil {
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

// A window job writing a topic a pipeline writes (or another job's) is refused before anything
// runs, naming both writers: results would mix with change records under one subject.
func TestWindowOutputCollidesWithPipelineTopic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders, public.customers]
windows:
  - name: per_customer
    input: {topics: [shop.public.orders]}
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: shop.public.customers}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	err := validateCommand(path, io.Discard)
	if err == nil {
		t.Fatal("a window output on a pipeline's topic was accepted")
	}
	for _, want := range []string{"topic shop.public.customers", "table public.customers of pipeline shop", "the output of window job per_customer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}
