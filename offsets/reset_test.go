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
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID("writer"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := EnsureTopic(ctx, kadm.NewClient(prod), "_off", 1); err != nil {
		t.Fatal(err)
	}
	write := func(pipeline string, r Record) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", pipeline)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
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
