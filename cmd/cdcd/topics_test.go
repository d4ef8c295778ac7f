package main

import (
	"strings"
	"testing"
)

// TestValidateRefusesTopicCollision: a table "q r" and a table named like its sanitized form
// (q_r_efae7932) shared topic shop.public.q_r_efae7932, and a delete in one wrote a tombstone
// that erased the other's row. validate (and run, through the same check) must refuse the
// configuration, naming both tables and the fix.
func TestValidateRefusesTopicCollision(t *testing.T) {
	path := writeFile(t, "collide.yaml", `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public."q r", public.q_r_efae7932]
`)
	for _, cmd := range []string{"validate", "run"} {
		r := cdcd(t, nil, cmd, "--config", path)
		if r.code != 1 {
			t.Fatalf("%s: exit %d, want 1; stdout %q stderr %q", cmd, r.code, r.stdout, r.stderr)
		}
		for _, w := range []string{"shop.public.q_r_efae7932", `table public."q r" of pipeline shop`,
			"table public.q_r_efae7932 of pipeline shop", "topics.overrides"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, r.stderr)
			}
		}
	}
}
