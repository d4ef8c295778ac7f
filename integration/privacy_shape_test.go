package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestPrivacyShapeExcludedColumnsReachNoTopic: shape.<table>.columns.exclude keeps a column out
// of every path to Kafka: the initial snapshot, the stream (inserts, updates, deletes of a
// REPLICA IDENTITY FULL table, whose old rows hold the column), an on-demand snapshot and a
// dead letter (a row whose amount cannot be encoded) and the replay of a dead letter (a row
// too large for its topic, replayed once the limit is raised). A canary value in the column
// is found in no topic, while the rest of the rows are published.
func TestPrivacyShapeExcludedColumnsReachNoTopic(t *testing.T) {
	name := uniqueName("privshape")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_shape", `CREATE TABLE people (id int PRIMARY KEY, email text, name text NOT NULL, amount numeric(10,2), blob text);
		ALTER TABLE people REPLICA IDENTITY FULL;
		INSERT INTO people SELECT g, 'CANARYMAIL' || g || '@example.com', 'n' || g, g FROM generate_series(1, 50) g;`)
	extra := "    snapshot: {mode: initial, signal_key: " + testSignalKey + "}\n    on_error: dlq\n" +
		"    shape:\n      public.people:\n        columns: {exclude: [email]}\n"
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.people"}, extra))
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	for _, q := range []string{
		`INSERT INTO people VALUES (100, 'CANARYMAIL100@example.com', 'n100', 1)`,
		`UPDATE people SET name = 'renamed', email = 'CANARYMAIL-updated@example.com' WHERE id = 1`,
		`DELETE FROM people WHERE id = 2`,
		`INSERT INTO people VALUES (101, 'CANARYMAIL101@example.com', 'n101', 'NaN')`,                         // a dead letter
		`INSERT INTO people VALUES (102, 'CANARYMAIL102@example.com', 'n102', 1, ` + bigText(1_500_000) + `)`, // too large
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.people", "--where", "id <= 10")
	waitFor(t, d, "the requested snapshot", time.Minute, func() bool { return strings.Count(d.Logs(), `msg="snapshot finished"`) == 2 })
	dl := newConsumer(t, s, name+".dlq").read(t, 2, time.Minute, 0)
	if len(dl) != 2 {
		t.Fatalf("want the NaN row's and the large row's dead letters, got %d", len(dl))
	}
	big := "4194304"
	if _, err := kadmClient(t, s).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &big}}, name+".public.people"); err != nil {
		t.Fatal(err)
	}
	if out, err := execCmd(cdcdBin, "dlq", "replay", "--config", d.cfg, "--pipeline", name, "--class", "record_too_large"); err != nil || !strings.Contains(out, "replayed 1 dead letter") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !strings.Contains(string(dl[0].Value), `"name":"n101"`) {
		t.Errorf("the dead letter does not hold the row's other columns: %.300s", dl[0].Value)
	}
	recs := readSnapTopicRaw(t, s, name+".public.people", 50+9+4+1, time.Minute) // reads (id 2 is gone by the request), c (2, one replayed) u d, a tombstone
	c := newConsumer(t, s)
	ops := map[string]int{}
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		if len(r.Value) > 1<<20 {
			ops["c"]++ // the replayed large row: too big for the test's decoder; grepped below
			continue
		}
		v := c.decode(t, r.Value)
		ops[v["op"].(string)]++
		for _, side := range []string{"before", "after"} {
			if m := asMap(v[side]); m != nil {
				img := unwrapAll(m)
				if _, ok := img["email"]; ok {
					t.Fatalf("%s image with the excluded column: %v", side, img)
				}
				if _, ok := img["name"]; !ok {
					t.Fatalf("%s image without the kept column name: %v", side, img)
				}
			}
		}
	}
	if ops["r"] != 59 || ops["c"] != 2 || ops["u"] != 1 || ops["d"] != 1 {
		t.Errorf("ops %v, want 59 reads, 2 inserts, 1 update, 1 delete", ops)
	}
	hits, n := grepTopics(t, s, name+".", "CANARYMAIL")
	if len(hits) > 0 {
		t.Fatalf("the excluded column's canary is in %d records' topics: %v", len(hits["CANARYMAIL"]), hits)
	}
	t.Logf("%d records in the pipeline's topics, no canary", n)
}
