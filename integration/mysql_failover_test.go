package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// TestMySQLFailover: cdcd captures a primary, which fails over to its replica (replication
// stopped, the replica promoted); the pipeline's DSN then points at the new primary. Both
// servers rotated their binlogs, the old primary more often, so the new primary's binlog
// coordinates sort before the committed ones. Every change arrives exactly once: the
// session resumes by GTID on the new server and its positions follow the old server's.
// (Positions were compared across servers: every change whose coordinates on the new server
// sorted before the old server's committed ones was dropped as already published.)
func TestMySQLFailover(t *testing.T) {
	s := needStack(t)
	primary := startScratchMariaDBWith(t, 7, "")
	replica := startScratchMariaDBWith(t, 8, "log_slave_updates = ON")
	ctx := testCtx(t, 4*time.Minute)
	p := mysqlConn(t, ctx, primary.dsn)
	mysqlExec(t, p, "CREATE DATABASE f")
	mysqlExec(t, p, "CREATE TABLE f.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	_, port, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(primary.dsn, "root@tcp("), ")/"), ":")
	r := mysqlConn(t, ctx, replica.dsn)
	mysqlExec(t, r, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='root', MASTER_USE_GTID=slave_pos", port))
	mysqlExec(t, r, "START SLAVE")

	name := uniqueName("myfailover")
	extra := "    batch:\n      max_events: 40\n    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n"
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, primary.dsn+"f", nextServerID(), []string{"f.kv"}, extra))
	d.waitReady(60 * time.Second)
	w := &mysqlUpserts{keys: 200, maxSize: 30}
	pw := mysqlConn(t, ctx, primary.dsn+"f")
	for i := 0; i < 3; i++ {
		mysqlExec(t, p, "FLUSH BINARY LOGS")
	}
	w.write(t, pw, 100)
	c, recs := readKV(t, s, name+".f.kv", len(w.want), time.Minute)
	if countData(recs) != len(w.want) {
		t.Fatalf("before the failover: %d of %d changes", countData(recs), len(w.want))
	}
	// The replica has applied everything: the failover loses nothing on the database side.
	res, err := p.Execute("SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := res.GetString(0, 0)
	mysqlExec(t, r, "SELECT MASTER_GTID_WAIT('"+pos+"', 30)")
	oldFile := binlogFile(t, p)
	d.stop(syscall.SIGTERM)
	primary.stop()
	mysqlExec(t, r, "STOP SLAVE")
	mysqlExec(t, r, "RESET SLAVE ALL")
	// The new primary rotates into a file of the old one's current name: its offsets there sort
	// before the committed ones.
	for i := 0; binlogFile(t, r) != oldFile; i++ {
		if i == 10 {
			t.Fatalf("the new primary's binlog is %s, the old one's %s", binlogFile(t, r), oldFile)
		}
		mysqlExec(t, r, "FLUSH BINARY LOGS")
	}

	d2 := startMySQLDaemon(t, mysqlPipelineYAML(s, name, replica.dsn+"f", nextServerID(), []string{"f.kv"}, extra))
	d2.waitReady(60 * time.Second)
	rw := mysqlConn(t, ctx, replica.dsn+"f")
	w.write(t, rw, 40)
	c, recs = readKV(t, s, name+".f.kv", len(w.want), time.Minute)
	verifySplit(t, c, recs, w.want)
	if t.Failed() {
		t.Logf("cdcd log after the failover (tail):\n%s", tail(d2.Logs(), 3000))
	}
}

// binlogFile is the server's current binlog file.
func binlogFile(t *testing.T, conn *client.Conn) string {
	t.Helper()
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.GetString(0, 0)
	return f
}
