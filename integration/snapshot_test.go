package integration

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
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
	// body: the first 32 characters of after.body and its length, where the table has one.
	body    string
	bodyLen int
}

// readSnapTopic reads a topic (read_committed) until at least atLeast data records arrived and
// it is quiet, decoding each record as it arrives (only the decoded fields are kept: millions
// of raw records would not fit the test's memory under -race).
func readSnapTopic(t *testing.T, s stack, topic string, atLeast int, timeout time.Duration) []snapRecord {
	t.Helper()
	return readSnapTopicBy(t, s, topic, atLeast, -1, timeout, func(key map[string]any) int64 { return toInt64(t, key["k"]) })
}

// readSnapTopicBy is readSnapTopic for a table whose key is not one integer column k: keyOf
// maps a record's decoded key to an integer. With sentinel >= 0 it also reads until a record
// with that v arrived (a change written last: the pipeline caught up).
func readSnapTopicBy(t *testing.T, s stack, topic string, atLeast int, sentinel int64, timeout time.Duration, keyOf func(map[string]any) int64) []snapRecord {
	t.Helper()
	seen := sentinel < 0
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := newConsumer(t, s, topic)
	var out []snapRecord
	data := 0
	poll := func(ctx context.Context) {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			key := c.decode(t, r.Key)
			sr := snapRecord{k: keyOf(key), v: -1, offset: r.Offset}
			if r.Value != nil {
				data++
				m := c.decode(t, r.Value)
				sr.op, _ = m["op"].(string)
				if after := asMap(m["after"]); after != nil {
					a := unwrapAll(after)
					sr.v = toInt64(t, a["v"])
					seen = seen || sr.v == sentinel
					if b, ok := unwrap(a["body"]).(string); ok {
						sr.body, sr.bodyLen = b[:min(len(b), 32)], len(b)
					}
				}
				if src := asMap(m["source"]); src != nil {
					sr.last = src["snapshot"] == "last"
				}
			}
			out = append(out, sr)
		})
	}
	deadline := time.Now().Add(timeout)
	for (data < atLeast || !seen) && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		poll(ctx)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	for ctx.Err() == nil {
		poll(ctx)
	}
	cancel()
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
	return checkAgainstTableReads(t, ctx, db, table, recs, func(int64) int { return 1 })
}

// pgTableKV reads k -> v of a table.
func pgTableKV(t *testing.T, ctx context.Context, db *pgx.Conn, table string) map[int64]int64 {
	t.Helper()
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
	return want
}

// checkAgainstTableReads is checkAgainstTable with the most snapshot reads a key may have.
func checkAgainstTableReads(t *testing.T, ctx context.Context, db *pgx.Conn, table string, recs []snapRecord, maxReads func(k int64) int) int {
	t.Helper()
	return checkAgainstKV(t, pgTableKV(t, ctx, db, table), recs, maxReads)
}

