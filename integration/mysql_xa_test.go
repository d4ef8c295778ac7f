package integration

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/go-mysql-org/go-mysql/client"
)

// TestMySQLXA: XA transactions on a captured table while cdcd streams and restarts. A
// prepared branch is published at its XA COMMIT, never while only prepared, even when cdcd
// is killed in between (the restart reads the prepared rows again); a rolled-back branch is
// never published. The XA PREPARE group used to be taken for an open transaction, and the
// next transaction failed "starts a transaction while ... open" at the same spot after every
// restart. It runs on a private MariaDB: the shared server's binlog must not carry XA
// transactions that other branches' pipelines would wedge on.
func TestMySQLXA(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 3*time.Minute)
	conn := mysqlConn(t, ctx, m.dsn)
	mysqlExec(t, conn, "CREATE DATABASE x")
	mysqlExec(t, conn, "CREATE TABLE x.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	mysqlExec(t, conn, "USE x")
	plain := mysqlConn(t, ctx, m.dsn+"x")
	name := uniqueName("myxa")
	yaml := mysqlPipelineYAML(s, name, m.dsn+"x", nextServerID(), []string{"x.kv"}, "    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n")
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	var want []kvChange
	row := func(k int, v int64) string {
		want = append(want, kvChange{k, v, v, 1})
		return fmt.Sprintf("INSERT INTO kv VALUES (%d,%d,%d,1)", k, v, v)
	}
	for _, q := range []string{"XA START 'a1'", row(1, 1), "XA END 'a1'", "XA PREPARE 'a1'"} {
		mysqlExec(t, conn, q)
	}
	mysqlExec(t, plain, row(2, 2))
	c, recs := readKV(t, s, name+".x.kv", 1, time.Minute)
	verifySplit(t, c, recs, want[1:2]) // the prepared branch is not published
	other := mysqlConn(t, ctx, m.dsn+"x")
	for _, q := range []string{"XA START 'b2'", "INSERT INTO kv VALUES (3,3,3,1)", "XA END 'b2'", "XA PREPARE 'b2'", "XA ROLLBACK 'b2'"} {
		mysqlExec(t, other, q)
	}
	d.stop(syscall.SIGKILL) // a1 is still prepared
	d.restart()
	d.waitReady(60 * time.Second)
	mysqlExec(t, plain, row(4, 4))
	mysqlExec(t, conn, "XA COMMIT 'a1'")
	mysqlExec(t, plain, row(5, 5))
	c, recs = readKV(t, s, name+".x.kv", len(want), time.Minute)
	verifySplit(t, c, recs, want)
	if t.Failed() {
		t.Logf("cdcd log (tail):\n%s", tail(d.Logs(), 3000))
	}
}

