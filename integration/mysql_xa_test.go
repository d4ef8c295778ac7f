package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"
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