// checkAgainstKV is checkAgainstTableReads against the table's rows k -> v.
func checkAgainstKV(t *testing.T, want map[int64]int64, recs []snapRecord, maxReads func(k int64) int) int {
	t.Helper()
	type keyState struct {
		latest    snapRecord
		hasLatest bool
		maxV      int64
		reads     int
	}
	keys := make(map[int64]*keyState, len(recs))
	backInTime := 0
	nreads := 0
	for _, r := range recs { // per key, records are in one partition: in offset order
		ks := keys[r.k]
		if ks == nil {
			ks = &keyState{}
			keys[r.k] = ks
		}
		if r.op == "r" {
			ks.reads++
			nreads++
		}
		if r.v >= 0 {
			if r.v < ks.maxV {
				if backInTime < 5 {
					t.Errorf("key %d went back in time: %s record with v=%d after v=%d", r.k, r.op, r.v, ks.maxV)
				}
				backInTime++
			}
			ks.maxV = max(ks.maxV, r.v)
		}
		if r.op != "" { // a tombstone follows its delete
			ks.latest, ks.hasLatest = r, true
		}
	}
	for k, ks := range keys {
		if ks.reads > maxReads(k) {
			t.Errorf("key %d has %d committed snapshot reads: a published chunk was read again", k, ks.reads)
			break
		}
	}
	mismatch := 0
	for k, v := range want {
		var r snapRecord
		ok := false
		if ks := keys[k]; ks != nil && ks.hasLatest {
			r, ok = ks.latest, true
		}
		if !ok || r.op == "d" || r.v != v {
			if mismatch < 5 {
				t.Errorf("key %d: table has v=%d, topic's latest is %+v (present %v)", k, v, r, ok)
			}
			mismatch++
		}
	}
	for k, ks := range keys {
		r := ks.latest
		if _, ok := want[k]; !ok && ks.hasLatest && r.op != "d" {
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
func hammer(ctx context.Context, t *testing.T, dsn, table string, writers, keys int, seed uint64) func() int64 {
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
						sql = "DELETE FROM " + table + " WHERE k = $1"
					case 2, 3:
						sql = "INSERT INTO " + table + " VALUES ($1, nextval('ver'), 'w') ON CONFLICT (k) DO UPDATE SET v = nextval('ver')"
					default:
						sql = "UPDATE " + table + " SET v = nextval('ver') WHERE k = $1"
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
		if strings.Contains(d.Logs(), `msg="pipeline stopped`) {
			t.Fatalf("the pipeline stopped while waiting for %s\n%s", what, d.Logs())
		}
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
	writes := hammer(wctx, t, dsn, "snap", 3, rows+rows/10, seed)

	snapshotted := func() float64 { return metricOrZero(d, "cdcd_snapshot_rows_total") }
	// While the snapshot runs the pipeline is ready, in phase snapshotting, with its progress.
	waitFor(t, d, "/readyz to show the snapshot", 2*time.Minute, func() bool {
		resp, err := http.Get("http://" + d.http + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), `"phase":"snapshotting"`) &&
			strings.Contains(string(b), `"table":"public.snap"`) && strings.Contains(string(b), `"rows_estimated":2000000`)
	})
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

func countLines(logs, must, also string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, must) && strings.Contains(l, also) {
			n++
		}
	}
	return n
}

// TestSnapshotOnDemandAndAddedTable: `cdcd snapshot --where` re-reads part of a captured table
// while writers change it, and the result still equals the table; a table added to tables:
// under when_needed is snapshotted alone at the next start.
func TestSnapshotOnDemandAndAddedTable(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_snap_req", `CREATE SEQUENCE ver;
		CREATE TABLE a (k int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL);
		CREATE TABLE b (k int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL);
		INSERT INTO a SELECT g, 0, 'a' FROM generate_series(0, 19999) g;
		INSERT INTO b SELECT g, 0, 'b' FROM generate_series(0, 4999) g;`)
	name := uniqueName("snapreq")
	opts := "    snapshot: {mode: when_needed, chunk_size: 1000, signal_key: " + testSignalKey + "}\n"
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.a"}, opts))
	waitFor(t, d, "the initial snapshot of a", 3*time.Minute, func() bool { return countLines(d.Logs(), `msg="snapshot finished"`, "table=public.a") == 1 })

	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	writes := hammer(wctx, t, dsn, "a", 2, 25_000, loggedSeed(t, "writers"))
	time.Sleep(500 * time.Millisecond)
	out := runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.a", "--where", "k < 5000")
	t.Log(strings.TrimSpace(out))
	waitFor(t, d, "the requested snapshot of a", 3*time.Minute, func() bool { return countLines(d.Logs(), `msg="snapshot finished"`, "table=public.a") == 2 })
	if countLines(d.Logs(), `msg="snapshot finished"`, `where="k < 5000"`) != 1 {
		t.Fatalf("the requested snapshot did not run with its condition\n%s", d.Logs())
	}
	time.Sleep(300 * time.Millisecond)
	stopWriters()
	t.Logf("writers committed %d transactions", writes())

	var na int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&na); err != nil {
		t.Fatal(err)
	}
	recs := readSnapTopic(t, s, name+".public.a", na, 2*time.Minute)
	reads := checkAgainstTableReads(t, ctx, db, "a", recs, func(k int64) int {
		if k < 5000 {
			return 2 // the initial snapshot and the request
		}
		return 1
	})
	requested := 0
	seen := map[int64]bool{}
	for _, r := range recs {
		if r.op == "r" && seen[r.k] {
			requested++
			if r.k >= 5000 {
				t.Fatalf("key %d was read again although the request said k < 5000", r.k)
			}
		}
		if r.op == "r" {
			seen[r.k] = true
		}
	}
	if requested < 1000 {
		t.Fatalf("the requested snapshot read only %d keys again (of %d reads)", requested, reads)
	}
	t.Logf("a: %d records, %d snapshot reads, %d of them by the request", len(recs), reads, requested)

	// Add b: only b is snapshotted at the next start.
	d.stop(syscall.SIGTERM)
	yaml := strings.ReplaceAll(pipelineYAML(s, name, dsn, []string{"public.a", "public.b"}, opts), "HTTP_ADDR", d.http)
	if err := os.WriteFile(d.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d.restart()
	waitFor(t, d, "the snapshot of the added table b", 3*time.Minute, func() bool { return countLines(d.Logs(), `msg="snapshot finished"`, "table=public.b") == 1 })
	if countLines(d.Logs(), `msg="snapshot started"`, "table=public.a") != 2 || countLines(d.Logs(), `msg="snapshot started" pipeline=`+name+` component=snapshot table=public.b`, "reason=added") != 1 {
		t.Fatalf("want two snapshots of a (initial, requested) and one of b (added)\n%s", d.Logs())
	}
	brecs := readSnapTopic(t, s, name+".public.b", 5000, 2*time.Minute)
	if n := checkAgainstTable(t, ctx, db, "b", brecs); n != 5000 {
		t.Fatalf("b: %d snapshot reads, want 5000", n)
	}
	data := 0
	for _, r := range recs {
		if r.op != "" {
			data++
		}
	}
	arecs := readSnapTopic(t, s, name+".public.a", data, time.Minute)
	if len(arecs) != len(recs) {
		t.Fatalf("a got %d more records after b was added", len(arecs)-len(recs))
	}
}

// TestSnapshotKeyShapes: a table without a key (read by page ranges), a composite key of text
// and int, and 1 MB rows (chunks end early by chunk_max_bytes) are each snapshotted whole.
func TestSnapshotKeyShapes(t *testing.T) {
	s, ctx, dsn, db := setup(t, 6*time.Minute, "cdcd_snap_shapes", `
		CREATE TABLE nokey (a int NOT NULL, b text);
		ALTER TABLE nokey REPLICA IDENTITY FULL;
		INSERT INTO nokey SELECT g % 7000, md5(g::text) FROM generate_series(1, 30000) g;
		CREATE TABLE comp (region text, id int, v int NOT NULL, PRIMARY KEY (region, id));
		INSERT INTO comp SELECT (ARRAY['eu','us','ap','z''q'])[1 + g % 4], g, g * 2 FROM generate_series(1, 20000) g;
		CREATE TABLE huge (id int PRIMARY KEY, blob text NOT NULL);
		ALTER TABLE huge ALTER COLUMN blob SET STORAGE EXTERNAL;
		INSERT INTO huge SELECT g, (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 32768) i) FROM generate_series(1, 12) g;
		ANALYZE;`)
	name := uniqueName("shapes")
	// 1 MB records need topics and a producer that take them.
	adm := kadmClient(t, s)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": ptr("4194304")}, name+".public.huge"); err != nil {
		t.Fatal(err)
	}
	yaml := pipelineYAML(s, name, dsn, []string{"public.nokey", "public.comp", "public.huge"},
		"    snapshot: {mode: initial, chunk_size: 1000, chunk_max_bytes: 3MiB, accept_inexact_keyless: [public.nokey]}\n")
	yaml = strings.Replace(yaml, "  topic_partitions: 3\n", "  topic_partitions: 3\n  max_message_bytes: 4MiB\n", 1)
	d := startDaemon(t, yaml)
	waitFor(t, d, "three snapshots", 4*time.Minute, func() bool { return strings.Count(d.Logs(), `msg="snapshot finished"`) == 3 })
	if countLines(d.Logs(), `msg="snapshot started"`, "table=public.nokey") != 1 || !strings.Contains(d.Logs(), "page ranges") {
		t.Fatalf("nokey was not read by page ranges\n%s", d.Logs())
	}

	// nokey: the multiset of rows.
	c, recs := readKV(t, s, name+".public.nokey", 30000, 2*time.Minute)
	got := map[string]int{}
	n := 0
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		if r.Key != nil {
			t.Fatalf("a keyless table's record has a key: %x", r.Key)
		}
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		got[fmt.Sprint(after["a"], "/", after["b"])]++
		n++
	}
	rows, err := db.Query(ctx, "SELECT a, b FROM nokey")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a int
		var b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprint(a, "/", b)]--
	}
	for k, v := range got {
		if v != 0 {
			t.Fatalf("nokey row %s: %+d records compared with the table (%d records)", k, v, n)
		}
	}
	if chunks := d.metricLabel("cdcd_snapshot_chunks_total", `table="public.nokey"`); chunks < 2 {
		t.Errorf("nokey was read in %v chunks; want several page ranges", chunks)
	}

	// comp: every (region, id) once with its value.
	c, recs = readKV(t, s, name+".public.comp", 20000, 2*time.Minute)
	keys := map[string]int64{}
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		k := unwrapAll(c.decode(t, r.Key))
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		keys[fmt.Sprint(k["region"], "/", k["id"])] = toInt64(t, after["v"])
	}
	if len(keys) != 20000 {
		t.Fatalf("comp: %d distinct keys, want 20000", len(keys))
	}
	if keys["z'q/3"] != 6 || keys["eu/4000"] != 8000 {
		t.Fatalf("comp values wrong: z'q/3=%d eu/4000=%d", keys["z'q/3"], keys["eu/4000"])
	}

	// huge: 12 rows of 1 MiB, in chunks that ended early.
	c, recs = readKV(t, s, name+".public.huge", 12, 2*time.Minute)
	var sizes []int
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		blob, _ := after["blob"].(string)
		var want string
		if err := db.QueryRow(ctx, "SELECT blob FROM huge WHERE id = $1", toInt64(t, after["id"])).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if blob != want {
			t.Fatalf("huge row %v differs from the table (%d vs %d bytes)", after["id"], len(blob), len(want))
		}
		sizes = append(sizes, len(blob))
	}
	if len(sizes) != 12 || sizes[0] != 1<<20 {
		t.Fatalf("huge: %d records, sizes %v", len(sizes), sizes)
	}
	if chunks := d.metricLabel("cdcd_snapshot_chunks_total", `table="public.huge"`); chunks < 4 {
		t.Errorf("huge was read in %v chunks; 3MiB chunks of 1MiB rows must end early", chunks)
	}
}

// metricLabel sums the series of a metric whose labels contain match.
func (d *daemon) metricLabel(name, match string) float64 {
	d.t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		d.t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

func ptr[T any](v T) *T { return &v }

// TestSnapshotStreamParity: a row gives the same key bytes, the same value schema and the same
// after image whether it comes from the snapshot or from the stream, for every supported type.
func TestSnapshotStreamParity(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_snap_parity", everythingDDL+`
		INSERT INTO everything VALUES (1, true, -32768, 2147483647, -9223372036854775808, 'NaN', '-Infinity',
		-12345678.90, 'NaN', 'héllo ✓ 世界', '', 'ab', '\x00ff', '0001-01-01', '24:00:00', '10:11:12.5+02',
		'9999-12-31 23:59:59.999999', 'infinity', '1 year 2 mons 3 days 04:05:06.5',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', '192.168.0.1/24', '10.0.0.0/8',
		'08:00:2b:01:02:03', 'happy', 5, '{1,NULL,3}', '{"a,b",NULL,"",x}');
		INSERT INTO everything (id) VALUES (2);
		INSERT INTO everything (id, t, f4, f8, n, ts, tstz, d, by) VALUES (3, 'x', 1.5, 2.25, 0.01, '2024-02-29 12:00:00.5', '1999-12-31 23:59:59+00', '2000-01-01', '\x');`)
	name := uniqueName("parity")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.everything"}, "    snapshot: initial\n"))
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	// The same rows again through the stream: an update that changes nothing (REPLICA
	// IDENTITY FULL sends every column).
	if _, err := db.Exec(ctx, "UPDATE everything SET b = b"); err != nil {
		t.Fatal(err)
	}
	c, recs := readKV(t, s, name+".public.everything", 6, time.Minute)
	checkParity(t, c, recs, 3, "")
}

// checkParity compares, for each row id, the snapshot read (op r) with the streamed update
// (op u) of the same row: key bytes, value schema id and every column of after but skip.
func checkParity(t *testing.T, c *consumer, recs []*kgo.Record, rows int, skip string) {
	t.Helper()
	type seen struct {
		key, schema []byte
		after       map[string]any
	}
	snap, stream := map[string]seen{}, map[string]seen{}
	for _, r := range recs {
		if r.Attrs.IsControl() || r.Value == nil {
			continue
		}
		v := c.decode(t, r.Value)
		sv := seen{key: r.Key, schema: r.Value[1:5], after: unwrapAll(asMap(v["after"]))}
		id := fmt.Sprint(sv.after["id"])
		switch v["op"] {
		case "r":
			snap[id] = sv
		case "u":
			stream[id] = sv
		}
	}
	if len(snap) != rows || len(stream) != rows {
		t.Fatalf("want %d snapshot reads and %d updates, got %d and %d", rows, rows, len(snap), len(stream))
	}
	for id, a := range snap {
		b := stream[id]
		if string(a.key) != string(b.key) {
			t.Errorf("row %s: key bytes differ: snapshot %x, stream %x", id, a.key, b.key)
		}
		if string(a.schema) != string(b.schema) {
			t.Errorf("row %s: value schema id differs: snapshot %x, stream %x", id, a.schema, b.schema)
		}
		for col, va := range a.after {
			if col == skip {
				continue
			}
			if !equalValue(va, b.after[col]) && !(fmt.Sprint(va) == "NaN" && fmt.Sprint(b.after[col]) == "NaN") {
				t.Errorf("row %s column %s: snapshot %#v, stream %#v", id, col, va, b.after[col])
			}
		}
	}
}

// kadmClient is an admin client of the stack's Kafka.
func kadmClient(t *testing.T, s stack) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestSnapshotWaitsOutCommitsNotYetVisible: the race between a transaction's commit record and
// its visibility. A transaction T is held after its commit record is written (it waits for a
// synchronous standby that does not exist), so the stream carries T's change while T is still
// invisible to every snapshot. A snapshot requested then must not read the row as it was
// before T and publish it after T's change: the latest record must end up as T left the row.
func TestSnapshotWaitsOutCommitsNotYetVisible(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_snap_race", `CREATE TABLE race (k int PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO race SELECT g, 0 FROM generate_series(1, 100) g;`)
	name := uniqueName("race")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.race"}, "    snapshot: {mode: never, signal_key: "+testSignalKey+"}\n"))
	d.waitReady(90 * time.Second)

	admin := pgConnect(t, ctx, s.pgDSN)
	release := func() {
		_, _ = admin.Exec(context.Background(), "ALTER SYSTEM RESET synchronous_standby_names")
		_, _ = admin.Exec(context.Background(), "ALTER SYSTEM RESET synchronous_commit")
		_, _ = admin.Exec(context.Background(), "SELECT pg_reload_conf()")
	}
	t.Cleanup(release)
	// Only sessions that ask for synchronous commit wait; everyone else commits locally.
	for _, q := range []string{"ALTER SYSTEM SET synchronous_commit = 'local'", "ALTER SYSTEM SET synchronous_standby_names = 'cdcd_test_nobody'", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)

	held := pgConnect(t, ctx, dsn)
	done := make(chan error, 1)
	go func() {
		_, err := held.Exec(ctx, "SET synchronous_commit = on; UPDATE race SET v = 999 WHERE k = 1")
		done <- err
	}()
	// The stream publishes T's change while T is invisible.
	c := newConsumer(t, s, name+".public.race")
	got := false
	for deadline := time.Now().Add(time.Minute); !got && time.Now().Before(deadline); {
		for _, r := range c.read(t, 1, 2*time.Second, 0) {
			if v := c.decode(t, r.Value); v["op"] == "u" {
				got = true
			}
		}
	}
	if !got {
		t.Fatalf("the held transaction's update was not published\n%s", d.Logs())
	}
	var v int64
	if err := db.QueryRow(ctx, "SELECT v FROM race WHERE k = 1").Scan(&v); err != nil || v != 0 {
		t.Fatalf("the held transaction is visible already (v=%d, %v): the test cannot show the race", v, err)
	}
	t.Log(strings.TrimSpace(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.race")))
	time.Sleep(3 * time.Second) // a snapshot that does not wait reads and publishes now
	release()
	if err := <-done; err != nil {
		t.Fatalf("held transaction: %v", err)
	}
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	recs := readSnapTopic(t, s, name+".public.race", 101, time.Minute)
	if n := checkAgainstTable(t, ctx, db, "race", recs); n != 100 {
		t.Fatalf("%d snapshot reads, want 100", n)
	}
}

// TestSnapshotCompletesUnchangedToast: a table whose text column is stored out of line (4 kB,
// STORAGE EXTERNAL), default replica identity, and writers updating the other column while a
// snapshot reads it in small chunks. An update the chunk's snapshot did not see sends the text
// only as "unchanged"; its chunk row used to be dropped, so the key's value was never
// published (every record of it carried the placeholder). Now every key has a record with its
// value, and the latest record per key equals the table.
func TestSnapshotCompletesUnchangedToast(t *testing.T) {
	const rows = 1000
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_snap_toast", `CREATE SEQUENCE ver;
		CREATE TABLE snap (k int PRIMARY KEY, v bigint NOT NULL, body text NOT NULL);
		ALTER TABLE snap ALTER COLUMN body SET STORAGE EXTERNAL;`)
	if _, err := db.Exec(ctx, `INSERT INTO snap SELECT g, 0, repeat(md5(g::text), 128) FROM generate_series(0, $1 - 1) g`, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE snap`); err != nil {
		t.Fatal(err)
	}
	var toast int64
	if err := db.QueryRow(ctx, `SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'snap'::regclass`).Scan(&toast); err != nil || toast < rows*4096 {
		t.Fatalf("the TOAST table holds %d bytes, not every body (%v)", toast, err)
	}
	name := uniqueName("stoast")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.snap"}, "    snapshot: {mode: initial, chunk_size: 10, parallelism: 2}\n"))
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var writes atomic.Int64
	var wg sync.WaitGroup
	seed := loggedSeed(t, "writers")
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for wctx.Err() == nil {
				if _, err := pool.Exec(wctx, "UPDATE snap SET v = nextval('ver') WHERE k = $1", rng.IntN(rows)); err == nil {
					writes.Add(1)
				}
			}
		}(w)
	}
	waitFor(t, d, "the snapshot to finish", 3*time.Minute, func() bool {
		return strings.Contains(d.Logs(), `msg="snapshot finished"`)
	})
	stopWriters()
	wg.Wait()
	t.Logf("writers updated %d rows during the snapshot", writes.Load())
	if writes.Load() < 500 {
		t.Fatalf("only %d updates: the test did not exercise concurrency", writes.Load())
	}
	var sentinel int64 // a last change: the topic is read until the pipeline caught up
	if err := db.QueryRow(ctx, "UPDATE snap SET v = nextval('ver') WHERE k = 0 RETURNING v").Scan(&sentinel); err != nil {
		t.Fatal(err)
	}
	recs := readSnapTopicBy(t, s, name+".public.snap", int(writes.Load())+rows/2, sentinel, time.Minute,
		func(key map[string]any) int64 { return toInt64(t, key["k"]) })
	checkAgainstTable(t, ctx, db, "snap", recs)
	has := map[int64]bool{}
	for _, r := range recs {
		sum := md5.Sum([]byte(fmt.Sprint(r.k)))
		if r.bodyLen == 4096 && r.body == hex.EncodeToString(sum[:]) {
			has[r.k] = true
		}
	}
	if len(has) != rows {
		missing := []int64{}
		for k := int64(0); k < rows && len(missing) < 10; k++ {
			if !has[k] {
				missing = append(missing, k)
			}
		}
		t.Fatalf("%d of %d keys never published their body (first: %v)", rows-len(has), rows, missing)
	}
}

