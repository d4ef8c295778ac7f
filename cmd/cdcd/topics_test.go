package main

import (
	"strings"
	"testing"
)

// TestValidateRefusesTopicCollision: a table "q r" and a table named like its sanitized form
// (q_r_efae7932) shared topic shop.public.q_r_efae7932, and a delete in one wrote a tombstone
// that erased the other's row. validate (and check and run, through the same check) must refuse the
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
	for _, cmd := range []string{"validate", "check", "run"} {
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

// A window job's dead-letter topic is one more writer: it may not be another writer's topic
// (here the pipeline's own dead-letter topic), while jobs without one never collide on it.
func TestValidateWindowDeadLetterTopics(t *testing.T) {
	base := `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
    on_error: dlq
windows:
`
	job := func(name, extra string) string {
		return `  - name: ` + name + `
    input: {topics: [shop.public.orders]}
    group_by: [after.customer_id]
    window: {type: tumbling, size: 5m}
    aggregates: [{name: orders, fn: count}]
    output: {topic: shop.` + name + `}
` + extra
	}
	ok := writeFile(t, "ok.yaml", base+job("a", "")+job("b", "")+job("c", "    on_error: dlq\n"))
	if r := cdcd(t, nil, "validate", "--config", ok); r.code != 0 {
		t.Fatalf("jobs without a dead-letter topic refused: exit %d, stderr %q", r.code, r.stderr)
	}
	bad := writeFile(t, "bad.yaml", base+job("a", "    on_error: dlq\n    dlq: {topic: shop.dlq}\n"))
	r := cdcd(t, nil, "validate", "--config", bad)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	for _, w := range []string{"topic shop.dlq is written by", "the dead-letter topic of window job a", "topics of its own"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}
