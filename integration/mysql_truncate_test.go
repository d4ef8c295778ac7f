package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMySQLTruncateAfterRestart: a TRUNCATE, behind an application's leading comment, of a
// captured table whose rows the restarted process has not seen is published as a truncate
// record. It used to be published only when the process had seen a TABLE_MAP of the table
// (never right after a restart), and "/*app*/ TRUNCATE" was not recognised at all.
func TestMySQLTruncateAfterRestart(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_trunc",
		`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
	name := uniqueName("mytrunc")
	// One partition: a truncate has no key, so on several partitions it is not ordered with
	// the insert that follows it.
	d := startMySQLDaemon(t, strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, ""), "topic_partitions: 3", "topic_partitions: 1", 1))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "INSERT INTO kv VALUES (1,1,1,2),(2,2,1,2)")
	c := newConsumer(t, s, name+"."+db+".kv")
	if recs := c.read(t, 2, time.Minute, 0); len(recs) != 2 {
		t.Fatalf("got %d records before the restart, want 2", len(recs))
	}
	d.stop(syscall.SIGTERM)
	d.restart()
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "/* nightly reload */ TRUNCATE TABLE kv")
	mysqlExec(t, conn, "INSERT INTO kv VALUES (3,3,2,1)")
	recs := c.read(t, 2, time.Minute, 2*time.Second)
	var ops []string
	for _, r := range recs {
		if r.Value == nil {
			ops = append(ops, "~")
			continue
		}
		ops = append(ops, unwrap(c.decode(t, r.Value)).(map[string]any)["op"].(string))
	}
	if len(ops) != 2 || ops[0] != "t" || ops[1] != "c" {
		t.Fatalf("after the restart: ops %q, want [t c] (the truncate, then the insert)", ops)
	}
}
