package topics

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const head = `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
`

// TestSanitizedTableNameCollides is the reported case: a table "q r" and a table named like
// its sanitized form share topic shop.public.q_r_efae7932, so a delete in one erased the
// other's row. It must be refused before anything runs, naming both tables.
func TestSanitizedTableNameCollides(t *testing.T) {
	cfg := parse(t, head+`  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public."q r", public.q_r_efae7932]
`)
	err := Check(cfg)
	if err == nil {
		t.Fatal("two tables on one topic were accepted")
	}
	for _, want := range []string{"topic shop.public.q_r_efae7932", `table public."q r" of pipeline shop`,
		"table public.q_r_efae7932 of pipeline shop", `add 'public."q r"': <a topic of its own> under topics.overrides of pipeline shop`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestCollisionsAcrossPipelines(t *testing.T) {
	tests := []struct {
		name, pipelines string
		want            []string // none: accepted
	}{
		{"distinct", `  - name: shop
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/shop", tables: [public.orders, public."Orders"]}}
    on_error: dlq
  - name: shop2
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/shop2", tables: [public.orders]}}
`, nil},
		{"same prefix, two databases", `  - name: a
    topics: {prefix: shop}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.orders]}}
  - name: b
    topics: {prefix: shop}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/b", tables: [public.orders]}}
`, []string{"topic shop.public.orders", "table public.orders of pipeline a and table public.orders of pipeline b"}},
		{"override onto another pipeline's table", `  - name: a
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.orders]}}
  - name: b
    topics: {overrides: {public.items: a.public.orders}}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/b", tables: [public.items]}}
`, []string{"topic a.public.orders", "table public.items of pipeline b"}},
		{"a table on another pipeline's dead-letter topic", `  - name: a
    on_error: dlq
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.orders]}}
  - name: b
    topics: {overrides: {public.items: a.dlq}}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/b", tables: [public.items]}}
`, []string{"the dead-letter topic of pipeline a", "set dlq.topic of pipeline a"}},
		{"a table on the offsets topic", `  - name: a
    topics: {overrides: {public.items: _cdcd_offsets}}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.items]}}
`, []string{"the offsets topic"}},
		{"shared dead-letter topic", `  - name: a
    on_error: dlq
    dlq: {topic: dead}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.orders]}}
  - name: b
    on_error: dlq
    dlq: {topic: dead}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/b", tables: [public.orders]}}
`, []string{"topic dead is written by the dead-letter topic of pipeline a and the dead-letter topic of pipeline b"}},
		{"names Kafka confuses", `  - name: a
    topics: {overrides: {public.items: a_public.orders}}
    source: {postgres: {dsn: "postgres://postgres@127.0.0.1:1/a", tables: [public.orders, public.items]}}
`, []string{"differ only in '.' and '_'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(parse(t, head+tc.pipelines))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
		})
	}
}

// TestAdvisedOverrideIsAccepted: following the fix (an override keyed by the table as
// configured, quoted) gives a configuration that validates and no longer collides.
func TestAdvisedOverrideIsAccepted(t *testing.T) {
	cfg := parse(t, head+`  - name: shop
    topics:
      overrides:
        'public."q r"': shop.public.q_r
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public."q r", public.q_r_efae7932]
`)
	if err := Check(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestExampleConfigurationHasNoCollision(t *testing.T) {
	cfg, err := config.Load("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Fatal(err)
	}
}
