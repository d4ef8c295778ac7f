package integration

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPrivacyShapePushedIntoPublication: on PostgreSQL 15+ the publication cdcd creates
// carries the shaping's column selection when it keeps the replica identity, so the excluded
// column does not even leave the database; updates and deletes of the table still work, and
// no record holds the column's canary.
func TestPrivacyShapePushedIntoPublication(t *testing.T) {
	name := uniqueName("privpush")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_push", `CREATE TABLE people (id int PRIMARY KEY, email text, name text);
		INSERT INTO people SELECT g, 'CANARYMAIL' || g, 'n' || g FROM generate_series(1, 10) g;`)
	extra := "    snapshot: initial\n    shape:\n      public.people:\n        columns: {exclude: [email]}\n"
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.people"}, extra))
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	var cols []string
	if err := db.QueryRow(ctx, "SELECT attnames::text[] FROM pg_publication_tables WHERE pubname = $1", name).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(cols, "email") || !slices.Contains(cols, "id") || !slices.Contains(cols, "name") {
		t.Errorf("the publication publishes %v, want id and name without email", cols)
	}
	for _, q := range []string{"UPDATE people SET email = 'CANARYMAIL-new', name = 'x' WHERE id = 1", "DELETE FROM people WHERE id = 2",
		"INSERT INTO people VALUES (100, 'CANARYMAIL100', 'n100')"} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v (the publication must not block the table's writes)", q, err)
		}
	}
	recs := readSnapTopicRaw(t, s, name+".public.people", 14, time.Minute) // 10 reads, u, d, tombstone, c
	if len(recs) != 14 {
		t.Errorf("%d records, want 14", len(recs))
	}
	if hits, _ := grepTopics(t, s, name+".", "CANARYMAIL"); len(hits) > 0 {
		t.Fatalf("the excluded column's canary is in the topics: %v", hits)
	}
}
