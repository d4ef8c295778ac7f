package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
)

const snapDDL = `CREATE SEQUENCE ver;
CREATE TABLE snap (k int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL);`

// snapRecord is one decoded record of a table keyed by k with a version column v.
type snapRecord struct {
	k      int64
	op     string // c u d r, or "" for a tombstone
	v      int64  // after.v (-1 when there is no after)
	last   bool   // source.snapshot == "last"
	offset int64
}

// readSnapTopic reads a topic (read_committed) until it is quiet, and decodes every data record.
func readSnapTopic(t *testing.T, s stack, topic string, atLeast int, timeout time.Duration) []snapRecord {
	t.Helper()
	c, recs := readKV(t, s, topic, atLeast, timeout)
	var out []snapRecord
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		key := c.decode(t, r.Key)
		sr := snapRecord{k: toInt64(t, key["k"]), v: -1, offset: r.Offset}
		if r.Value != nil {
			m := c.decode(t, r.Value)
			sr.op, _ = m["op"].(string)
			if after := asMap(m["after"]); after != nil {
				sr.v = toInt64(t, unwrapAll(after)["v"])
			}
			if src := asMap(m["source"]); src != nil {
				sr.last = src["snapshot"] == "last"
			}
		}
		out = append(out, sr)
	}
	return out
}

func asMap(v any) map[string]any {
	v = unwrap(v)
	m, _ := v.(map[string]any)
	return m
}

func toInt64(t *testing.T, v any) int64 {
	t.Helper()
	switch x := unwrap(v).(type) {
	case int32:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	t.Fatalf("not an integer: %T %v", v, v)
	return 0
}

// checkAgainstTable compares the latest record per key with the table (an independent reading
// of both), checks that per key the versions never go back in time (no snapshot row after a
// newer change), and that no key has two committed snapshot reads (a finished chunk read
// again). It returns the number of snapshot reads.
func checkAgainstTable(t *testing.T, ctx context.Context, db *pgx.Conn, table string, recs []snapRecord) int {
	t.Helper()
	latest := map[int64]snapRecord{}
	maxV := map[int64]int64{}
	reads := map[int64]int{}
	backInTime := 0
	nreads := 0
	for _, r := range recs { // per key, records are in one partition: in offset order
		if r.op == "r" {
			reads[r.k]++
			nreads++
		}
		if r.v >= 0 {
			if r.v < maxV[r.k] {
				if backInTime < 5 {
					t.Errorf("key %d went back in time: %s record with v=%d after v=%d", r.k, r.op, r.v, maxV[r.k])
				}
				backInTime++
			}
			maxV[r.k] = max(maxV[r.k], r.v)
		}
		if r.op != "" { // a tombstone follows its delete
			latest[r.k] = r
		}
	}
	for k, n := range reads {
		if n > 1 {
			t.Errorf("key %d has %d committed snapshot reads: a published chunk was read again", k, n)
			break
		}
	}
	rows, err := db.Query(ctx, "SELECT k, v FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]int64{}
	for rows.Next() {
		var k, v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	mismatch := 0
	for k, v := range want {
		r, ok := latest[k]
		if !ok || r.op == "d" || r.v != v {
			if mismatch < 5 {
				t.Errorf("key %d: table has v=%d, topic's latest is %+v (present %v)", k, v, r, ok)
			}
			mismatch++
		}
	}
	for k, r := range latest {
		if _, ok := want[k]; !ok && r.op != "d" {
			if mismatch < 5 {
				t.Errorf("key %d is not in the table, but the topic's latest record is %+v", k, r)
			}
			mismatch++
		}
	}
	if mismatch > 0 || backInTime > 0 {
		t.Fatalf("%d keys differ from the table, %d records went back in time (of %d records, %d table rows)", mismatch, backInTime, len(recs), len(want))
	}
	return nreads
}

// hammer runs writers that update, delete and re-insert random keys of [0, keys) (v from the
// sequence ver, so versions only grow) until ctx ends. It returns the transactions committed.
func hammer(ctx context.Context, t *testing.T, dsn string, writers, keys int, seed uint64) func() int64 {
	t.Helper()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				tx, err := pool.Begin(ctx)
				if err != nil {
					continue
				}
				ok := true
				for i := 0; i < 1+rng.IntN(4) && ok; i++ {
					k := rng.IntN(keys)
					var sql string
					switch rng.IntN(10) {
					case 0, 1:
						sql = "DELETE FROM snap WHERE k = $1"
					case 2, 3:
						sql = "INSERT INTO snap VALUES ($1, nextval('ver'), 'w') ON CONFLICT (k) DO UPDATE SET v = nextval('ver')"
					default:
						sql = "UPDATE snap SET v = nextval('ver') WHERE k = $1"
					}
					if _, err := tx.Exec(ctx, sql, k); err != nil {
						ok = false
					}
				}
				if ok && tx.Commit(ctx) == nil {
					n.Add(1)
				} else {
					_ = tx.Rollback(context.Background())
				}
			}
		}(w)
	}
	var once sync.Once
	return func() int64 {
		once.Do(func() { wg.Wait(); pool.Close() })
		return n.Load()
	}
}

