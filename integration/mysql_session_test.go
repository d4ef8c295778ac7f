package integration

import (
	"strings"
	"testing"
	"time"
)

// TestMySQLSessionRowImageMinimal: a session with binlog_row_image=MINIMAL updates a captured
// table while the server's global setting is FULL. The change lacks columns, so it is a poison
// record that names binlog_row_image and the fix (the pipeline, with on_error: fail, stops);
// it used to be published with NULL for every column the image did not carry. `cdcd check`
// says that the global setting does not bind sessions.
func TestMySQLSessionRowImageMinimal(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_rowimg", `CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10))`)
	name := uniqueName("myrowimg")
	yaml := mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, "    on_error: fail\n")
	if out, err := checkOutput(t, yaml); err != nil || !strings.Contains(out, "does not bind") {
		t.Errorf("cdcd check: want it to say the global binlog_row_image does not bind sessions, got %v:\n%s", err, out)
	}
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, 1, 'kept')")
	c := newConsumer(t, s, name+"."+db+".t")
	if recs := c.read(t, 1, time.Minute, 0); len(recs) != 1 {
		t.Fatalf("got %d records, want the FULL insert", len(recs))
	}
	minimal := mysqlConn(t, ctx, dsn)
	mysqlExec(t, minimal, "SET SESSION binlog_row_image = 'MINIMAL'")
	mysqlExec(t, minimal, "UPDATE t SET a = 2 WHERE id = 1") // b is not in the image
	d.waitUnready(60*time.Second, "failed", "binlog_row_image", "FULL")
	for _, r := range c.read(t, 1, 3*time.Second, 0) {
		t.Errorf("published a record from the MINIMAL image: %v", c.decode(t, r.Value))
	}
}

// TestMySQLSessionStatementFormat: a session with binlog_format=STATEMENT updates a captured
// table. The binlog carries the statement, not rows: the change is a poison record naming
// binlog_format and the fix (with on_error: dlq a dead letter, counted and alerted on); it
// used to be skipped without a word.
func TestMySQLSessionStatementFormat(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_stmtfmt", `CREATE TABLE t (id INT PRIMARY KEY, a INT)`)
	name := uniqueName("mystmt")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, "    on_error: dlq\n"))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, 1)")
	stmt := mysqlConn(t, ctx, dsn)
	mysqlExec(t, stmt, "SET SESSION binlog_format = 'STATEMENT'")
	mysqlExec(t, stmt, "/* app */ UPDATE t SET a = 2 WHERE id = 1")
	mysqlExec(t, conn, "INSERT INTO t VALUES (2, 2)")
	c := newConsumer(t, s, name+".dlq")
	recs := c.read(t, 1, time.Minute, 2*time.Second)
	if len(recs) != 1 {
		t.Fatalf("got %d dead letters, want the statement's", len(recs))
	}
	if msg := headerOf(recs[0], "cdcd.error.message"); !strings.Contains(msg, "binlog_format") || !strings.Contains(msg, "UPDATE t SET a = 2") {
		t.Errorf("dead letter's message %q: want it to name binlog_format and the statement", msg)
	}
	if got := d.metric("cdcd_dead_letters_total"); got != 1 {
		t.Errorf("cdcd_dead_letters_total = %v, want 1", got)
	}
}
