package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMySQLPurgedPositionStops: the binlog of the committed position is purged while cdcd is
// stopped. The restart must stop the pipeline with the fix (re-snapshot, reset-offsets,
// retention), never resume silently from the oldest binlog left; the metrics say so too.
func TestMySQLPurgedPositionStops(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_purge", `CREATE TABLE t (id INT PRIMARY KEY, v INT)`)
	name := uniqueName("mypurge")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, ""))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, 1)")
	c := newConsumer(t, s, name+"."+db+".t")
	if recs := c.read(t, 1, 60*time.Second, 0); len(recs) != 1 {
		t.Fatalf("got %d records, want 1\n%s", len(recs), d.Logs())
	}
	d.stop(syscall.SIGTERM)

	mysqlExec(t, conn, "FLUSH BINARY LOGS")
	mysqlExec(t, conn, "INSERT INTO t VALUES (2, 2)") // lost to cdcd with the purge
	mysqlExec(t, conn, "FLUSH BINARY LOGS")
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	current, _ := r.GetString(0, 0)
	mysqlExec(t, conn, "PURGE BINARY LOGS TO '"+current+"'")

	d.restart()
	body := d.waitUnready(60*time.Second, "purged", "re-snapshot", "reset-offsets")
	if !strings.Contains(body, "failed") {
		t.Errorf("/readyz: want the pipeline failed (not retrying): %s", body)
	}
	if got := d.metric("cdcd_pipeline_failed"); got != 1 {
		t.Errorf("cdcd_pipeline_failed = %v, want 1", got)
	}
}

// TestMySQLPrerequisitesRefused: a wrong binlog_format and binlog_row_metadata, and a user
// without replication privileges, are each refused by `cdcd check` and at startup with the
// fix.
func TestMySQLPrerequisitesRefused(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_prereq", `CREATE TABLE t (id INT PRIMARY KEY, v INT)`)

	// A user that may read the table but not the binlog.
	user := uniqueName("cdcd_nopriv")
	mysqlExec(t, conn, "CREATE USER '"+user+"'@'127.0.0.1' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { _, _ = conn.Execute("DROP USER IF EXISTS '" + user + "'@'127.0.0.1'") })
	mysqlExec(t, conn, "GRANT SELECT ON `"+db+"`.* TO '"+user+"'@'127.0.0.1'")
	noPriv := user + ":pw@tcp(" + mysqlAddr(t, s) + ")/" + db
	yaml := mysqlPipelineYAML(s, uniqueName("mynopriv"), noPriv, nextServerID(), []string{db + ".t"}, "")
	out, err := checkOutput(t, yaml)
	if err == nil || !strings.Contains(out, "missing REPLICATION SLAVE or REPLICATION CLIENT") || !strings.Contains(out, "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.*") {
		t.Errorf("check without replication privileges: want a failure with the GRANT fix, got %v:\n%s", err, out)
	}
	d := startMySQLDaemon(t, yaml)
	d.waitUnready(60*time.Second, "failed", "GRANT REPLICATION SLAVE")
	d.stop(syscall.SIGTERM)

	// The server's binlog settings, restored whatever happens.
	mysqlExec(t, conn, "SET GLOBAL binlog_format = 'MIXED'")
	mysqlExec(t, conn, "SET GLOBAL binlog_row_metadata = 'MINIMAL'")
	t.Cleanup(func() {
		_, _ = conn.Execute("SET GLOBAL binlog_format = 'ROW'")
		_, _ = conn.Execute("SET GLOBAL binlog_row_metadata = 'FULL'")
	})
	yaml = mysqlPipelineYAML(s, uniqueName("myformat"), dsn, nextServerID(), []string{db + ".t"}, "")
	out, err = checkOutput(t, yaml)
	for _, want := range []string{`binlog_format is "MIXED"`, "SET GLOBAL binlog_format = 'ROW'", `binlog_row_metadata is "MINIMAL"`, "SET GLOBAL binlog_row_metadata = 'FULL'"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("check with binlog_format MIXED and binlog_row_metadata MINIMAL: want %q, got %v:\n%s", want, err, out)
		}
	}
	d = startMySQLDaemon(t, yaml)
	d.waitUnready(60*time.Second, "failed", "binlog_format", "binlog_row_metadata")
}

// TestMySQLUnreadableColumnRefused: a captured table with a column a snapshot cannot read
// (a big5 column here) is named with the fix by `cdcd check`, and a pipeline that snapshots
// fails at start instead of retrying the snapshot forever (`check` used to pass, and the
// pipeline stayed in phase retrying with a growing backoff, even with on_error: dlq).
func TestMySQLUnreadableColumnRefused(t *testing.T) {
	s, _, db, dsn, _ := mysqlSetup(t, 3*time.Minute, "cdcd_unread", `CREATE TABLE t (id INT PRIMARY KEY, addr VARCHAR(20) CHARACTER SET big5)`)
	yaml := strings.Replace(mysqlPipelineYAML(s, uniqueName("myunread"), dsn, nextServerID(), []string{db + ".t"}, "    on_error: dlq\n"),
		"snapshot: never", "snapshot: initial", 1)
	out, err := checkOutput(t, yaml)
	if err == nil || !strings.Contains(out, "column addr") || !strings.Contains(out, "a snapshot cannot read it") {
		t.Errorf("check: want a failure naming column addr, got %v:\n%s", err, out)
	}
	d := startMySQLDaemon(t, yaml)
	body := d.waitUnready(60*time.Second, "column addr")
	if !strings.Contains(body, "failed") {
		t.Errorf("/readyz: want the pipeline failed (not retrying): %s", body)
	}
}

// TestMySQLUnreadableColumnRequestedSnapshot: with snapshot: never, `check` only warns about a
// column a snapshot cannot read, and a `cdcd snapshot` request of the table used to put the
// pipeline in phase retrying for good (the table's description failed at every attempt, even
// with on_error: dlq). Each row of it is now a poison record naming the column, dead-lettered
// under on_error: dlq, as the stream's changes of the table are; the snapshot finishes and the
// pipeline stays ready.
func TestMySQLUnreadableColumnRequestedSnapshot(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_unreq", `CREATE TABLE t (id INT PRIMARY KEY, addr VARCHAR(20) CHARACTER SET big5)`)
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)")
	name := uniqueName("myunreq")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, "    on_error: dlq\n"),
		"    snapshot: never\n", "    snapshot: {mode: never, signal_key: "+testSignalKey+"}\n", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)
	t.Log(strings.TrimSpace(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", db+".t")))
	waitFor(t, d, "the requested snapshot to finish", 90*time.Second, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	dl := newConsumer(t, s, name+".dlq").read(t, 3, 60*time.Second, time.Second)
	if len(dl) != 3 {
		t.Fatalf("dead letters: got %d, want the 3 snapshot rows\n%s", len(dl), d.Logs())
	}
	for _, r := range dl {
		if e := headerOf(r, "cdcd.error.message"); !strings.Contains(e, "column addr") {
			t.Errorf("dead letter without the column named: %q (headers %v)", e, r.Headers)
		}
	}
	d.waitReady(30 * time.Second)
}