// snapShape is a table of the key-shapes crash test: its key is a function of an integer n
// (so one checker serves every key type), v a version from the sequence ver.
type snapShape struct {
	table   string
	ddl     string
	fill    string             // fills keys 0..rows-1 ($1: rows)
	kv      string             // SELECT <n>, v FROM the table
	keyCols string             // the key's columns (ON CONFLICT)
	key     func(n int) string // the key's values of n, as SQL
	where   func(n int) string // the condition selecting n's row
	extra   func(n int) string // values of the columns after v on insert ("" none)
	keyOf   func(map[string]any) int64
	rows    int
}

// pgShapes are the PostgreSQL tables of TestSnapshotKeyShapesUnderWritersAndSIGKILL.
func pgShapes(t *testing.T) []snapShape {
	return []snapShape{{
		table: "toast", rows: 3000,
		ddl:  `CREATE TABLE toast (k int PRIMARY KEY, v bigint NOT NULL, body text NOT NULL); ALTER TABLE toast ALTER COLUMN body SET STORAGE EXTERNAL`,
		fill: `INSERT INTO toast SELECT g, 0, repeat(md5(g::text), 128) FROM generate_series(0, $1 - 1) g`,
		kv:   `SELECT k, v FROM toast`, keyCols: "k",
		key:   func(n int) string { return strconv.Itoa(n) },
		where: func(n int) string { return fmt.Sprintf("k = %d", n) },
		extra: func(n int) string { return fmt.Sprintf("repeat(md5('%d'), 128)", n) },
		keyOf: func(k map[string]any) int64 { return toInt64(t, k["k"]) },
	}, {
		table: "bits", rows: 15000,
		ddl:  `CREATE TABLE bits (k bit(16) PRIMARY KEY, v bigint NOT NULL)`,
		fill: `INSERT INTO bits SELECT g::bit(16), 0 FROM generate_series(0, $1 - 1) g`,
		kv:   `SELECT k::int, v FROM bits`, keyCols: "k",
		key:   func(n int) string { return fmt.Sprintf("%d::bit(16)", n) },
		where: func(n int) string { return fmt.Sprintf("k = %d::bit(16)", n) },
		keyOf: func(k map[string]any) int64 {
			n, err := strconv.ParseInt(unwrap(k["k"]).(string), 2, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
	}, {
		table: "floats", rows: 15000,
		ddl:  `CREATE TABLE floats (k real PRIMARY KEY, v bigint NOT NULL)`,
		fill: `INSERT INTO floats SELECT g / 8.0, 0 FROM generate_series(0, $1 - 1) g`,
		kv:   `SELECT (k * 8)::int8, v FROM floats`, keyCols: "k",
		key:   func(n int) string { return fmt.Sprintf("%d / 8.0", n) },
		where: func(n int) string { return fmt.Sprintf("k = %d / 8.0", n) },
		keyOf: func(k map[string]any) int64 { return int64(math.Round(float64(unwrap(k["k"]).(float32)) * 8)) },
	}, {
		table: "comp", rows: 15000,
		ddl:  `CREATE TABLE comp (a int, b text, v bigint NOT NULL, PRIMARY KEY (a, b))`,
		fill: `INSERT INTO comp SELECT g / 100, 'b' || (g % 100), 0 FROM generate_series(0, $1 - 1) g`,
		kv:   `SELECT a * 100 + substr(b, 2)::int, v FROM comp`, keyCols: "a, b",
		key:   func(n int) string { return fmt.Sprintf("%d, 'b%d'", n/100, n%100) },
		where: func(n int) string { return fmt.Sprintf("a = %d AND b = 'b%d'", n/100, n%100) },
		keyOf: func(k map[string]any) int64 {
			b, _ := strconv.Atoi(strings.TrimPrefix(unwrap(k["b"]).(string), "b"))
			return toInt64(t, k["a"])*100 + int64(b)
		},
	}}
}

// shapeHammer runs writers that update, delete and re-insert random keys of the tables (up to
// 10 % past their rows) until ctx ends, in transactions of 1 to 4 changes; exec runs one
// statement of the writer w. It returns the transactions committed.
func shapeHammer(ctx context.Context, shapes []snapShape, writers int, seed uint64, upsert func(sh snapShape, n int) string,
	begin func(w int) (exec func(string) error, end func(commit bool) bool)) func() int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				exec, end := begin(w)
				ok := exec != nil
				for i := 0; i < 1+rng.IntN(4) && ok; i++ {
					sh := shapes[rng.IntN(len(shapes))]
					k := rng.IntN(sh.rows + sh.rows/10)
					var q string
					switch rng.IntN(10) {
					case 0, 1:
						q = "DELETE FROM " + sh.table + " WHERE " + sh.where(k)
					case 2, 3:
						q = upsert(sh, k)
					default:
						q = "UPDATE " + sh.table + " SET v = %s WHERE " + sh.where(k)
					}
					ok = exec(q) == nil
				}
				if end != nil && end(ok) {
					n.Add(1)
				}
			}
		}(w)
	}
	var once sync.Once
	return func() int64 {
		once.Do(wg.Wait)
		return n.Load()
	}
}

