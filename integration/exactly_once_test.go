package integration

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kvDDL = `CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL, tx bigint NOT NULL, txsize int NOT NULL)`

// change is one row change the writer committed: key k took value v in source transaction tx
// of txsize rows.
type kvChange struct {
	k      int
	v, tx  int64
	txsize int
}

// kvWriter commits upserts into kv in transactions of random size, paced to about rate rows
// per second, until total rows are written or ctx ends. v increases globally, so per key it
// increases in commit order.
type kvWriter struct {
	mu      sync.Mutex
	changes []kvChange
	rows    int
}

// written is how many rows the writer has committed so far.
func (w *kvWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows
}

func (w *kvWriter) run(ctx context.Context, t *testing.T, db *pgx.Conn, total, maxTx, rate, keys int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	var v, tx int64
	for w.rows < total {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := 1 + rng.IntN(maxTx)
		if w.rows+size > total {
			size = total - w.rows
		}
		tx++
		batch := &pgx.Batch{}
		var txChanges []kvChange
		for i := 0; i < size; i++ {
			v++
			k := rng.IntN(keys)
			batch.Queue(`INSERT INTO kv VALUES ($1, $2, $3, $4) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, tx = EXCLUDED.tx, txsize = EXCLUDED.txsize`, k, v, tx, size)
			txChanges = append(txChanges, kvChange{k, v, tx, size})
		}
		ptx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if err := ptx.SendBatch(ctx, batch).Close(); err != nil {
			_ = ptx.Rollback(ctx)
			return err
		}
		if err := ptx.Commit(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		w.changes = append(w.changes, txChanges...)
		w.rows += size
		w.mu.Unlock()
		if rate > 0 {
			if ahead := time.Duration(float64(w.rows)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return nil
}

// verifyKV checks the records of the kv topic (one partition, control records kept) against
// what the writer committed: every change exactly once, in commit order per key, and no source
// transaction split by a Kafka transaction boundary.
func verifyKV(t *testing.T, c *consumer, recs []*kgo.Record, want []kvChange) {
	t.Helper()
	type seen struct {
		idx int
	}
	got := map[[2]int64]int{} // (k, v) -> times
	lastV := map[int64]int64{}
	var curTx int64 = -1
	curTxRows, curTxSize := 0, 0
	txBroken := map[int64]bool{}
	dataRecs := 0
	for _, r := range recs {
		if r.Attrs.IsControl() {
			if curTx >= 0 && curTxRows < curTxSize {
				txBroken[curTx] = true
			}
			continue
		}
		if r.Value == nil {
			continue
		}
		dataRecs++
		env := unwrap(c.decode(t, r.Value)).(map[string]any)
		after := unwrapAll(unwrap(env["after"]).(map[string]any))
		k, v, tx, size := int64(after["k"].(int)), after["v"].(int64), after["tx"].(int64), after["txsize"].(int)
		got[[2]int64{k, v}]++
		if v <= lastV[k] {
			t.Errorf("key %d: value %d after %d: out of commit order or duplicated", k, v, lastV[k])
		}
		lastV[k] = v
		if tx != curTx {
			if curTx >= 0 && curTxRows != curTxSize {
				t.Errorf("source transaction %d: %d of %d rows before the next transaction began", curTx, curTxRows, curTxSize)
			}
			curTx, curTxRows, curTxSize = tx, 0, size
		}
		curTxRows++
	}
	for tx := range txBroken {
		t.Errorf("source transaction %d is split across Kafka transactions (visible in part)", tx)
	}
	missing, dup := 0, 0
	for _, w := range want {
		switch n := got[[2]int64{int64(w.k), w.v}]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
		delete(got, [2]int64{int64(w.k), w.v})
	}
	if missing > 0 || dup > 0 || len(got) > 0 || dataRecs != len(want) {
		t.Fatalf("exactly once violated: %d records for %d changes; %d missing, %d duplicated, %d unknown", dataRecs, len(want), missing, dup, len(got))
	}
}

// countData returns how many data (non-control, non-tombstone) records recs holds.
func countData(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		if !r.Attrs.IsControl() && r.Value != nil {
			n++
		}
	}
	return n
}

// readKV reads the kv topic until want data records arrived (or timeout), control records kept.
func readKV(t *testing.T, s stack, topic string, want int, timeout time.Duration) (*consumer, []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := newConsumer(t, s, topic)
	var recs []*kgo.Record
	deadline := time.Now().Add(timeout)
	for countData(recs) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	cancel()
	return c, recs
}

// TestExactlyOnceUnderSIGKILL: a writer commits 200k rows in transactions of random size while
// the daemon is killed with SIGKILL at random moments and restarted. Every change must appear
// exactly once, in commit order per key, and no source transaction in part.
func TestExactlyOnceUnderSIGKILL(t *testing.T) {
	s, ctx, dsn, db := setup(t, 12*time.Minute, "cdcd_crash", kvDDL)
	name := uniqueName("crash")
	yaml := pipelineYAML(s, name, dsn, []string{"public.kv"}, "    batch:\n      max_events: 20000\n")
	yaml = strings.Replace(yaml, "topic_partitions: 3", "topic_partitions: 1", 1)
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	const total = 200_000
	w := &kvWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	seed := loggedSeed(t, "writer and kill schedule")
	go func() { werr <- w.run(wctx, t, db, total, 400, 5000, 500, seed) }()

	rng := rand.New(rand.NewPCG(seed, 3))
	kills := 0
	for kills < 6 {
		// Kill while streaming: after the restarted daemon is ready again.
		d.waitReady(90 * time.Second)
		time.Sleep(time.Duration(300+rng.IntN(3000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		kills++
		t.Logf("SIGKILL %d at %d rows written", kills, w.written())
		d.restart()
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.waitReady(2 * time.Minute)
	c, recs := readKV(t, s, name+".public.kv", total, 4*time.Minute)
	verifyKV(t, c, recs, w.changes)
	t.Logf("%d kills, %d changes, %d records (incl. control) verified", kills, len(w.changes), len(recs))
}
