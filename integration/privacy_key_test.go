package integration

import (
	"strings"
	"testing"
	"time"
)

// TestPrivacyShapeKey: shape.<table>.key keys a table without a primary key (REPLICA IDENTITY
// FULL) by a column, in the snapshot and the stream, deletes included (a tombstone under the
// configured key).
func TestPrivacyShapeKey(t *testing.T) {
	name := uniqueName("privkey")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_key", `CREATE TABLE events (code text NOT NULL, v int);
		ALTER TABLE events REPLICA IDENTITY FULL;
		INSERT INTO events SELECT 'c' || g, g FROM generate_series(1, 10) g;`)
	// The table has no key of its own: its snapshot is inexact under writes, accepted here
	// (nothing writes to it during the snapshot).
	extra := "    snapshot:\n      mode: initial\n      accept_inexact_keyless: [public.events]\n    shape:\n      public.events:\n        key: [code]\n"
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.events"}, extra))
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	if _, err := db.Exec(ctx, `UPDATE events SET v = 100 WHERE code = 'c1'; DELETE FROM events WHERE code = 'c2'`); err != nil {
		t.Fatal(err)
	}
	recs := readSnapTopicRaw(t, s, name+".public.events", 13, time.Minute)
	c := newConsumer(t, s)
	keys := map[string]int{}
	tombstones := 0
	for _, r := range recs {
		k := c.decode(t, r.Key)
		code, _ := unwrap(k["code"]).(string)
		if code == "" || len(k) != 1 {
			t.Fatalf("record key %v, want {code}", k)
		}
		if r.Value == nil {
			tombstones++
			if code != "c2" {
				t.Errorf("tombstone for %s, want c2", code)
			}
		}
		keys[code]++
	}
	if len(recs) != 13 || tombstones != 1 || keys["c1"] != 2 || keys["c2"] != 3 {
		t.Errorf("%d records (want 13: 10 reads, update, delete, tombstone), keys %v", len(recs), keys)
	}
}
