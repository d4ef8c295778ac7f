package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/publish"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

var testTable = &change.Table{Database: "db", Schema: "public", Name: "t", Version: 1,
	Columns:    []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "v", Kind: change.KindInt64}},
	KeyColumns: []int{0}}

// fakeSource behaves like a replication slot: each Run replays every transaction whose end is
// after the acknowledged position, then waits. It can break a stream in the middle of a
// transaction, as a dropped connection does.
type fakeSource struct {
	txs     [][]change.Event
	acked   atomic.Uint64
	runs    atomic.Int32
	breakAt map[int]int // run number -> tx index at which the stream breaks mid-transaction
	// start is the slot's confirmed position before the pipeline's first session: a real slot
	// starts at a non-zero LSN (where it was created), below every transaction it sends.
	start uint64
	// holdAt: run number -> {tx index, events}: the run sends only that many events of the
	// transaction, then waits (the process is killed in the middle of a big transaction).
	holdAt map[int][2]int
	// dropAcks discards acknowledgements (the process dies before its status update
	// reaches the server).
	dropAcks atomic.Bool
	// gate: tx index -> the source sends that transaction only once the channel is closed.
	gate map[int]chan struct{}
	// beforeStreaming runs in Run before the stream is reported as held, afterStreaming
	// (with the run number) right after.
	beforeStreaming func()
	afterStreaming  func(run int)
	// idleConfirm: once every transaction was sent, the source moves its position over WAL
	// that holds nothing for the pipeline (other databases' WAL), the way a source confirms
	// the server's sent position while idle: it emits a Commit without events for that
	// position and lets the slot move only when the pipeline acknowledges it.
	idleConfirm uint64
	// firstStartAt: a run told the pipeline never committed starts at this position, as a
	// MySQL source's first start takes the server's current binlog position (0: as a slot).
	firstStartAt uint64
	mu           sync.Mutex
	lastSent     int
}

func lsnOf(i int) uint64 { return uint64(i+1) * 100 }