// TestSnapshotKeyShapesUnderWritersAndSIGKILL: tables keyed by bit(16), real and (int, text),
// one with a TOASTed text column, and one without a key (accepted, not written) are
// snapshotted in small chunks (one at a time, so the kill lands mid-snapshot) while writers change the keyed ones, and cdcd is killed midway.
// Per keyed table the latest record per key equals the table and no key goes back in time;
// every key of the TOAST table has a record with its text; the keyless table's rows arrive
// once each.
func TestSnapshotKeyShapesUnderWritersAndSIGKILL(t *testing.T) {
	shapes := pgShapes(t)
	ddl := "CREATE SEQUENCE ver;\nCREATE TABLE nokey (a int NOT NULL, pad text NOT NULL);\nALTER TABLE nokey REPLICA IDENTITY FULL;\n"
	for _, sh := range shapes {
		ddl += sh.ddl + ";\n"
	}
	s, ctx, dsn, db := setup(t, 6*time.Minute, "cdcd_snap_kshapes", ddl)
	const nokeyRows = 15000
	if _, err := db.Exec(ctx, `INSERT INTO nokey SELECT g % 1000, md5(g::text) FROM generate_series(0, $1 - 1) g`, nokeyRows); err != nil {
		t.Fatal(err)
	}
	total := nokeyRows
	tables := []string{"public.nokey"}
	for _, sh := range shapes {
		if _, err := db.Exec(ctx, sh.fill, sh.rows); err != nil {
			t.Fatalf("%s: %v", sh.fill, err)
		}
		total += sh.rows
		tables = append(tables, "public."+sh.table)
	}
	if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	name := uniqueName("kshapes")
	d := startDaemon(t, pipelineYAML(s, name, dsn, tables,
		"    snapshot: {mode: initial, chunk_size: 100, parallelism: 1, accept_inexact_keyless: [public.nokey]}\n"))

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	upsert := func(sh snapShape, n int) string {
		vals := sh.key(n) + ", %s"
		if sh.extra != nil {
			vals += ", " + sh.extra(n)
		}
		return "INSERT INTO " + sh.table + " VALUES (" + vals + ") ON CONFLICT (" + sh.keyCols + ") DO UPDATE SET v = %s"
	}
	writes := shapeHammer(wctx, shapes, 2, loggedSeed(t, "writers"), upsert, func(int) (func(string) error, func(bool) bool) {
		tx, err := pool.Begin(wctx)
		if err != nil {
			return nil, nil
		}
		exec := func(q string) error {
			_, err := tx.Exec(wctx, strings.ReplaceAll(q, "%s", "nextval('ver')"))
			return err
		}
		return exec, func(ok bool) bool {
			if ok && tx.Commit(wctx) == nil {
				return true
			}
			_ = tx.Rollback(context.Background())
			return false
		}
	})
	waitFor(t, d, "a quarter of the snapshot", 3*time.Minute, func() bool { return metricOrZero(d, "cdcd_snapshot_rows_total") >= 0.25*float64(total) })
	d.stop(syscall.SIGKILL)
	d.restart()
	waitFor(t, d, "every table's snapshot", 4*time.Minute, func() bool {
		for _, tb := range tables {
			if countLines(d.Logs(), `msg="snapshot finished"`, "table="+tb+" ") == 0 {
				return false
			}
		}
		return true
	})
	stopWriters()
	t.Logf("writers committed %d transactions", writes())
	if !strings.Contains(d.Logs(), `msg="snapshot resumes"`) {
		t.Fatalf("the restarted run did not resume the snapshot\n%s", d.Logs())
	}
	d.waitReady(time.Minute)
	for _, sh := range shapes {
		// A last change, so the topic is read until the pipeline has caught up.
		var sentinel int64
		if err := db.QueryRow(ctx, strings.ReplaceAll(upsert(sh, 0), "%s", "nextval('ver')")+" RETURNING v").Scan(&sentinel); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(ctx, sh.kv)
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
		recs := readSnapTopicBy(t, s, name+".public."+sh.table, len(want), sentinel, 2*time.Minute, sh.keyOf)
		reads := checkAgainstKV(t, want, recs, func(int64) int { return 1 })
		t.Logf("%s: %d records, %d snapshot reads, %d rows", sh.table, len(recs), reads, len(want))
		if sh.table == "toast" {
			has := map[int64]bool{}
			for _, r := range recs {
				sum := md5.Sum([]byte(fmt.Sprint(r.k)))
				if r.bodyLen == 4096 && r.body == hex.EncodeToString(sum[:]) {
					has[r.k] = true
				}
			}
			for k := range want {
				if !has[k] {
					t.Errorf("toast key %d: no record carries its body", k)
				}
			}
		}
	}
	c, recs := readKV(t, s, name+".public.nokey", nokeyRows, 2*time.Minute)
	got := map[string]int{}
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
			got[fmt.Sprint(after["a"], "/", after["pad"])]++
		}
	}
	if len(got) != nokeyRows {
		t.Fatalf("nokey: %d distinct rows published, want %d", len(got), nokeyRows)
	}
	for row, n := range got {
		if n != 1 {
			t.Fatalf("nokey row %s published %d times", row, n)
		}
	}
}