func waitFor(t *testing.T, d *daemon, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, d.Logs())
		}
		select {
		case <-d.exited:
			t.Fatalf("cdcd exited while waiting for %s: %v\n%s", what, d.err, d.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSnapshotConsistentUnderWritersAndSIGKILL: a 2-million-row table is snapshotted while
// writers update, delete and re-insert keys across the whole key range, and cdcd is killed
// with SIGKILL at about 30 % and 70 % of the snapshot. At the end the latest record per key
// equals the table, no key's records go back in time, no published chunk was read again, and
// the resumed runs said how much they skipped.
func TestSnapshotConsistentUnderWritersAndSIGKILL(t *testing.T) {
	s, ctx, dsn, db := setup(t, 12*time.Minute, "cdcd_snap", snapDDL)
	const rows = 2_000_000
	if _, err := db.Exec(ctx, `INSERT INTO snap SELECT g, 0, md5(g::text) FROM generate_series(0, $1 - 1) g`, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE snap`); err != nil {
		t.Fatal(err)
	}
	seed := loggedSeed(t, "writers")
	name := uniqueName("snap")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.snap"}, "    snapshot: {mode: initial, chunk_size: 8192, parallelism: 2}\n"))

	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	writes := hammer(wctx, t, dsn, 3, rows+rows/10, seed)

	snapshotted := func() float64 { return metricOrZero(d, "cdcd_snapshot_rows_total") }
	for i, frac := range []float64{0.3, 0.7} {
		// Rows counted since this process started: the resumed run starts from zero.
		base := 0.0
		if i > 0 {
			base = 0.3 * rows
		}
		waitFor(t, d, fmt.Sprintf("%.0f%% of the snapshot", frac*100), 5*time.Minute, func() bool { return base+snapshotted() >= frac*rows })
		d.stop(syscall.SIGKILL)
		t.Logf("SIGKILL at about %.0f%% of the snapshot", frac*100)
		d.restart()
	}
	waitFor(t, d, "the snapshot to finish", 6*time.Minute, func() bool {
		return strings.Contains(d.Logs(), `msg="snapshot finished"`)
	})
	stopWriters()
	n := writes()
	t.Logf("writers committed %d transactions during the snapshot", n)
	if n < 100 {
		t.Fatalf("only %d writer transactions: the test did not exercise concurrency", n)
	}
	// The resumed runs skipped what was published (and said so).
	if c := strings.Count(d.Logs(), `msg="snapshot resumes"`); c < 2 {
		t.Fatalf("want 2 resumed snapshots in the logs, got %d\n%s", c, d.Logs())
	}
	// Catch up with the writers' last changes: the table's final row count bounds the reading.
	var nrows int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM snap").Scan(&nrows); err != nil {
		t.Fatal(err)
	}
	d.waitReady(time.Minute)
	recs := readSnapTopic(t, s, name+".public.snap", nrows, 4*time.Minute)
	reads := checkAgainstTable(t, ctx, db, "snap", recs)
	t.Logf("%d records, %d snapshot reads, %d rows in the table", len(recs), reads, nrows)
	if reads < rows/2 {
		t.Fatalf("only %d snapshot reads of %d rows", reads, rows)
	}
	lasts := 0
	for _, r := range recs {
		if r.last {
			lasts++
		}
	}
	if lasts != 1 {
		t.Errorf("want exactly one record with source.snapshot = last, got %d", lasts)
	}
}

// runCLI runs a cdcd subcommand to completion.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(cdcdBin, args...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cdcd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// metricOrZero is d.metric, or 0 while the daemon's HTTP server is not up yet.
func metricOrZero(d *daemon, name string) float64 {
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return d.metric(name)
}

var _ = kgo.Record{}
