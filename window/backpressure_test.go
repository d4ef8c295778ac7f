package window

import (
	"bytes"
	"context"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchCounter follows how far into the input the job's client has fetched: the offset
// after the last record buffered, per partition. It counts offsets, not records, so that
// records fetched again after an aborted transaction or a rebalance are not counted twice.
type fetchCounter struct {
	topic string
	next  [2]atomic.Int64
}

func (f *fetchCounter) OnFetchRecordBuffered(r *kgo.Record) {
	if r.Topic != f.topic {
		return
	}
	p := &f.next[r.Partition]
	for {
		n := p.Load()
		if r.Offset+1 <= n || p.CompareAndSwap(n, r.Offset+1) {
			return
		}
	}
}

// fetched is how many input records lie before the fetch positions; the input's offsets
// start at 0 with no gaps (its producer is not transactional).
func (f *fetchCounter) fetched() int64 { return f.next[0].Load() + f.next[1].Load() }

// When producing falls behind (every produce request to the broker takes 100 ms), the job's
// fetching pauses: the input records fetched never run more than a few fetches ahead of
// those committed, however large the backlog. A consumer that fetched ahead without bound
// would hold the whole backlog in memory.
func TestJobFetchingPausesWhileProducingLags(t *testing.T) {
	const input = "shop.public.orders"
	c, _, opts, srcl := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.MaxBufferedRecords(1<<20),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": input}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	// The backlog: 20,000 orders in uncompressed batches of 16 KiB, far more than one fetch
	// of 2 partitions at 64 KiB each.
	const backlog = 20_000
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var rec encode.Record
	for i := 0; i < backlog; i++ {
		ev := change.Event{Op: change.OpCreate, Table: ordersTable, Pos: change.Position{Tx: uint64(i + 1)}, CommitTime: at.Add(time.Duration(i) * time.Millisecond), TxID: "1",
			After: []change.Value{{State: change.Present, Int: int64(i)}, {State: change.Present, Int: int64(i % 50)},
				{State: change.Present, Str: big.NewRat(int64(i), 100).FloatString(2)}}}
		if err := enc.Encode(ctx, &ev, &rec); err != nil {
			t.Fatal(err)
		}
		cl.Produce(ctx, &kgo.Record{Topic: input, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// From now on the broker takes 100 ms over every produce request.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(100 * time.Millisecond)
		return nil, nil, false
	})

	fetched := &fetchCounter{topic: input}
	jobOpts := append(append([]kgo.Opt{}, opts...), kgo.FetchMaxPartitionBytes(64<<10), kgo.WithHooks(fetched))
	job, err := New(Config{Spec: ordersJob(input), KafkaOpts: jobOpts, Registry: srcl, InstanceID: "a", Partitions: 2, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()

	// One fetch holds at most 2 x 64 KiB of input (about 1,000 orders); one is processed while
	// the next is buffered. Allow five fetches ahead.
	const bound = 5_000
	var ahead int64
	for job.Stats().RecordsIn < backlog/2 && ctx.Err() == nil {
		ahead = max(ahead, fetched.fetched()-int64(job.Stats().RecordsIn))
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if in := job.Stats().RecordsIn; in < backlog/2 {
		t.Fatalf("the job committed only %d of %d orders", in, backlog)
	}
	t.Logf("fetched at most %d orders ahead of those committed (bound %d; %d transactions aborted)", ahead, bound, job.Stats().Aborts)
	if ahead > bound {
		t.Errorf("the job fetched %d orders ahead of those committed, over %d: fetching did not pause while producing lagged", ahead, bound)
	}
}
