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