// TestMySQLXAUnderSIGKILL: plain transactions and XA branches (prepared, then committed or
// rolled back a few transactions later) go into a captured table while cdcd, with most
// transactions split across Kafka transactions, is killed with SIGKILL three times. Every
// committed change arrives exactly once, nothing of a rolled-back branch arrives. Each branch
// writes keys of its own (a prepared branch holds its row locks until its commit).
func TestMySQLXAUnderSIGKILL(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 4*time.Minute)
	admin := mysqlConn(t, ctx, m.dsn)
	mysqlExec(t, admin, "CREATE DATABASE x")
	mysqlExec(t, admin, "CREATE TABLE x.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	name := uniqueName("myxakill")
	yaml := mysqlPipelineYAML(s, name, m.dsn+"x", nextServerID(), []string{"x.kv"},
		"    batch:\n      max_events: 30\n    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n")
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	seed := loggedSeed(t, "XA workload and kill schedule")
	rng := rand.New(rand.NewPCG(seed, 11))
	kills := rand.New(rand.NewPCG(seed, 12))
	plain := mysqlConn(t, ctx, m.dsn+"x")
	type branch struct {
		conn    *client.Conn
		xid     string
		changes []kvChange
	}
	var pending []branch
	var want []kvChange
	var v, tx int64
	xaKey := 100_000
	finish := func(b branch, commit bool) {
		verb := "XA ROLLBACK '"
		if commit {
			verb = "XA COMMIT '"
			want = append(want, b.changes...)
		}
		mysqlExec(t, b.conn, verb+b.xid+"'")
		b.conn.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 500 && !t.Failed(); i++ {
			tx++
			size := 1 + rng.IntN(60)
			var q strings.Builder
			q.WriteString("INSERT INTO kv VALUES ")
			var changes []kvChange
			isXA := rng.IntN(4) == 0
			for j := 0; j < size; j++ {
				v++
				k := rng.IntN(1000)
				if isXA {
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
			if !isXA {
				if _, err := plain.Execute(q.String()); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				want = append(want, changes...)
			} else {
				c, err := mysql.Connect(ctx, m.dsn+"x")
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				b := branch{conn: c, xid: fmt.Sprintf("b%d", tx), changes: changes}
				for _, stmt := range []string{"XA START '" + b.xid + "'", q.String(), "XA END '" + b.xid + "'", "XA PREPARE '" + b.xid + "'"} {
					if _, err := c.Execute(stmt); err != nil {
						t.Errorf("writer: %s: %v", stmt, err)
						return
					}
				}
				pending = append(pending, b)
			}
			if len(pending) > 3 || len(pending) > 0 && rng.IntN(3) == 0 {
				finish(pending[0], rng.IntN(5) != 0)
				pending = pending[1:]
			}
			time.Sleep(8 * time.Millisecond)
		}
		for _, b := range pending {
			finish(b, true)
		}
	}()
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(700+kills.IntN(1200)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		d.restart()
		d.waitReady(60 * time.Second)
	}
	<-done
	if t.Failed() {
		return
	}
	c, recs := readKV(t, s, name+".x.kv", len(want), 2*time.Minute)
	verifySplit(t, c, recs, want)
}

// TestMySQLXAPreparedBeforeFirstStart: an XA branch prepared before a brand-new pipeline's
// first position and committed after it used to be lost: its rows were not visible to the
// snapshot (only prepared), and its XA COMMIT, after the start position, matched no branch the
// stream had seen (logged only). A first start now waits while XA RECOVER lists prepared
// branches (saying so), then starts; the committed row arrives once, by the snapshot.
func TestMySQLXAPreparedBeforeFirstStart(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 3*time.Minute)
	conn := mysqlConn(t, ctx, m.dsn)
	mysqlExec(t, conn, "CREATE DATABASE x")
	mysqlExec(t, conn, "CREATE TABLE x.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	mysqlExec(t, conn, "INSERT INTO x.kv VALUES (1,1,1,1)")
	for _, q := range []string{"XA START 'p1'", "INSERT INTO x.kv VALUES (2,2,2,1)", "XA END 'p1'", "XA PREPARE 'p1'"} {
		mysqlExec(t, conn, q)
	}
	name := uniqueName("myxafirst")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, m.dsn+"x", nextServerID(), []string{"x.kv"}, "    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n"),
		"    snapshot: never\n", "    snapshot: initial\n", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitUnready(60*time.Second, "XA RECOVER")
	mysqlExec(t, conn, "XA COMMIT 'p1'")
	d.waitReady(60 * time.Second)
	waitFor(t, d, "the snapshot", time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	plain := mysqlConn(t, ctx, m.dsn+"x")
	mysqlExec(t, plain, "INSERT INTO kv VALUES (3,3,3,1)")
	recs := readSnapTopic(t, s, name+".x.kv", 3, time.Minute)
	seen := map[int64]int{}
	for _, r := range recs {
		seen[r.k]++
	}
	for k := int64(1); k <= 3; k++ {
		if seen[k] != 1 {
			t.Errorf("row %d published %d times, want once (records: %v)\n%s", k, seen[k], seen, tail(d.Logs(), 3000))
		}
	}
}
