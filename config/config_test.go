package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is a minimal valid file; bad cases are written out whole so each line number in the
// expectations can be read off the case itself.
const base = `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]
`

func noEnv(string) (string, bool) { return "", false }

func TestMinimalFileGetsDefaults(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pipelines[0]
	pg := p.Source.Postgres
	checks := []struct {
		name      string
		got, want any
	}{
		{"slot", pg.Slot, "cdcd_shop"},
		{"publication", pg.Publication, "cdcd_shop"},
		{"heartbeat", pg.HeartbeatInterval.D, 10 * time.Second},
		{"prefix", p.Topics.Prefix, "shop"},
		{"dlq", p.DLQ.Topic, "shop.dlq"},
		{"delivery", p.Delivery, "exactly_once"},
		{"on_error", p.OnError, "fail"},
		{"snapshot", p.Snapshot.Mode, "initial"},
		{"snapshot parallelism", p.Snapshot.Parallelism, 2},
		{"snapshot chunk", p.Snapshot.ChunkSize, 8192},
		{"snapshot chunk bytes", p.Snapshot.ChunkMaxBytes.N, int64(32 << 20)},
		{"batch", p.Batch.MaxEvents, 10000},
		{"batch bytes", p.Batch.MaxBytes.N, int64(16 << 20)},
		{"compat", cfg.SchemaRegistry.Compatibility, "BACKWARD"},
		{"listen", cfg.HTTP.Listen, "127.0.0.1:9187"},
		{"offsets", cfg.Kafka.OffsetsTopic, "_cdcd_offsets"},
		{"shutdown", cfg.ShutdownTimeout.D, 10 * time.Second},
		{"tombstones", p.TombstonesEnabled(), true},
		{"max message", cfg.Kafka.MaxMessageBytes.N, int64(1 << 20)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// Each bad file must be rejected with a problem naming the key (path), the line where it
// applies, and a fix.
func TestBadFiles(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		path string // expected problem path
		line int
		fix  string // substring of the fix
	}{
		{"unknown top-level key", base + "kafak: {}\n", "kafak", 11, "known keys"},
		{"misspelled nested key", strings.Replace(base, "        tables:", "        tabels:", 1), "pipelines[0].source.postgres.tabels", 10, `did you mean "tables"`},
		{"no tables", strings.Replace(base, "        tables: [public.orders]\n", "", 1), "pipelines[0].source.postgres.tables", 8, "list the tables"},
		{"table not schema-qualified", strings.Replace(base, "[public.orders]", "[orders]", 1), "pipelines[0].source.postgres.tables[0]", 10, "schema.table"},
		{"bad duration", base + "        heartbeat_interval: 10 seconds\n", "pipelines[0].source.postgres.heartbeat_interval", 11, "10s"},
		{"unknown delivery", base + "    delivery: exactly-once\n", "pipelines[0].delivery", 11, "exactly_once"},
		{"unknown on_error", base + "    on_error: skip\n", "pipelines[0].on_error", 11, "dlq"},
		{"unknown time_precision", base + "    time_precision: micro\n", "pipelines[0].time_precision", 11, "adaptive_time_microseconds"},
		{"unknown decimal_handling", base + "    decimal_handling: exact\n", "pipelines[0].decimal_handling", 11, "precise"},
		{"two sources", base + "      mysql:\n        dsn: root@tcp(127.0.0.1:33306)/x\n        server_id: 1\n        tables: [x.y]\n", "pipelines[0].source", 7, "one source per pipeline"},
		{"no source", `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    topics: {prefix: shop}
`, "pipelines[0].source", 6, "source.postgres or source.mysql"},
		{"duplicate pipeline names", base + `  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/other
        tables: [public.x]
`, "pipelines[1].name", 11, "its own name"},
		{"no brokers", strings.Replace(base, `  brokers: ["127.0.0.1:19092"]`, "  brokers: []", 1), "kafka.brokers", 2, "at least one"},
		{"unknown compression", strings.Replace(base, `  brokers: ["127.0.0.1:19092"]`, "  brokers: [\"127.0.0.1:19092\"]\n  compression: brotli", 1), "kafka.compression", 3, "lz4 or zstd"},
		{"broker without port", strings.Replace(base, `"127.0.0.1:19092"`, `"kafka"`, 1), "kafka.brokers[0]", 2, "host:port"},
		{"registry url not http", strings.Replace(base, "http://127.0.0.1:18081", "127.0.0.1:18081", 1), "schema_registry.url", 4, "http://"},
		{"unknown compatibility", base + "schema_registry_extra: 1\n", "schema_registry_extra", 11, "schema_registry"},
		{"bad compatibility level", strings.Replace(base, "  url: http://127.0.0.1:18081\n", "  url: http://127.0.0.1:18081\n  compatibility: SOMETIMES\n", 1), "schema_registry.compatibility", 5, "BACKWARD"},
		{"bad slot name", base + "        slot: Cdcd-Shop\n", "pipelines[0].source.postgres.slot", 11, "lowercase"},
		{"mysql without server_id", strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        tables: [inventory.items]`, 1), "pipelines[0].source.mysql.server_id", 8, "server_id: 4242"},
		{"bad byte size", base + "    batch:\n      max_bytes: lots\n", "pipelines[0].batch.max_bytes", 12, "16MiB"},
		{"list where a string belongs", strings.Replace(base, "  url: http://127.0.0.1:18081", "  url: [a, b]", 1), "schema_registry.url", 4, "give url a single value"},
		{"unset variable", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", "${PG_DSN}", 1), "pipelines[0].source.postgres.dsn", 9, "export PG_DSN"},
		{"missing secret file", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", "${file:/nonexistent/pg}", 1), "pipelines[0].source.postgres.dsn", 9, "mount the secret"},
		{"override of an uncaptured table", base + "    topics:\n      overrides:\n        public.nope: x\n", "pipelines[0].topics.overrides.public.nope", 13, "only tables listed"},
		{"duplicate key", base + "kafka: {}\n", "kafka", 11, "duplicate"},
		{"mysql heartbeat too short", strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        server_id: 7
        heartbeat_interval: 1ms
        tables: [inventory.items]`, 1), "pipelines[0].source.mysql.heartbeat_interval", 11, "100ms to 1h"},
		{"mysql unknown snapshot consistency", strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        server_id: 7
        snapshot_consistency: dblog
        tables: [inventory.items]`, 1), "pipelines[0].source.mysql.snapshot_consistency", 11, "auto (the default), binlog_snapshot (MariaDB only) or watermarks"},
		{"unknown snapshot mode", base + "    snapshot: always\n", "pipelines[0].snapshot", 11, "when_needed"},
		{"unknown snapshot key", base + "    snapshot:\n      mode: initial\n      paralelism: 4\n", "pipelines[0].snapshot.paralelism", 13, `did you mean "parallelism"`},
		{"snapshot parallelism out of range", base + "    snapshot: {mode: initial, parallelism: 100}\n", "pipelines[0].snapshot.parallelism", 11, "1 to 64"},
		{"snapshot chunk too small", base + "    snapshot: {chunk_max_bytes: 1KiB}\n", "pipelines[0].snapshot.chunk_max_bytes", 11, "64KiB"},
		{"keyless acceptance of an uncaptured table", base + "    snapshot: {accept_inexact_keyless: [public.nope]}\n", "pipelines[0].snapshot.accept_inexact_keyless[0]", 11, "tables"},
	}
	if len(cases) < 12 {
		t.Fatal("keep at least 12 bad files")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.yaml), noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, p := range ce.Problems {
				if p.Path == c.path && p.Line == c.line && strings.Contains(p.Fix, c.fix) {
					if !strings.Contains(err.Error(), "bad.yaml:") {
						t.Errorf("message does not name the file: %v", err)
					}
					return
				}
			}
			t.Fatalf("no problem at path %q line %d with fix containing %q; got:\n%v", c.path, c.line, c.fix, err)
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	y := `kafka:
  brokers: []
schema_registry:
  url: ""
  compatibility: nope
pipelines:
  - name: Bad Name
    delivery: sometimes
    source: {}
`
	_, err := Parse("c.yaml", []byte(y), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	want := []string{"kafka.brokers", "schema_registry.url", "schema_registry.compatibility", "pipelines[0].name", "pipelines[0].delivery", "pipelines[0].source"}
	for _, w := range want {
		found := false
		for _, p := range ce.Problems {
			found = found || p.Path == w
		}
		if !found {
			t.Errorf("problem for %s not reported; got:\n%v", w, err)
		}
	}
	// sorted by line
	for i := 1; i < len(ce.Problems); i++ {
		if ce.Problems[i].Line < ce.Problems[i-1].Line {
			t.Errorf("problems not in line order: %v", err)
		}
	}
}

// mysqlBase is base with a MySQL source instead of the Postgres one.
var mysqlBase = strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        server_id: 7
        tables: [inventory.items]`, 1)

// checkMySQLChoice checks that source.mysql.<key> defaults to def and takes each of values.
func checkMySQLChoice(t *testing.T, key, def string, values []string, get func(*MySQL) string) {
	t.Helper()
	cfg, err := Parse("c.yaml", []byte(mysqlBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(cfg.Pipelines[0].Source.MySQL); got != def {
		t.Errorf("default %s = %q, want %s", key, got, def)
	}
	for _, v := range values {
		y := strings.Replace(mysqlBase, "        server_id: 7\n", "        server_id: 7\n        "+key+": "+v+"\n", 1)
		cfg, err := Parse("c.yaml", []byte(y), noEnv)
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if got := get(cfg.Pipelines[0].Source.MySQL); got != v {
			t.Errorf("%s = %q, want %q", key, got, v)
		}
	}
}

// source.mysql.snapshot_consistency defaults to auto and takes each mode.
func TestMySQLSnapshotConsistency(t *testing.T) {
	checkMySQLChoice(t, "snapshot_consistency", "auto", []string{"auto", "binlog_snapshot", "watermarks"}, func(m *MySQL) string { return m.SnapshotConsistency })
}

// source.mysql.xa_recover defaults to check, takes skip, and refuses anything else with the
// values.
func TestMySQLXARecover(t *testing.T) {
	checkMySQLChoice(t, "xa_recover", "check", []string{"check", "skip"}, func(m *MySQL) string { return m.XARecover })
	y := strings.Replace(mysqlBase, "        server_id: 7\n", "        server_id: 7\n        xa_recover: off\n", 1)
	_, err := Parse("c.yaml", []byte(y), noEnv)
	if err == nil || !strings.Contains(err.Error(), "pipelines[0].source.mysql.xa_recover") || !strings.Contains(err.Error(), "check (the default) or skip") {
		t.Errorf("xa_recover: off: %v; want a problem at the key naming check and skip", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"PG_HOST": "db.internal", "SERVER_ID": "4242", "PREFIX": "sales"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	y := `kafka:
  brokers: ["${BROKER:-k1:9092}", "k2:9092"]
schema_registry:
  url: http://reg:8081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://cdcd@${PG_HOST}:5432/shop?application_name=a$$b
        tables: [public.orders]
    topics: {prefix: "${PREFIX}"}
  - name: inv
    source:
      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        server_id: ${SERVER_ID}
        tables: [inventory.items]
`
	cfg, err := Parse("c.yaml", []byte(y), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pipelines[0].Source.Postgres.DSN; got != "postgres://cdcd@db.internal:5432/shop?application_name=a$b" {
		t.Errorf("dsn = %q", got)
	}
	if cfg.Kafka.Brokers[0] != "k1:9092" {
		t.Errorf("default not used: %q", cfg.Kafka.Brokers[0])
	}
	if cfg.Pipelines[0].Topics.Prefix != "sales" {
		t.Errorf("prefix = %q", cfg.Pipelines[0].Topics.Prefix)
	}
	if cfg.Pipelines[1].Source.MySQL.ServerID != 4242 {
		t.Errorf("server_id from env = %d (an unquoted ${VAR} must resolve as a number)", cfg.Pipelines[1].Source.MySQL.ServerID)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pg_password"), []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop",
		"postgres://cdcd:${file:pg_password}@127.0.0.1:55432/shop", 1)
	path := filepath.Join(dir, "cdcd.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pipelines[0].Source.Postgres.DSN; got != "postgres://cdcd:s3cr3t@127.0.0.1:55432/shop" {
		t.Errorf("dsn = %q (relative secret paths resolve against the config's folder)", got)
	}
}

func TestByteSizes(t *testing.T) {
	cases := map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "16MiB": 16 << 20, "1GiB": 1 << 30, "500kB": 500000, "2MB": 2000000, "10B": 10}
	for in, want := range cases {
		var b ByteSize
		b.set(in)
		if b.Bad || b.N != want {
			t.Errorf("%q: got %d bad=%v, want %d", in, b.N, b.Bad, want)
		}
	}
	for _, in := range []string{"", "ten", "-1", "1.5MiB", "MiB", "1 TiB"} {
		var b ByteSize
		b.set(in)
		if !b.Bad {
			t.Errorf("%q accepted as %d", in, b.N)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if data, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("kafka: [\n"))
	f.Add([]byte("pipelines:\n  - source: {postgres: {tables: [a.b.c, '\"x\".y']}}\n"))
	f.Add([]byte("a: ${X\nb: ${file:}\n"))
	// The malformed files of the configuration-errors report: a second document, a type
	// error, duplicate keys, a long value, an unknown anchor, binary garbage, a merge key.
	f.Add([]byte(base + "---\nkafka: {brokers: [\"b:1\"]}\n"))
	f.Add([]byte(base + "    batch:\n      max_events: abc\n"))
	f.Add([]byte(base + "kafka: {}\nschema_registry: {url: http://x:1}\n"))
	f.Add([]byte(base + "    delivery: " + strings.Repeat("x", 4096) + "\n"))
	f.Add([]byte(base + "    topics: *nope\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\xff\xfe"))
	f.Add([]byte(base + "  - <<: &p {name: a, source: {postgres: {dsn: x, tables: [a.b]}}}\n  - <<: [*p, *p]\n    name: b\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, noEnv)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) && len(ce.Problems) == 0 {
				t.Fatal("error without problems")
			}
			// Messages never echo more than a clipped value.
			if n := len(err.Error()); n > 2*len(data)+4096 && n > 64<<10 {
				t.Fatalf("error of %d bytes for %d bytes of input", n, len(data))
			}
		}
	})
}

// snapshot: is the mode alone or a mapping with the tuning knobs.
func TestSnapshotForms(t *testing.T) {
	for _, c := range []struct {
		yaml        string
		mode        string
		parallelism int
		chunk       int
	}{
		{"    snapshot: when_needed\n", "when_needed", 2, 8192},
		{"    snapshot: never\n", "never", 2, 8192},
		{"    snapshot:\n      mode: initial\n      parallelism: 4\n      chunk_size: 1000\n", "initial", 4, 1000},
		{"    snapshot: {chunk_size: 500}\n", "initial", 2, 500},
	} {
		cfg, err := Parse("c.yaml", []byte(base+c.yaml), noEnv)
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		s := cfg.Pipelines[0].Snapshot
		if s.Mode != c.mode || s.Parallelism != c.parallelism || s.ChunkSize != c.chunk {
			t.Errorf("%q: got %+v", c.yaml, s)
		}
	}
}
