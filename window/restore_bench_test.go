package window

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkRestore measures how long a job takes to restore its state from the changelog on
// start: CDCD_BENCH_RESTORE_KEYS windows (default 1,000,000, one per group, as a job grouping
// by a high-cardinality key holds them) over 6 partitions, written by a transactional producer,
// restored read_committed up to the last stable offset. Against the real broker when
// CDCD_TEST_KAFKA is set (make stack-up), else against kfake.
//
//	CDCD_TEST_KAFKA=127.0.0.1:19092 go test -run '^$' -bench BenchmarkRestore -benchtime 1x ./window/
func BenchmarkRestore(b *testing.B) {
	keys := 1_000_000
	if v := os.Getenv("CDCD_BENCH_RESTORE_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("CDCD_BENCH_RESTORE_KEYS=%q: %v", v, err)
		}
		keys = n
	}
	const parts = 6
	var opts []kgo.Opt
	where := "kfake"
	if brokers := os.Getenv("CDCD_TEST_KAFKA"); brokers != "" {
		opts, where = []kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, brokers
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		opts = []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	spec := &Spec{Name: fmt.Sprintf("restore_bench_%d", time.Now().UnixNano()), Topics: []string{"in"}, Ops: "c",
		Time: Path{"source", "ts_ms"}, GroupBy: []Path{{"after", "customer_id"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour},
		Aggs:   []AggSpec{{Name: "orders", Fn: FnCount}}, Mode: ModeEvents, Output: "out"}
	topic := ChangelogTopic(spec.Name)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.TransactionalID("bench-"+spec.Name),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1<<20))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic); err != nil {
		b.Fatal(err)
	}
	// A restore first waits for the group's pending offset commits on the repartition topic.
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, RepartitionTopic(spec.Name)); err != nil {
		b.Fatal(err)
	}
	defer adm.DeleteTopics(context.Background(), topic, RepartitionTopic(spec.Name))

	// The state: one window per group, written as a job writes it, in transactions of 100k.
	t0 := time.Now()
	job := &Job{spec: spec, parts: parts}
	procs := make([]*Processor, parts)
	for p := range procs {
		procs[p] = NewProcessor(spec)
	}
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
	var bytes int64
	flush := func() {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for p, proc := range procs {
			for _, kv := range proc.TakeChanges() {
				bytes += int64(len(kv.Key) + len(kv.Value))
				cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Key: kv.Key, Value: kv.Value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			proc.TakeResults()
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < keys; i++ {
		r := Rec{Group: []Value{Long(int64(i))}, T: base + int64(i%1000), Sign: 1, Vals: []Value{Null}, Seq: uint64(i)}
		p := job.partitionOf(appendGroupKey(nil, &r))
		if err := procs[p].Add(r); err != nil {
			b.Fatal(err)
		}
		if (i+1)%100_000 == 0 {
			flush()
		}
	}
	flush()
	procs = nil
	b.Logf("%s: wrote %d keys (%d MB) to %s in %s", where, keys, bytes>>20, topic, time.Since(t0).Round(time.Millisecond))

	all := make([]int32, parts)
	for p := range all {
		all[p] = int32(p)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j, err := New(Config{Spec: spec, KafkaOpts: opts, InstanceID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		j.parts = parts
		t1 := time.Now()
		got, n, err := j.restore(ctx, all)
		took := time.Since(t1)
		if err != nil {
			b.Fatal(err)
		}
		if n != keys+2*parts { // and each partition's spec fingerprint and stream time
			b.Fatalf("restored %d keys, want %d windows, %d spec fingerprints and %d stream times", n, keys, parts, parts)
		}
		state := 0
		for _, p := range got {
			state += p.StateBytes()
		}
		b.ReportMetric(float64(keys)/took.Seconds(), "keys/s")
		b.ReportMetric(took.Seconds(), "s/restore")
		b.Logf("%s: restored %d keys (%d MB of state) in %s", where, n, state>>20, took.Round(time.Millisecond))
	}
}
