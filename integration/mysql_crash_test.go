package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/go-mysql-org/go-mysql/client"
)

// mysqlKVWriter commits upserts into kv in transactions of random size, paced to about rate
// rows per second. v increases globally, so per key it increases in commit order.
type mysqlKVWriter struct {
	mu      sync.Mutex
	changes []kvChange
	rows    int
}

func (w *mysqlKVWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows
}

func (w *mysqlKVWriter) run(ctx context.Context, db *client.Conn, total, maxTx, rate, keys int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	var v, tx int64
	for w.rows < total {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := min(1+rng.IntN(maxTx), total-w.rows)
		tx++
		var txChanges []kvChange
		if _, err := db.Execute("BEGIN"); err != nil {
			return err
		}
		for done := 0; done < size; {
			n := min(100, size-done)
			var q strings.Builder
			q.WriteString("INSERT INTO kv (k, v, tx, txsize) VALUES ")
			for i := 0; i < n; i++ {
				v++
				k := rng.IntN(keys)
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,%d,%d)", k, v, tx, size)
				txChanges = append(txChanges, kvChange{k, v, tx, size})
			}
			q.WriteString(" ON DUPLICATE KEY UPDATE v = VALUES(v), tx = VALUES(tx), txsize = VALUES(txsize)")
			if _, err := db.Execute(q.String()); err != nil {
				_, _ = db.Execute("ROLLBACK")
				return err
			}
			done += n
		}
		if _, err := db.Execute("COMMIT"); err != nil {
			return err
		}
		w.mu.Lock()
		w.changes = append(w.changes, txChanges...)
		w.rows += size
		w.mu.Unlock()
		if ahead := time.Duration(float64(w.rows)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}

// TestMySQLExactlyOnceUnderSIGKILL: a writer commits 200k rows into MariaDB in transactions
// of 1..400 rows while cdcd, with batch.max_events 50 (most source transactions are split
// across Kafka transactions), is killed with SIGKILL 6 times and restarted. Every change must
// arrive exactly once and in commit order per key, and the latest record per key must equal
// the table.
func TestMySQLExactlyOnceUnderSIGKILL(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 10*time.Minute, "cdcd_mycrash",
		`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
	name := uniqueName("mycrash")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, "    batch:\n      max_events: 50\n"))
	d.waitReady(60 * time.Second)

	const total = 200_000
	seed := loggedSeed(t, "writer and kill schedule")
	rng := rand.New(rand.NewPCG(seed, 13))
	w := &mysqlKVWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	go func() { werr <- w.run(wctx, conn, total, 400, 5000, 2000, seed) }()
	kills := 0
	for kills < 6 {
		time.Sleep(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		kills++
		t.Logf("SIGKILL %d at %d rows written", kills, w.written())
		d.restart()
		d.waitReady(60 * time.Second)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if w.written() != total {
		t.Fatalf("the writer finished with %d rows; make the kill schedule shorter than the writer", w.written())
	}
	c, recs := readKV(t, s, name+"."+db+".kv", total, 4*time.Minute)
	verifySplit(t, c, recs, w.changes)

	// The latest record per key equals the table.
	latest := map[int64]int64{}
	for _, r := range recs {
		if r.Attrs.IsControl() || r.Value == nil {
			continue
		}
		env := unwrap(c.decode(t, r.Value)).(map[string]any)
		after := unwrapAll(unwrap(env["after"]).(map[string]any))
		latest[int64(after["k"].(int))] = after["v"].(int64)
	}
	res, err := conn.Execute("SELECT k, v FROM kv")
	if err != nil {
		t.Fatal(err)
	}
	if res.RowNumber() != len(latest) {
		t.Fatalf("table has %d keys, the topic %d", res.RowNumber(), len(latest))
	}
	for i := 0; i < res.RowNumber(); i++ {
		k, _ := res.GetInt(i, 0)
		v, _ := res.GetInt(i, 1)
		if latest[k] != v {
			t.Errorf("key %d: table has v=%d, the topic's latest record %d", k, v, latest[k])
		}
	}
}

// TestMySQLExactlyOnceUnderSIGKILLMixed is the crash test with the workloads production
// brings: plain upsert transactions (most split across Kafka transactions, some also writing
// a second table), XA branches prepared and committed or rolled back a few transactions later,
// nightly-style TRUNCATE of a captured table followed by re-inserts, and a session with
// binlog_row_image=MINIMAL updating a third table, while cdcd (on_error: dlq) is killed with
// SIGKILL four times. Every committed change arrives exactly once and in order per key,
// nothing of a rolled-back branch arrives, the truncated table's topic is exactly the
// sequence of truncates and inserts that was committed, and each MINIMAL update is exactly
// one dead letter naming binlog_row_image, never a record with NULLs for the columns it did
// not carry. It runs on a private MariaDB: the shared server's binlog must not carry XA
// branches or MINIMAL row images that other pipelines read.
func TestMySQLExactlyOnceUnderSIGKILLMixed(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 4*time.Minute)
	admin := mysqlConn(t, ctx, m.dsn)
	for _, q := range []string{"CREATE DATABASE x",
		"CREATE TABLE x.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)",
		"CREATE TABLE x.tt (id INT PRIMARY KEY, gen INT NOT NULL)",
		"CREATE TABLE x.mi (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20) NOT NULL)",
		"INSERT INTO x.mi VALUES (0,0,'b0'),(1,0,'b1'),(2,0,'b2'),(3,0,'b3'),(4,0,'b4')",
	} {
		mysqlExec(t, admin, q)
	}
	name := uniqueName("mymixkill")
	// One partition: a truncate has no key, so only one partition orders it with the inserts
	// around it.
	yaml := strings.Replace(mysqlPipelineYAML(s, name, m.dsn+"x", nextServerID(), []string{"x.kv", "x.tt", "x.mi"},
		"    on_error: dlq\n    batch:\n      max_events: 50\n    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n"),
		"topic_partitions: 3", "topic_partitions: 1", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	seed := loggedSeed(t, "mixed workload and kill schedule")
	rng := rand.New(rand.NewPCG(seed, 21))
	kills := rand.New(rand.NewPCG(seed, 22))
	plain := mysqlConn(t, ctx, m.dsn+"x")
	minimal := mysqlConn(t, ctx, m.dsn+"x")
	mysqlExec(t, minimal, "SET SESSION binlog_row_image = 'MINIMAL'")
	type branch struct {
		conn    *client.Conn
		xid     string
		changes []kvChange
	}
	var (
		pending            []branch
		want               []kvChange // kv, in commit order
		wantTT             []string   // tt's records in commit order: "t" or "c id/gen"
		wantDead           = map[[2]int]int{}
		v, tx              int64
		gen, ttNext, minup int
		xaKey              = 100_000
		rolledBack, xaDone int
	)
	exec := func(c *client.Conn, q string) bool {
		if _, err := c.Execute(q); err != nil {
			t.Errorf("writer: %s: %v", q[:min(len(q), 80)], err)
			return false
		}
		return true
	}
	finish := func(b branch, commit bool) bool {
		verb := "XA ROLLBACK '"
		if commit {
			verb = "XA COMMIT '"
		}
		ok := exec(b.conn, verb+b.xid+"'")
		if ok && commit {
			want = append(want, b.changes...)
		} else if ok {
			rolledBack++
		}
		xaDone++
		b.conn.Close()
		return ok
	}
	upsert := func(size int, xa bool) (string, []kvChange) {
		tx++
		var q strings.Builder
		q.WriteString("INSERT INTO kv VALUES ")
		var changes []kvChange
		for j := 0; j < size; j++ {
			v++
			k := rng.IntN(1000)
			if xa {
				k = xaKey
				xaKey++
			}
			if j > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d,%d,%d,%d)", k, v, tx, size)
			changes = append(changes, kvChange{k, v, tx, size})
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE v = VALUES(v), tx = VALUES(tx), txsize = VALUES(txsize)")
		return q.String(), changes
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3000 && !t.Failed(); i++ {
			select {
			case <-stop:
				if i > 300 {
					i = 3000
					continue
				}
			default:
			}
			switch r := rng.IntN(20); {
			case r < 11: // a plain transaction
				q, changes := upsert(1+rng.IntN(150), false)
				if rng.IntN(3) > 0 {
					if !exec(plain, q) {
						return
					}
					want = append(want, changes...)
					continue
				}
				// with rows of tt in the same transaction
				ttNext++
				if !exec(plain, "BEGIN") || !exec(plain, q) || !exec(plain, fmt.Sprintf("INSERT INTO tt VALUES (%d,%d)", ttNext, gen)) || !exec(plain, "COMMIT") {
					return
				}
				want = append(want, changes...)
				wantTT = append(wantTT, fmt.Sprintf("c %d/%d", ttNext, gen))
			case r < 15: // an XA branch, finished a few transactions later
				q, changes := upsert(1+rng.IntN(40), true)
				c, err := mysql.Connect(ctx, m.dsn+"x")
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				b := branch{conn: c, xid: fmt.Sprintf("b%d", tx), changes: changes}
				for _, stmt := range []string{"XA START '" + b.xid + "'", q, "XA END '" + b.xid + "'", "XA PREPARE '" + b.xid + "'"} {
					if !exec(c, stmt) {
						return
					}
				}
				pending = append(pending, b)
			case r < 17: // truncate and reload
				gen++
				if !exec(plain, "/* reload */ TRUNCATE TABLE tt") {
					return
				}
				wantTT = append(wantTT, "t")
				n := 1 + rng.IntN(30)
				var q strings.Builder
				q.WriteString("INSERT INTO tt VALUES ")
				for j := 0; j < n; j++ {
					ttNext++
					if j > 0 {
						q.WriteByte(',')
					}
					fmt.Fprintf(&q, "(%d,%d)", ttNext, gen)
					wantTT = append(wantTT, fmt.Sprintf("c %d/%d", ttNext, gen))
				}
				if !exec(plain, q.String()) {
					return
				}
			default: // the MINIMAL session: the image lacks b, so each row is a dead letter
				minup++
				lo := rng.IntN(5)
				hi := min(4, lo+rng.IntN(3))
				if !exec(minimal, fmt.Sprintf("UPDATE mi SET a = %d WHERE id BETWEEN %d AND %d", minup, lo, hi)) {
					return
				}
				for id := lo; id <= hi; id++ {
					wantDead[[2]int{id, minup}]++
				}
			}
			if len(pending) > 3 || len(pending) > 0 && rng.IntN(3) == 0 {
				if !finish(pending[0], rng.IntN(4) != 0) {
					return
				}
				pending = pending[1:]
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, b := range pending {
			if !finish(b, true) {
				return
			}
		}
	}()
	for i := 0; i < 4; i++ {
		time.Sleep(time.Duration(1500+kills.IntN(2500)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		d.restart()
		d.waitReady(60 * time.Second)
	}
	close(stop)
	<-done
	if t.Failed() {
		return
	}
	t.Logf("workload: %d kv changes, %d XA branches (%d rolled back), %d tt records, %d MINIMAL rows",
		len(want), xaDone, rolledBack, len(wantTT), len(wantDead))

	c, recs := readKV(t, s, name+".x.kv", len(want), 2*time.Minute)
	verifySplit(t, c, recs, want)

	ttc, ttRecs := readKV(t, s, name+".x.tt", len(wantTT), time.Minute)
	var gotTT []string
	for _, r := range ttRecs {
		if r.Attrs.IsControl() || r.Value == nil {
			continue
		}
		env := unwrap(ttc.decode(t, r.Value)).(map[string]any)
		switch op := env["op"].(string); op {
		case "t":
			gotTT = append(gotTT, "t")
		case "c":
			after := unwrapAll(unwrap(env["after"]).(map[string]any))
			gotTT = append(gotTT, fmt.Sprintf("c %d/%d", after["id"], after["gen"]))
		default:
			gotTT = append(gotTT, op+"?")
		}
	}
	if strings.Join(gotTT, ",") != strings.Join(wantTT, ",") {
		first := 0
		for first < min(len(gotTT), len(wantTT)) && gotTT[first] == wantTT[first] {
			first++
		}
		t.Errorf("tt: %d records, want %d; first difference at %d: got %q, want %q", len(gotTT), len(wantTT), first,
			gotTT[first:min(len(gotTT), first+5)], wantTT[first:min(len(wantTT), first+5)])
	}

	_, miRecs := readKV(t, s, name+".x.mi", 0, 0)
	if n := countData(miRecs); n != 0 {
		t.Errorf("x.mi: %d records published from MINIMAL row images, want none (they are dead letters)", n)
	}
	dead := newConsumer(t, s, name+".dlq").read(t, len(wantDead), time.Minute, 2*time.Second)
	got := map[[2]int]int{}
	for _, r := range dead {
		var l struct {
			Table  string         `json:"table"`
			Before map[string]any `json:"before"`
			After  map[string]any `json:"after"`
			Error  struct{ Message string }
		}
		if err := json.Unmarshal(r.Value, &l); err != nil {
			t.Fatalf("dead letter %s: %v", r.Value, err)
		}
		if l.Table != "mi" || !strings.Contains(l.Error.Message, "binlog_row_image") {
			t.Errorf("dead letter for %s: %q, want one for mi naming binlog_row_image", l.Table, l.Error.Message)
			continue
		}
		id, _ := l.Before["id"].(float64)
		a, _ := l.After["a"].(float64)
		got[[2]int{int(id), int(a)}]++
	}
	missing, dup, unknown := 0, 0, 0
	for k := range wantDead {
		switch got[k] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	for k := range got {
		if wantDead[k] == 0 {
			unknown++
		}
	}
	if missing+dup+unknown > 0 || len(dead) != len(wantDead) {
		t.Errorf("dead letters: %d for %d MINIMAL rows; %d missing, %d duplicated, %d unknown", len(dead), len(wantDead), missing, dup, unknown)
	}
	if t.Failed() {
		t.Logf("cdcd log (tail):\n%s", tail(d.Logs(), 4000))
	}
}
