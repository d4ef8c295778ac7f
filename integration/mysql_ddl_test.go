package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
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

// TestMySQLAddNotNullColumnWithDefault: ALTER TABLE ADD COLUMN ... NOT NULL DEFAULT <constant>
// while streaming is compatible under the registry's BACKWARD rule once the Avro field carries
// the column's default (as Debezium does); without it the registry refused the new schema and
// the pipeline stopped. The new schema registers, each field has its column's default in Avro
// form, and the rows after the change flow.
func TestMySQLAddNotNullColumnWithDefault(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_mydef", "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10) NOT NULL)")
	name := uniqueName("mydef")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, ""))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "SET time_zone = '+00:00'") // the TIMESTAMP default below is read in it
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, 'before')")
	c := newConsumer(t, s, name+"."+db+".t")
	if recs := c.read(t, 1, time.Minute, 0); len(recs) != 1 {
		t.Fatalf("want the row before the change, got %d records", len(recs))
	}
	mysqlExec(t, conn, `ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 7, ADD COLUMN s VARCHAR(10) NOT NULL DEFAULT 'it''s',
		ADD COLUMN n DECIMAL(5,2) NOT NULL DEFAULT 1.50, ADD COLUMN e ENUM('x', 'y') NOT NULL DEFAULT 'y',
		ADD COLUMN dt DATE NOT NULL DEFAULT '2024-02-29', ADD COLUMN f DOUBLE NOT NULL DEFAULT -2.5,
		ADD COLUMN bl BIT(1) NOT NULL DEFAULT b'1', ADD COLUMN big BIGINT UNSIGNED NOT NULL DEFAULT 18446744073709551615,
		ADD COLUMN ts TIMESTAMP NOT NULL DEFAULT '2024-01-01 00:00:00', ADD COLUMN u UUID NOT NULL DEFAULT '123e4567-e89b-12d3-a456-426614174000'`)
	mysqlExec(t, conn, "INSERT INTO t (id, a) VALUES (2, 'after')")
	recs := c.read(t, 1, time.Minute, time.Second)
	if len(recs) != 1 {
		t.Fatalf("want the row after the change, got %d records\n%s", len(recs), d.Logs())
	}
	after := unwrapAll(asMap(c.decode(t, recs[0].Value)["after"]))
	if fmt.Sprint(after["c"]) != "7" || after["s"] != "it's" || after["e"] != "y" {
		t.Errorf("row after the change: %v", after)
	}
	id := int(binary.BigEndian.Uint32(recs[0].Value[1:5]))
	sch, err := c.reg.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defaults := valueDefaults(t, sch.Schema)
	for col, want := range map[string]any{"c": 7.0, "s": "it's", "e": "y", "f": -2.5, "bl": true, "dt": 19782.0,
		"ts": 1704067200000000.0, "u": "123e4567-e89b-12d3-a456-426614174000", "n": "\u0000\u0096", "big": "\u0000\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff"} { // bytes: code points 0-255
		got, ok := defaults[col]
		if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("field %s: default %#v (present %v), want %#v\n%s", col, got, ok, want, sch.Schema)
		}
	}
	if _, ok := defaults["a"]; ok {
		t.Errorf("field a (NOT NULL without a default) has a default:\n%s", sch.Schema)
	}
}

// valueDefaults returns the defaults of the Value record's fields of an envelope schema (a
// bytes default decoded to its code points, as Avro's JSON form spells them).
func valueDefaults(t *testing.T, schema string) map[string]any {
	t.Helper()
	var env struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schema), &env); err != nil {
		t.Fatalf("schema: %v\n%s", err, schema)
	}
	for _, f := range env.Fields {
		if f.Name != "before" { // before defines the Value record, after names it
			continue
		}
		var union []json.RawMessage
		if err := json.Unmarshal(f.Type, &union); err != nil || len(union) != 2 {
			t.Fatalf("before: %v", err)
		}
		var rec struct {
			Fields []map[string]any `json:"fields"`
		}
		if err := json.Unmarshal(union[1], &rec); err != nil {
			t.Fatalf("before: %v", err)
		}
		out := map[string]any{}
		for _, fl := range rec.Fields {
			if d, ok := fl["default"]; ok {
				out[fl["name"].(string)] = d
			}
		}
		return out
	}
	t.Fatalf("no before field in\n%s", schema)
	return nil
}
