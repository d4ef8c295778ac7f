package publish

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The pipeline's own producer with a transaction still open on the offsets partition after
// Fence is a hanging transaction; other producers' open transactions, and its own without
// one, are not.
func TestHangingIn(t *testing.T) {
	ps := kadm.DescribedProducersTopics{"_off": {Topic: "_off", Partitions: kadm.DescribedProducersPartitions{0: {Topic: "_off", Partition: 0,
		ActiveProducers: kadm.DescribedProducers{
			7:  {Topic: "_off", Partition: 0, ProducerID: 7, CurrentTxnStartOffset: 120},     // another pipeline's, open
			42: {Topic: "_off", Partition: 0, ProducerID: 42, CurrentTxnStartOffset: 406664}, // ours, open
			9:  {Topic: "_off", Partition: 0, ProducerID: 9, CurrentTxnStartOffset: -1},
		}}}}}
	h := hangingIn(ps, 42)
	if h == nil || h.StartOffset != 406664 || h.Topic != "_off" || h.Partition != 0 {
		t.Fatalf("hanging %+v, want _off[0] from 406664", h)
	}
	if h := hangingIn(ps, 9); h != nil {
		t.Fatalf("a producer without an open transaction reported hanging: %+v", h)
	}
	if h := hangingIn(ps, 5); h != nil {
		t.Fatalf("an absent producer reported hanging: %+v", h)
	}
}

// FindHangingTransaction asks the broker for the producers of the offsets partition and
// finds the pipeline's own producer's open transaction (here the client's own, left open: to
// the broker it looks the same as a hanging one does after Fence).
func TestFindHangingTransactionAsksTheBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("cdcd-shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := offsets.EnsureTopic(ctx, kadm.NewClient(cl), "_off", 1); err != nil {
		t.Fatal(err)
	}
	s := &Sink{cfg: Config{OffsetsTopic: "_off"}, cl: cl, adm: kadm.NewClient(cl)}
	if h, err := s.FindHangingTransaction(ctx); err != nil || h != nil {
		t.Fatalf("before any transaction: %v, %v", h, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "_off", Key: []byte("x"), Value: []byte("y")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.FindHangingTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil || h.Topic != "_off" || h.Partition != 0 || h.StartOffset != 0 {
		t.Fatalf("open transaction from offset 0: found %v", h)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if h, err := s.FindHangingTransaction(ctx); err != nil || h != nil {
		t.Fatalf("after the commit: %v, %v", h, err)
	}
}
