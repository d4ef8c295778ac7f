package offsets

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The offsets topic is shared by every pipeline. Another pipeline's open transaction (its
// instance was SIGKILLed and nobody has fenced it yet) holds the partition's last stable
// offset back, but it must not hide what this pipeline committed after it: a pipeline that
// resumed from an older position would publish its last batches twice.
func TestReaderSeesCommitsBehindAnotherOpenTransaction(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	rcl, _ := kgo.NewClient(append(opts, ReaderOpts()...)...)
	defer rcl.Close()
	if err := EnsureTopic(ctx, kadm.NewClient(rcl), "_off", 1); err != nil {
		t.Fatal(err)
	}
	commit := func(prod *kgo.Client, pipeline string, tx uint64, end *kgo.TransactionEndTry) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		r := Record{Pos: change.Position{Tx: tx}, Complete: true}
		if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", pipeline)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end != nil {
			if err := prod.EndTransaction(ctx, *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, _ := kgo.NewClient(append(opts, kgo.TransactionalID("cdcd-a"))...)
	defer a.Close()
	b, _ := kgo.NewClient(append(opts, kgo.TransactionalID("cdcd-b"))...)
	defer b.Close()

	tryCommit, tryAbort := kgo.TryCommit, kgo.TryAbort
	commit(a, "a", 10, &tryCommit)
	commit(b, "b", 50, nil) // b's instance dies with its transaction open
	commit(a, "a", 20, &tryCommit)
	commit(a, "a", 25, &tryAbort) // aborted: never a position
	if got, ok, err := NewReader(rcl, "_off", "a").Read(ctx); !ok || err != nil || got.Pos.Tx != 20 {
		t.Fatalf("read of a = %+v %v %v; want its last committed position 20", got.Pos, ok, err)
	}
	r := NewReader(rcl, "_off", "b")
	if got, ok, err := r.Read(ctx); ok || err != nil {
		t.Fatalf("b's open transaction read as committed: %+v %v %v", got.Pos, ok, err)
	}
	if err := b.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := r.Read(ctx); !ok || err != nil || got.Pos.Tx != 50 {
		t.Fatalf("b after its commit = %+v %v %v; want 50", got.Pos, ok, err)
	}
}
