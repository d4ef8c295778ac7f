package integration

import (
	"fmt"
	"testing"
	"time"
)

// Columns stored out of line (STORAGE EXTERNAL: no compression, so the values are TOASTed) of
// types with and without a placeholder form, NOT NULL and nullable, without REPLICA IDENTITY
// FULL: an update that leaves them alone sends them as unchanged TOAST.
const unchangedToastDDL = `
CREATE TABLE docs (
  id int PRIMARY KEY,
  k int,
  nums int[] NOT NULL,
  stamps timestamptz[],
  tags text[],
  body text NOT NULL
);
ALTER TABLE docs ALTER COLUMN nums SET STORAGE EXTERNAL, ALTER COLUMN stamps SET STORAGE EXTERNAL,
  ALTER COLUMN tags SET STORAGE EXTERNAL, ALTER COLUMN body SET STORAGE EXTERNAL;`

// TestUnchangedToastOfEveryType: an UPDATE that leaves TOASTed arrays of integers and
// timestamps alone used to stop the pipeline (value_not_representable under on_error: fail,
// the default). Now it is published: text carries Debezium's placeholder, an array of text
// [placeholder], the others null, and unchanged_toast lists every such column. A key change
// is a delete and a create, and the create carries the same list.
func TestUnchangedToastOfEveryType(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_unchanged_toast", unchangedToastDDL)
	name := uniqueName("toast")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.docs"}, ""))
	d.waitReady(90 * time.Second)
	for _, sql := range []string{
		`INSERT INTO docs SELECT 1, 1, array_agg(g), array_agg(timestamptz '2024-01-01' + g * interval '1 s'),
		   array_agg(md5(g::text)), string_agg(md5(g::text), '') FROM generate_series(1, 3000) g`,
		`UPDATE docs SET k = 2 WHERE id = 1`,  // every TOASTed column unchanged
		`UPDATE docs SET id = 5 WHERE id = 1`, // key change: delete + tombstone + create
		`INSERT INTO docs VALUES (9, 9, '{9}', NULL, NULL, 'after')`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	c := newConsumer(t, s, name+".public.docs")
	recs := c.read(t, 6, 90*time.Second, 2*time.Second)
	if len(recs) != 6 {
		t.Fatalf("got %d records, want 6 (create, update, delete, tombstone, create, create)\n%s", len(recs), d.Logs())
	}
	// Per key, in order (keys land on different partitions).
	ops := map[any]string{}
	envs := map[any][]map[string]any{}
	for _, r := range recs {
		id := c.decode(t, r.Key)["id"]
		if r.Value == nil {
			ops[id] += "~"
			continue
		}
		v := unwrap(c.decode(t, r.Value)).(map[string]any)
		ops[id] += v["op"].(string)
		envs[id] = append(envs[id], v)
	}
	if ops[1] != "cud~" || ops[5] != "c" || ops[9] != "c" {
		t.Fatalf("ops per key %v, want 1: cud~, 5: c, 9: c", ops)
	}
	want := []any{"nums", "stamps", "tags", "body"}
	for _, v := range []map[string]any{envs[1][1], envs[5][0]} { // the update, and the create after the key change
		a := unwrapAll(unwrap(v["after"]).(map[string]any))
		if a["k"] != 2 || a["nums"] != nil || a["stamps"] != nil || a["body"] != "__debezium_unavailable_value" {
			t.Errorf("%s: after k=%v nums=%.40v stamps=%.40v body=%.40v", v["op"], a["k"], a["nums"], a["stamps"], a["body"])
		}
		if tags, _ := a["tags"].([]any); len(tags) != 1 || tags[0] != "__debezium_unavailable_value" {
			t.Errorf("%s: tags = %.80v, want [placeholder]", v["op"], a["tags"])
		}
		if got := fmt.Sprint(unwrap(v["unchanged_toast"])); got != fmt.Sprint(want) {
			t.Errorf("%s: unchanged_toast = %s, want %v", v["op"], got, want)
		}
	}
	for _, v := range []map[string]any{envs[1][0], envs[9][0]} {
		if unwrap(v["unchanged_toast"]) != nil {
			t.Errorf("an insert lists unchanged columns: %v", v["unchanged_toast"])
		}
	}
	d.waitReady(5 * time.Second)
}