func (f *fakeSource) Ack(lsn uint64) {
	if f.dropAcks.Load() {
		return
	}
	for {
		cur := f.acked.Load()
		if lsn <= cur || f.acked.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

func (f *fakeSource) Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) error {
	run := int(f.runs.Add(1))
	f.acked.CompareAndSwap(0, f.start)
	from := uint64(0) // a new pipeline's first position, where the source starts reading
	if !resume.Committed && f.firstStartAt > 0 {
		from = f.firstStartAt
	}
	if f.beforeStreaming != nil {
		f.beforeStreaming()
	}
	resume.OnStreaming(change.Streaming{AckedPosition: f.acked.Load()})
	if f.afterStreaming != nil {
		f.afterStreaming(run)
	}
	for i, evs := range f.txs {
		if lsnOf(i)+1 <= max(f.acked.Load(), from) {
			continue
		}
		chunk := make([]change.Item, 0, len(evs)+1)
		for _, ev := range evs {
			chunk = append(chunk, change.Item{Event: ev})
		}
		if g, ok := f.gate[i]; ok {
			select {
			case <-g:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if h, ok := f.holdAt[run]; ok && h[0] == i {
			select {
			case out <- chunk[:h[1]]:
			case <-ctx.Done():
				return ctx.Err()
			}
			<-ctx.Done()
			return ctx.Err()
		}
		if bi, ok := f.breakAt[run]; ok && bi == i {
			chunk = chunk[:len(chunk)/2+1]
			select {
			case out <- chunk:
			case <-ctx.Done():
				return ctx.Err()
			}
			return errors.New("connection reset (injected)")
		}
		chunk = append(chunk, change.Item{Commit: &change.Commit{Pos: change.Position{Tx: lsnOf(i), Index: uint32(len(evs))}, AckPosition: lsnOf(i) + 1, Time: time.Now()}})
		select {
		case out <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.idleConfirm > 0 && f.acked.Load() < f.idleConfirm {
		idle := []change.Item{{Commit: &change.Commit{Pos: change.Position{Tx: f.idleConfirm - 1}, AckPosition: f.idleConfirm}}}
		select {
		case out <- idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// makeTxs builds n transactions of random size over keys 0..9; v counts changes per key, so
// per-key order is checkable.
func makeTxs(n int, rng *rand.Rand) ([][]change.Event, int) { return makeTxsBigAt(n, n/2, rng) }

// makeTxsBigAt is makeTxs with the transaction larger than a batch at index big.
func makeTxsBigAt(n, big int, rng *rand.Rand) ([][]change.Event, int) {
	seq := map[int64]int64{}
	total := 0
	txs := make([][]change.Event, n)
	for i := range txs {
		size := 1 + rng.IntN(40)
		if i == big {
			size = 250 // larger than a batch: must be split
		}
		for j := 0; j < size; j++ {
			id := int64(rng.IntN(10))
			seq[id]++
			txs[i] = append(txs[i], change.Event{Op: change.OpUpdate, Table: testTable,
				After: []change.Value{{Int: id}, {Int: seq[id]}}, Pos: change.Position{Tx: lsnOf(i), Index: uint32(j)},
				CommitTime: time.Now(), TxID: fmt.Sprint(i)})
			total++
		}
	}
	return txs, total
}

func newTestPipeline(t *testing.T, brokers []string, reg string, src Source) *Pipeline {
	t.Helper()
	srcl, err := sr.NewClient(sr.URLs(reg))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "p"}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return New(Config{Name: "p", Sink: publish.Config{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, OffsetsTopic: "_cdcd_offsets",
		TransactionTimeout: 10 * time.Second, MaxMessageBytes: 1 << 20, TopicPartitions: 3, TopicReplication: 1,
		ExactlyOnce: true, Tombstones: true, BatchMaxEvents: 100, BatchMaxBytes: 1 << 20, BatchInterval: 20 * time.Millisecond},
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Log: log}, src, enc)
}

// readAll reads every committed record of topic (read_committed) until n arrived.
func readAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Anything beyond n would be a duplicate: give it a moment to show up.
	sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer scancel()
	cl.PollFetches(sctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	return out
}

// TestExactlyOnceUnderFaults injects failed produces, failed transaction commits and broken
// source streams (mid-transaction), and checks that a read_committed consumer sees every
// change exactly once, in order per key.
func TestExactlyOnceUnderFaults(t *testing.T) {
	c, reg := newFakes(t)

	rng := rand.New(rand.NewPCG(1, 2))
	txs, total := makeTxs(120, rng)
	src := &fakeSource{txs: txs, breakAt: map[int]int{1: 30, 2: 90}}

	var endTxnFaults, produceFaults atomic.Int32
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r := req.(*kmsg.EndTxnRequest); r.Commit && endTxnFaults.Add(1)%7 == 3 {
			resp := r.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp, nil, true
		}
		return nil, nil, false
	})
	c.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produceFaults.Add(1)%23 == 11 {
			return nil, errors.New("connection dropped (injected)"), true
		}
		return nil, nil, false
	})

	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	deadline := time.Now().Add(60 * time.Second)
	for src.acked.Load() < lsnOf(len(txs)-1)+1 {
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not catch up: acked %d of %d (source runs %d)", src.acked.Load(), lsnOf(len(txs)-1)+1, src.runs.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if src.runs.Load() < 3 {
		t.Errorf("expected the injected stream breaks to restart the source, runs = %d", src.runs.Load())
	}
	if endTxnFaults.Load() < 7 || produceFaults.Load() < 23 {
		t.Errorf("faults not exercised: endTxn %d produce %d", endTxnFaults.Load(), produceFaults.Load())
	}

	checkExactlyOnce(t, readAll(t, c.ListenAddrs(), "p.public.t", total), total)

	// The committed position is the last transaction, complete.
	rec, ok, err := offsets.Load(context.Background(), []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "_cdcd_offsets", "p")
	if err != nil || !ok {
		t.Fatalf("offsets: %v %v", ok, err)
	}
	if rec.Pos.Tx != lsnOf(len(txs)-1) || !rec.Complete || rec.AckPosition != lsnOf(len(txs)-1)+1 {
		t.Fatalf("final offsets %+v", rec)
	}
}

func TestPoisonRecordStopsWithContext(t *testing.T) {
	c, reg := newFakes(t)
	dec := &change.Table{Schema: "public", Name: "money", Version: 1,
		Columns:    []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "amount", Kind: change.KindDecimal, Precision: 5, Scale: 2}},
		KeyColumns: []int{0}}
	src := &fakeSource{txs: [][]change.Event{{{Op: change.OpCreate, Table: dec,
		After: []change.Value{{Int: 7}, {Str: "123456.789"}}, Pos: change.Position{Tx: lsnOf(0)}}}}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Run(ctx)
	var pe *publish.PoisonError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PoisonError, got %v", err)
	}
	for _, want := range []string{"pipeline p", "public.money", "id=7", "amount"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if src.acked.Load() != 0 {
		t.Errorf("a failed change must not be acknowledged (acked %d)", src.acked.Load())
	}
}

// checkExactlyOnce checks that recs hold every change of makeTxs exactly once, in order per key.
func checkExactlyOnce(t *testing.T, recs []*kgo.Record, total int) {
	t.Helper()
	if len(recs) != total {
		t.Fatalf("got %d records, want exactly %d", len(recs), total)
	}
	last := map[int64]int64{}
	for _, r := range recs {
		id := avroLong(r.Key, 5)
		// value: envelope; before is null (union index 0), after is union index 1 then id, v.
		b := r.Value[5:]
		if b[0] != 0 || b[1] != 2 {
			t.Fatalf("unexpected envelope prefix % x", b[:4])
		}
		var n int
		vid, n1 := binary.Varint(b[2:])
		n = 2 + n1
		v, _ := binary.Varint(b[n:])
		if vid != id {
			t.Fatalf("key %d but after.id %d", id, vid)
		}
		if v != last[id]+1 {
			t.Fatalf("key %d: change %d after %d: lost, duplicated or out of order", id, v, last[id])
		}
		last[id] = v
	}
}

// avroLong decodes the first zigzag varint after a Confluent header, at offset skip.
func avroLong(b []byte, skip int) int64 {
	v, _ := binary.Varint(b[skip:])
	return v
}

// at_least_once: no transactions; after stream breaks every change is still published (perhaps
// more than once) and the position record follows the acknowledged records.
func TestAtLeastOnceLosesNothing(t *testing.T) {
	c, reg := newFakes(t)
	txs, total := makeTxs(60, rand.New(rand.NewPCG(3, 4)))
	src := &fakeSource{txs: txs, breakAt: map[int]int{1: 20}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	p.cfg.Sink.ExactlyOnce = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for src.acked.Load() < lsnOf(len(txs)-1)+1 {
		if time.Now().After(deadline) {
			t.Fatalf("did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, c.ListenAddrs(), "p.public.t", total)
	seen := map[[2]int64]bool{}
	for _, r := range recs {
		b := r.Value[5:]
		id, n := binary.Varint(b[2:])
		v, _ := binary.Varint(b[2+n:])
		seen[[2]int64{id, v}] = true
	}
	for _, tx := range txs {
		for _, ev := range tx {
			if !seen[[2]int64{ev.After[0].Int, ev.After[1].Int}] {
				t.Fatalf("change %d/%d lost", ev.After[0].Int, ev.After[1].Int)
			}
		}
	}
}

// A source acknowledged beyond the committed position (another reader consumed the slot) must
// stop the pipeline, not skip silently.
func TestGapIsFatal(t *testing.T) {
	c, reg := newFakes(t)
	txs, _ := makeTxs(5, rand.New(rand.NewPCG(5, 6)))
	src := &fakeSource{txs: txs}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for src.acked.Load() < lsnOf(len(txs)-1)+1 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	src.Ack(lsnOf(len(txs)-1) + 500) // someone else consumed the slot further
	err := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src).Run(context.Background())
	var ge *GapError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "reset-offsets") {
		t.Fatalf("want a GapError naming the fix, got %v", err)
	}
}

// newFakes starts an in-process Kafka and schema registry for one test.
func newFakes(t *testing.T) (*kfake.Cluster, *srfake.Registry) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	return c, reg
}
