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

// Reset forgets a pipeline's committed position, or keeps it and accepts the source's
// acknowledged position; other pipelines' positions stay.
func TestReset(t *testing.T) {
	ctx, opts, commit := offsetsCluster(t, "writer")
	write := func(pipeline string, r Record) {
		t.Helper()
		if err := commit(pipeline, r); err != nil {
			t.Fatal(err)
		}
	}
	partial := Record{Pos: change.Position{Tx: 0x600, Index: 99}, AckPosition: 0x301}
	write("shop", partial)
	write("other", Record{Pos: change.Position{Tx: 0x700}, Complete: true, AckPosition: 0x700})

	// Accepting the source's position keeps Pos and raises AckPosition (never lowers it).
	prev, had, err := Reset(ctx, opts, "_off", "shop", "cdcd-shop", 10*time.Second, 0x500)
	if err != nil || !had || prev.Pos != partial.Pos {
		t.Fatalf("Reset accept: prev %+v had %v err %v", prev, had, err)
	}
	got, ok, err := Load(ctx, opts, "_off", "shop")
	if err != nil || !ok || got.Pos != partial.Pos || got.Complete || got.AckPosition != 0x500 {
		t.Fatalf("after accepting 0/500: %+v ok=%v err=%v", got, ok, err)
	}
	if _, _, err := Reset(ctx, opts, "_off", "shop", "cdcd-shop", 10*time.Second, 0x400); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := Load(ctx, opts, "_off", "shop"); got.AckPosition != 0x500 {
		t.Fatalf("accepting an older position lowered ack_lsn to %#x", got.AckPosition)
	}

	// Forgetting writes a tombstone: no position afterwards, and nothing to forget twice.
	if _, had, err := Reset(ctx, opts, "_off", "shop", "cdcd-shop", 10*time.Second, 0); err != nil || !had {
		t.Fatalf("Reset forget: had %v err %v", had, err)
	}
	if _, ok, err := Load(ctx, opts, "_off", "shop"); err != nil || ok {
		t.Fatalf("after forgetting: ok=%v err=%v, want no position", ok, err)
	}
	if _, had, err := Reset(ctx, opts, "_off", "shop", "cdcd-shop", 10*time.Second, 0); err != nil || had {
		t.Fatalf("forgetting nothing: had %v err %v", had, err)
	}
	if got, ok, _ := Load(ctx, opts, "_off", "other"); !ok || got.AckPosition != 0x700 {
		t.Fatalf("pipeline other's position changed: %+v ok=%v", got, ok)
	}
}

// A running instance that commits a newer position while cdcd reset-offsets works must either
// be fenced before the reset reads the position, or have its position kept: the reset never
// writes back a position older than one already committed.
func TestResetFencesBeforeReading(t *testing.T) {
	// The running instance writes with the pipeline's own transactional id.
	ctx, opts, write := offsetsCluster(t, "cdcd-shop")
	commit := func(r Record) error { return write("shop", r) }
	if err := commit(Record{Pos: change.Position{Tx: 0x600}, Complete: true, AckPosition: 0x600}); err != nil {
		t.Fatal(err)
	}
	newer := Record{Pos: change.Position{Tx: 0x900}, Complete: true, AckPosition: 0x900}
	var instErr error
	loaded := func() { instErr = commit(newer) }
	if _, _, err := reset(ctx, opts, "_off", "shop", "cdcd-shop", 10*time.Second, 0x650, loaded); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(ctx, opts, "_off", "shop")
	if err != nil || !ok {
		t.Fatalf("after reset: ok=%v err=%v", ok, err)
	}
	if instErr == nil && got.Pos != newer.Pos {
		t.Fatalf("the running instance committed position %v during the reset, and the reset wrote back the older %v", newer.Pos, got.Pos)
	}
	if instErr != nil && got.Pos != (change.Position{Tx: 0x600}) {
		t.Fatalf("instance was fenced (%v) but the position is %v, want the one committed before", instErr, got.Pos)
	}
}

// offsetsCluster is a kfake cluster with the offsets topic _off, and a writer that commits a
// pipeline's record in one transaction of transactional id txnID.
func offsetsCluster(t *testing.T, txnID string) (context.Context, []kgo.Opt, func(pipeline string, r Record) error) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID(txnID))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	if err := EnsureTopic(ctx, kadm.NewClient(prod), "_off", 1); err != nil {
		t.Fatal(err)
	}
	return ctx, opts, func(pipeline string, r Record) error {
		if err := prod.BeginTransaction(); err != nil {
			return err
		}
		if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", pipeline)).FirstErr(); err != nil {
			_ = prod.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
		return prod.EndTransaction(ctx, kgo.TryCommit)
	}
}
