package integration

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMySQLIdleTableFollowsBinlog: the captured table is idle while another table of the
// server is written. The committed position still follows the binlog (transactions of other
// tables become empty commits at most a heartbeat interval apart), so a restart does not
// rescan them and the binlog metrics show no lag.
func TestMySQLIdleTableFollowsBinlog(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 4*time.Minute, "cdcd_idle", "CREATE TABLE captured (id INT PRIMARY KEY);\nCREATE TABLE other (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
	name := uniqueName("myidle")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".captured"}, ""))
	d.waitReady(60 * time.Second)
	load := func() offsets.Record {
		lctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		rec, _, err := offsets.Load(lctx, []kgo.Opt{kgo.SeedBrokers(s.kafka...)}, "_cdcd_offsets", name)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	mysqlExec(t, conn, "INSERT INTO captured VALUES (1)")
	deadline := time.Now().Add(60 * time.Second)
	var first offsets.Record
	for first = load(); first.Pos.Tx == 0; first = load() {
		if time.Now().After(deadline) {
			t.Fatalf("the captured insert was never committed\n%s", d.Logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		mysqlExec(t, conn, "INSERT INTO other (v) VALUES (?)", i)
	}
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := r.GetString(0, 0)
	var last offsets.Record
	for deadline = time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		last = load()
		if tok, err := mysql.ParseToken(last.Pos.Resume); err == nil && last.Pos.Tx > first.Pos.Tx && tok.File == file && last.Complete {
			break
		}
	}
	if last.Pos.Tx <= first.Pos.Tx {
		t.Fatalf("the committed position stayed at %s while other tables were written\n%s", first.Pos, d.Logs())
	}
	t.Logf("committed position moved from %s to %s over transactions of other tables", first.Pos, last.Pos)
	// The monitor samples every 10 s: wait for a sample taken after the first commit.
	for deadline = time.Now().Add(40 * time.Second); d.metric("cdcd_mysql_binlog_purge_distance_bytes") == 0; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("cdcd_mysql_binlog_purge_distance_bytes stayed 0: the committed position is not measured against the server's binlogs")
		}
	}
	if d.metric("cdcd_mysql_binlog_retained_bytes") == 0 || d.metric("cdcd_mysql_binlog_files") == 0 {
		t.Errorf("binlog retention metrics missing")
	}
	if lag := d.metric("cdcd_mysql_binlog_lag_bytes"); lag != 0 {
		t.Errorf("cdcd_mysql_binlog_lag_bytes = %v with everything read, want 0", lag)
	}
}
