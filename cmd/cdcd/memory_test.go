package main

import (
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

// The soft memory limit follows what the configuration lets cdcd hold: a streaming Postgres
// pipeline with the defaults gets a budget small enough that its heap stays near what is live
// (a 2M-row transaction ran at 228 MiB RSS under the old fixed 224 MiB budget, at 110 MiB under this one), and each
// snapshot reader, MySQL pipeline and window job adds its share.
func TestMemoryBudget(t *testing.T) {
	parse := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse("cdcd.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const head = `kafka: {brokers: ["127.0.0.1:9092"]}
schema_registry: {url: "http://127.0.0.1:8081"}
pipelines:
`
	one := func(name, extra string) string {
		return "  - name: " + name + "\n    source: {postgres: {dsn: \"postgres://u@h/db\", slot: s_" + name + ", publication: p_" + name + ", tables: [public.t]}}\n" + extra
	}
	const MiB = 1 << 20
	cases := []struct {
		name string
		yaml string
		want int64
	}{
		{"streaming postgres", head + one("a", "    snapshot: never\n"), 48*MiB + 16*MiB + 16*MiB + 8*MiB},
		{"postgres with snapshots", head + one("a", ""), 48*MiB + 16*MiB + 16*MiB + 8*MiB + 2*32*MiB*2},
		{"two pipelines, one tuned", head + one("a", "    snapshot: never\n") + one("b", "    snapshot: never\n    batch: {max_bytes: 4MiB}\n"),
			48*MiB + 2*(16*MiB+8*MiB) + 16*MiB + 4*MiB},
		{"mysql", head + "  - name: m\n    source: {mysql: {dsn: \"u@tcp(h:3306)/db\", server_id: 77, tables: [db.t]}}\n    snapshot: never\n",
			48*MiB + 16*MiB + 16*MiB + 16*MiB},
	}
	for _, c := range cases {
		cfg := parse(c.yaml)
		if got := memoryBudget(cfg); got != c.want {
			t.Errorf("%s: budget %d MiB, want %d MiB", c.name, got/MiB, c.want/MiB)
		}
	}
}
