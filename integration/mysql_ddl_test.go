package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestMySQLAlterWhileStoppedAndBehind: while cdcd is stopped, rows are written around ALTER
// TABLE ADD, DROP and MODIFY COLUMN. On restart, far behind the DDL, every row comes with the
// shape it was written with (from its TABLE_MAP, not from the table as it is now); the
// registry accepts the compatible versions, and refuses an incompatible MODIFY, whose row then
// goes to the dead-letter topic (on_error: dlq) while the rows after it keep flowing.
func TestMySQLAlterWhileStoppedAndBehind(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 4*time.Minute, "cdcd_ddl", `CREATE TABLE t (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(10))`)
	name := uniqueName("myddl")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, "    on_error: dlq\n"))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "INSERT INTO t VALUES (0, 0, 'x')")
	topic := name + "." + db + ".t"
	c := newConsumer(t, s, topic)
	if recs := c.read(t, 1, 60*time.Second, 0); len(recs) != 1 {
		t.Fatalf("got %d records, want 1\n%s", len(recs), d.Logs())
	}
	d.stop(syscall.SIGTERM)

	insert := func(from, n int, cols string, vals func(i int) string) {
		for i := from; i < from+n; i += 100 {
			q := "INSERT INTO t (" + cols + ") VALUES "
			for j := i; j < min(i+100, from+n); j++ {
				if j > i {
					q += ","
				}
				q += "(" + vals(j) + ")"
			}
			mysqlExec(t, conn, q)
		}
	}
	const n = 1000
	insert(1, n, "id, a, b", func(i int) string { return fmt.Sprintf("%d, %d, 'b%d'", i, i, i) })
	mysqlExec(t, conn, "ALTER TABLE t ADD COLUMN c INT NULL")
	insert(n+1, n, "id, a, b, c", func(i int) string { return fmt.Sprintf("%d, %d, 'b%d', %d", i, i, i, i) })
	mysqlExec(t, conn, "ALTER TABLE t DROP COLUMN b")
	insert(2*n+1, n, "id, a, c", func(i int) string { return fmt.Sprintf("%d, %d, %d", i, i, i) })
	mysqlExec(t, conn, "ALTER TABLE t MODIFY COLUMN a BIGINT NOT NULL")
	insert(3*n+1, n, "id, a, c", func(i int) string { return fmt.Sprintf("%d, %d, %d", i, int64(i)<<33, i) })
	mysqlExec(t, conn, "ALTER TABLE t MODIFY COLUMN a VARCHAR(30) NOT NULL") // long -> string: BACKWARD refuses
	insert(4*n+1, 1, "id, a, c", func(i int) string { return fmt.Sprintf("%d, 'text', %d", i, i) })

	d.restart()
	d.waitReady(60 * time.Second)
	recs := c.read(t, 4*n, 2*time.Minute, 2*time.Second)
	if len(recs) != 4*n {
		t.Fatalf("got %d new records, want %d\n%s", len(recs), 4*n, d.Logs())
	}
	for _, r := range recs {
		env := unwrap(c.decode(t, r.Value)).(map[string]any)
		after := unwrapAll(unwrap(env["after"]).(map[string]any))
		id := after["id"].(int)
		_, hasB := after["b"]
		_, hasC := after["c"]
		var wantB, wantC bool
		var wantA any
		switch {
		case id <= n:
			wantB, wantC, wantA = true, false, id
		case id <= 2*n:
			wantB, wantC, wantA = true, true, id
		case id <= 3*n:
			wantB, wantC, wantA = false, true, id
		default:
			wantB, wantC, wantA = false, true, int64(id)<<33
		}
		if hasB != wantB || hasC != wantC || after["a"] != wantA {
			t.Fatalf("row %d: fields %v; want b %v, c %v, a %v (%T)", id, after, wantB, wantC, wantA, wantA)
		}
	}
	dl := newConsumer(t, s, name+".dlq").read(t, 1, 60*time.Second, time.Second)
	if len(dl) != 1 || headerOf(dl[0], "cdcd.error.class") != "schema_rejected" {
		t.Fatalf("dead letters: got %d, want 1 of class schema_rejected\n%s", len(dl), d.Logs())
	}
	mysqlExec(t, conn, "INSERT INTO t (id, a, c) VALUES (9999999, 'after', 1)")
	if more := newConsumer(t, s, name+".dlq").read(t, 2, 60*time.Second, time.Second); len(more) != 2 {
		t.Fatalf("a row after the refused one: got %d dead letters, want 2 (the subject still refuses the new shape)", len(more))
	}
}
