package offsets

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The offsets topic is created so that compaction actually runs (small, time-bounded
// segments: the active segment is never cleaned) and never loses a position to retention.
func TestEnsureTopicLetsCompactionRun(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := EnsureTopic(ctx, adm, "_off", 1); err != nil {
		t.Fatal(err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "_off")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("_off", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	for k, want := range map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "segment.ms": "900000",
		"segment.bytes": "16777216", "min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "900000"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

// A Reader reads each committed record once: a second Read after nothing was committed
// fetches nothing, and after a commit it reads only from where it stopped.
func TestReaderReadsOnlyWhatIsNew(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Only the offsets topic is consumed here (fetches name topics by id, not by name).
	var (
		mu        sync.Mutex
		fetchFrom []int64 // distinct consecutive fetch offsets
		fetches   atomic.Int32
	)
	c.ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.FetchRequest).Topics {
			for _, p := range tp.Partitions {
				fetches.Add(1)
				if len(fetchFrom) == 0 || fetchFrom[len(fetchFrom)-1] != p.FetchOffset {
					fetchFrom = append(fetchFrom, p.FetchOffset)
				}
			}
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	rcl, _ := kgo.NewClient(append(opts, ReaderOpts()...)...)
	defer rcl.Close()
	if err := EnsureTopic(ctx, kadm.NewClient(rcl), "_off", 1); err != nil {
		t.Fatal(err)
	}
	prod, _ := kgo.NewClient(append(opts, kgo.TransactionalID("t"))...)
	defer prod.Close()
	write := func(pipeline string, tx uint64) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		r := Record{Pos: change.Position{Tx: tx}, Complete: true}
		if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", pipeline)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(rcl, "_off", "a")
	if _, ok, err := r.Read(ctx); ok || err != nil {
		t.Fatalf("empty topic: ok=%v err=%v", ok, err)
	}
	write("a", 10)
	write("b", 11)
	if got, ok, err := r.Read(ctx); !ok || err != nil || got.Pos.Tx != 10 {
		t.Fatalf("first read = %+v %v %v", got, ok, err)
	}
	n := fetches.Load()
	if got, ok, err := r.Read(ctx); !ok || err != nil || got.Pos.Tx != 10 {
		t.Fatalf("second read = %+v %v %v", got, ok, err)
	}
	if fetches.Load() != n {
		t.Errorf("a read with nothing new committed fetched (%d fetches, was %d)", fetches.Load(), n)
	}
	write("b", 12) // another pipeline's record: "a" keeps its own
	write("a", 20)
	if got, ok, err := r.Read(ctx); !ok || err != nil || got.Pos.Tx != 20 {
		t.Fatalf("third read = %+v %v %v", got, ok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fetchFrom) < 2 || fetchFrom[0] != 0 || fetchFrom[1] == 0 {
		t.Errorf("fetch offsets %v: the third read must start where the first stopped, not at 0", fetchFrom)
	}
}
