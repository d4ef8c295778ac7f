package integration

import (
	"context"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExactlyOnceSplitTransactionsUnderSIGKILL: source transactions larger than
// batch.max_events (50) are split across Kafka transactions, on a topic of 3 partitions. The
// pipeline is new and its first transaction (20,000 rows) is split; cdcd is killed in the
// middle of it, which used to end in a GapError on restart ("acknowledged up to X, beyond ...
// (0/0)"), and then killed again at random while a writer commits transactions of up to 400
// rows. Every change must arrive exactly once and in commit order per key, and no restart may
// stop on a gap.
func TestExactlyOnceSplitTransactionsUnderSIGKILL(t *testing.T) {
	s, ctx, dsn, db := setup(t, 10*time.Minute, "cdcd_split", kvDDL)
	seed := loggedSeed(t, "kill schedule")
	rng := rand.New(rand.NewPCG(seed, 11))
	name := uniqueName("split")
	yaml := pipelineYAML(s, name, dsn, []string{"public.kv"}, "    batch:\n      max_events: 50\n")
	if !strings.Contains(yaml, "topic_partitions: 3") {
		t.Fatal("the test needs a multi-partition topic")
	}
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	// The new pipeline's first transaction: every key once, v negative so that later changes
	// of a key (v from 1 up) come after it in per-key order.
	const first = 20_000
	var want []kvChange
	batch := &pgx.Batch{}
	for i := 0; i < first; i++ {
		batch.Queue(`INSERT INTO kv VALUES ($1, $2, 0, $3)`, i, int64(i-first), first)
		want = append(want, kvChange{k: i, v: int64(i - first), tx: 0, txsize: first})
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Kill while the first transaction is partly published.
	deadline := time.Now().Add(2 * time.Minute)
	for d.metric("cdcd_events_published_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing of the first transaction was published\n%s", d.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	published := d.metric("cdcd_events_published_total")
	d.stop(syscall.SIGKILL)
	// The published count is taken when a Kafka commit has returned; its offsets record
	// counts once the commit markers are written, a moment later (loadOffsets).
	rec, ok := loadOffsets(t, ctx, s, name, 30*time.Second, func(rec offsets.Record, ok bool) bool { return ok && !rec.Complete })
	if !ok || rec.Complete {
		t.Fatalf("killed after %v events: want a partial offsets record of the first transaction, got %+v (ok %v)", published, rec, ok)
	}
	t.Logf("SIGKILL inside the first transaction: offsets record at %s, ack_lsn %X", rec.Pos, rec.AckPosition)
	d.restart()
	d.waitReady(90 * time.Second) // a GapError would leave it failed (unready) for good

	// Then a writer of transactions up to 400 rows (most are split), killed at random.
	const more = 20_000
	w := &kvWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	go func() { werr <- w.run(wctx, t, db, more, 400, 4000, 500, seed) }()
	for kill := 1; kill <= 3; kill++ {
		d.waitReady(90 * time.Second)
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		t.Logf("SIGKILL %d at %d rows written", kill+1, w.written())
		d.restart()
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.waitReady(2 * time.Minute)
	if strings.Contains(d.Logs(), "beyond the last position cdcd committed") {
		t.Fatalf("a restart stopped on a gap:\n%s", d.Logs())
	}
	want = append(want, w.changes...)
	c, recs := readKV(t, s, name+".public.kv", len(want), 4*time.Minute)
	verifySplit(t, c, recs, want)
}

// verifySplit checks the records of a multi-partition kv topic against what the writer
// committed: every change exactly once and in commit order per key (a key lives in one
// partition, whose order the reader keeps).
func verifySplit(t *testing.T, c *consumer, recs []*kgo.Record, want []kvChange) {
	t.Helper()
	got := map[[2]int64]int{}
	lastV := map[int64]int64{}
	data := 0
	for _, r := range recs {
		if r.Attrs.IsControl() || r.Value == nil {
			continue
		}
		data++
		env := unwrap(c.decode(t, r.Value)).(map[string]any)
		after := unwrapAll(unwrap(env["after"]).(map[string]any))
		k, v := int64(after["k"].(int)), after["v"].(int64)
		got[[2]int64{k, v}]++
		if last, ok := lastV[k]; ok && v <= last {
			t.Errorf("key %d: value %d after %d: out of commit order or duplicated", k, v, last)
		}
		lastV[k] = v
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
	if missing > 0 || dup > 0 || len(got) > 0 || data != len(want) {
		t.Fatalf("exactly once violated: %d records for %d changes; %d missing, %d duplicated, %d unknown", data, len(want), missing, dup, len(got))
	}
	t.Logf("%d changes verified exactly once, in order per key", len(want))
}
