package pipeline

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runPipeline starts p.Run in the background; stop cancels it and returns its error.
func runPipeline(p *Pipeline) (done <-chan error, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- p.Run(ctx) }()
	return ch, func() error { cancel(); return <-ch }
}

// waitFor polls cond until it holds; the pipeline ending first (done) is a failure.
func waitFor(t *testing.T, what string, done <-chan error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("pipeline ended (%v) before %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loadOffsetsT(t *testing.T, brokers []string) (offsets.Record, bool) {
	t.Helper()
	rec, ok, err := offsets.Load(context.Background(), []kgo.Opt{kgo.SeedBrokers(brokers...)}, "_cdcd_offsets", "p")
	if err != nil {
		t.Fatal(err)
	}
	return rec, ok
}

// A new pipeline whose first transaction is larger than batch.max_events splits it; every
// partial offsets record used to carry ack_lsn 0. After a crash in the middle of it, the
// restart compared the slot's position (a real slot starts at a non-zero LSN, where it was
// created) with that 0 and stopped for good with a GapError, whose advice (reset-offsets)
// then republished the transaction. The slot's starting point is part of the committed state
// from the first commit on: the restart resumes the split transaction exactly once.
func TestSplitFirstTransactionOfNewPipelineResumes(t *testing.T) {
	c, reg := newFakes(t)
	txs, total := makeTxsBigAt(5, 0, rand.New(rand.NewPCG(7, 8)))
	const slotStart = 50 // below lsnOf(0): the slot was created before the first transaction
	src := &fakeSource{txs: txs, start: slotStart, holdAt: map[int][2]int{1: {0, 150}}}

	done, stop := runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	var rec offsets.Record
	waitFor(t, "a partial offsets record of the first transaction", done, func() bool {
		var ok bool
		rec, ok = loadOffsetsT(t, c.ListenAddrs())
		return ok
	})
	if err := stop(); err != nil { // the process dies in the middle of the transaction
		t.Fatal(err)
	}
	if rec.Complete || rec.Pos.Tx != lsnOf(0) {
		t.Fatalf("want a partial record of the first transaction, got %+v", rec)
	}
	if rec.AckPosition != slotStart {
		t.Errorf("partial record carries ack_lsn %d, want the slot's starting point %d", rec.AckPosition, slotStart)
	}

	done, stop = runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	waitFor(t, "the last transaction acknowledged", done, func() bool { return src.acked.Load() >= lsnOf(len(txs)-1)+1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readAll(t, c.ListenAddrs(), "p.public.t", total), total)
}

// A session skips the commits its offsets record already covers (a crash after the Kafka
// commit and before the source heard the acknowledgement). Those commits are durable: the
// source must hear about them too, or it can never tell that everything it emitted is
// acknowledged (and the slot keeps WAL it need not keep).
func TestCoveredCommitsAreAcknowledged(t *testing.T) {
	c, reg := newFakes(t)
	txs, total := makeTxs(20, rand.New(rand.NewPCG(9, 10)))
	src := &fakeSource{txs: txs, start: 50}
	src.dropAcks.Store(true) // the acknowledgements never reach the slot

	lastAck := lsnOf(len(txs)-1) + 1
	done, stop := runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	waitFor(t, "every transaction committed", done, func() bool {
		rec, ok := loadOffsetsT(t, c.ListenAddrs())
		return ok && rec.AckPosition == lastAck
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if src.acked.Load() != 50 {
		t.Fatalf("acked %d; the test needs the acknowledgements dropped", src.acked.Load())
	}

	src.dropAcks.Store(false)
	done, stop = runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	waitFor(t, "the replayed, covered commits acknowledged", done, func() bool { return src.acked.Load() == lastAck })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readAll(t, c.ListenAddrs(), "p.public.t", total), total)
}

// The committed position is read once before the source starts and then, after fencing, only
// what was committed since: an older instance that commits in between (it is fenced only
// when this session takes over the transactional id) must still be seen, or this session
// publishes its transactions again.
func TestOlderInstanceCommitBeforeFencingIsSeen(t *testing.T) {
	c, reg := newFakes(t)
	txs, _ := makeTxs(10, rand.New(rand.NewPCG(15, 16)))
	src := &fakeSource{txs: txs, start: 50}
	var older offsets.Record
	src.beforeStreaming = func() {
		// The older instance commits transactions 0..4 (its records are not needed here:
		// only its offsets record decides what this session drops).
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID(TransactionalID("p")))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		ctx := context.Background()
		older = offsets.Record{Pos: change.Position{Tx: lsnOf(4), Index: uint32(len(txs[4]))}, Complete: true, AckPosition: lsnOf(4) + 1}
		if err := cl.BeginTransaction(); err != nil {
			t.Error(err)
			return
		}
		if err := cl.ProduceSync(ctx, older.KafkaRecord("_cdcd_offsets", "p")).FirstErr(); err != nil {
			t.Error(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Error(err)
		}
	}
	done, stop := runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	waitFor(t, "the last transaction acknowledged", done, func() bool { return src.acked.Load() >= lsnOf(len(txs)-1)+1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, tx := range txs[5:] {
		want += len(tx)
	}
	recs := readAll(t, c.ListenAddrs(), "p.public.t", want)
	if len(recs) != want {
		t.Fatalf("published %d records, want %d (only the transactions after the older instance's commit)", len(recs), want)
	}
}

// A source may move the slot over WAL that holds nothing for the pipeline (it is idle: every
// transaction it emitted is acknowledged) only through the pipeline: a Commit without events
// for that position is committed with the offsets record and then acknowledged. A restart
// then finds the slot where the committed state says, and no gap. (A source that confirmed
// such a position to the server without this would make every restart look like a gap.)
func TestIdlePositionCommitKeepsSlotAndOffsetsTogether(t *testing.T) {
	c, reg := newFakes(t)
	txs, total := makeTxs(5, rand.New(rand.NewPCG(23, 24)))
	idle := lsnOf(len(txs)-1) + 5000
	src := &fakeSource{txs: txs, start: 50, idleConfirm: idle}
	done, stop := runPipeline(newTestPipeline(t, c.ListenAddrs(), reg.URL(), src))
	waitFor(t, "the idle position acknowledged", done, func() bool { return src.acked.Load() == idle })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rec, ok := loadOffsetsT(t, c.ListenAddrs())
	if !ok || rec.AckPosition != idle || !rec.Complete {
		t.Fatalf("offsets %+v: want the idle position %d committed", rec, idle)
	}
	// The restart sees the slot at the idle position: no gap, nothing republished.
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	hr := health.NewRegistry("p")
	p.cfg.Health = hr
	done, stop = runPipeline(p)
	waitFor(t, "the restarted pipeline streaming", done, func() bool { return stateOf(hr).Phase == "streaming" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readAll(t, c.ListenAddrs(), "p.public.t", total), total)
}
