package pipeline

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Pipelines share the offsets topic. While another producer's transaction is open in it (a
// pipeline of a process that was SIGKILLed: the broker aborts it only after its transaction
// timeout), the topic's last stable offset hides every record committed after that
// transaction began. A pipeline restarting then read no committed position, started its
// source as a new pipeline (a MySQL source at the server's current position), and lost what
// had been written while it was down. The session must resume from the real committed
// position once it can read it.
func TestRestartWhileAnotherProducersTransactionIsOpen(t *testing.T) {
	c, reg := newFakes(t)
	brokers := c.ListenAddrs()
	rng := rand.New(rand.NewPCG(3, 4))
	txs, total := makeTxsBigAt(80, -1, rng)
	gate := make(chan struct{})
	src := &fakeSource{txs: txs, gate: map[int]chan struct{}{60: gate}}

	// First life: it starts (fences, reads its empty position) and waits for tx 0.
	ctx := context.Background()
	start := make(chan struct{})
	src.gate[0] = start
	p := newTestPipeline(t, brokers, reg.URL(), src)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	time.Sleep(time.Second)

	// Another pipeline's producer opens a transaction in the offsets topic and dies; then the
	// first life publishes transactions 0..59 (60.. are written while it is down).
	other, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("cdcd-other"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	otherRec := offsets.Record{Complete: true}
	if err := other.ProduceSync(ctx, otherRec.KafkaRecord("_cdcd_offsets", "other")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	close(start)
	deadline := time.Now().Add(30 * time.Second)
	for src.acked.Load() < lsnOf(59)+1 {
		if time.Now().After(deadline) {
			t.Fatalf("first life did not publish up to tx 59: acked %d", src.acked.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(gate)
	src.firstStartAt = lsnOf(79) + 1 // a new pipeline would start after everything written meanwhile

	// Second life, while the other transaction is still open; it ends 2 s later (aborted).
	var once sync.Once
	abort := func() { once.Do(func() { _ = other.EndTransaction(context.Background(), kgo.TryAbort) }) }
	defer abort()
	time.AfterFunc(2*time.Second, abort)
	p = newTestPipeline(t, brokers, reg.URL(), src)
	rctx, cancel = context.WithCancel(ctx)
	go func() { done <- p.Run(rctx) }()
	deadline = time.Now().Add(30 * time.Second)
	for {
		rec, ok, err := offsets.Load(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, "_cdcd_offsets", "p")
		if err == nil && ok && rec.Pos.Tx == lsnOf(79) && rec.Complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second life did not commit tx 79: %+v %v %v", rec, ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readAll(t, brokers, "p.public.t", total), total)
}

// A standby starts while the active (older) instance has not committed yet: its first read
// finds no position, so its source starts as a new pipeline's (a MySQL source at the server's
// current position). If the older instance commits its first position before the standby
// fences it, the standby must start its source again from that position, not go on from
// where a new pipeline starts (which skipped what was written in between).
func TestOlderInstanceCommitsItsFirstPositionDuringStartUp(t *testing.T) {
	c, reg := newFakes(t)
	brokers := c.ListenAddrs()
	rng := rand.New(rand.NewPCG(5, 6))
	txs, _ := makeTxsBigAt(80, -1, rng)
	src := &fakeSource{txs: txs, firstStartAt: lsnOf(79) + 1}
	ctx := context.Background()
	older, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("cdcd-p"))
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close()
	var once sync.Once
	src.beforeStreaming = func() {
		once.Do(func() {
			// Between the standby's first read and its fencing, the older instance commits
			// transactions 0..59 (their records are not needed here, only the position).
			if err := older.BeginTransaction(); err != nil {
				t.Error(err)
				return
			}
			rec := offsets.Record{Pos: change.Position{Tx: lsnOf(59), Index: uint32(len(txs[59]))}, Complete: true, AckPosition: lsnOf(59) + 1}
			if err := older.ProduceSync(ctx, rec.KafkaRecord("_cdcd_offsets", "p")).FirstErr(); err != nil {
				t.Error(err)
				return
			}
			if err := older.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Error(err)
			}
		})
	}
	want := 0
	for _, tx := range txs[60:] {
		want += len(tx)
	}
	p := newTestPipeline(t, brokers, reg.URL(), src)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, ok, err := offsets.Load(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, "_cdcd_offsets", "p")
		if err == nil && ok && rec.Pos.Tx == lsnOf(79) && rec.Complete {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("transactions 60..79 written after the older instance's position were not published: committed %+v %v %v", rec, ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, brokers, "p.public.t", want); len(got) != want {
		t.Fatalf("published %d changes, want the %d of transactions 60..79", len(got), want)
	}
}
