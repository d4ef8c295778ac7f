package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// want is one problem a malformed file must produce.
type want struct {
	path string // exact problem path
	line int
	msg  string // substrings of the message, "|"-separated
	fix  string // substring of the fix
}

// malformed is a file that must be refused with exactly the problems named (no follow-ons).
type malformed struct {
	name   string
	yaml   string
	want   []want
	absent []string // must not appear anywhere in the error text
}

func checkMalformed(t *testing.T, cases []malformed) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.yaml), noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("the file was accepted (err %v); want it refused", err)
			}
			text := err.Error()
			if len(text) > 4000 {
				t.Errorf("the error is %d bytes long; a value must not be echoed whole:\n%.600s", len(text), text)
			}
			if len(ce.Problems) != len(c.want) {
				t.Errorf("%d problems, want %d (no follow-ons):\n%.3000s", len(ce.Problems), len(c.want), text)
			}
			for _, w := range c.want {
				found := false
				for _, p := range ce.Problems {
					if p.Path != w.path || p.Line != w.line || !strings.Contains(p.Fix, w.fix) {
						continue
					}
					all := true
					for _, m := range strings.Split(w.msg, "|") {
						all = all && strings.Contains(p.Message, m)
					}
					found = found || all
				}
				if !found {
					t.Errorf("no problem at path %q line %d with message containing %q and fix containing %q; got:\n%.3000s", w.path, w.line, w.msg, w.fix, text)
				}
			}
			for _, a := range c.absent {
				if strings.Contains(text, a) {
					t.Errorf("the error says %q, which is false here:\n%.3000s", a, text)
				}
			}
		})
	}
}

// A second YAML document used to be ignored without a word.
func TestSecondDocumentRefused(t *testing.T) {
	checkMalformed(t, []malformed{
		{"second document", base + "---\nkafka:\n  brokers: [\"other:9092\"]\n",
			[]want{{"", 11, "second YAML document|only the first", "one document per file"}}, nil},
		{"second document after an explicit first", "---\n" + base + "--- # staging\npipelines: []\n",
			[]want{{"", 12, "second YAML document", "one document per file"}}, nil},
		{"second document that does not parse", base + "---\nkafka: [\n",
			[]want{{"", 12, "second YAML document|does not parse", "one document per file"}}, nil},
	})
	// An empty trailing document holds nothing that could be ignored.
	if _, err := Parse("c.yaml", []byte(base+"---\n"), noEnv); err != nil {
		t.Errorf("a trailing empty document was refused: %v", err)
	}
}

// Type errors used to give the line but not the key ("cannot unmarshal !!str `abc` into
// int"), and sometimes a false follow-on ("no tables are listed").
func TestTypeErrorsNameKeyAndType(t *testing.T) {
	mysql := strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root@tcp(127.0.0.1:33306)/inventory
        tables: [inventory.items]
        server_id: -1`, 1)
	checkMalformed(t, []malformed{
		{"string for an int", base + "    batch:\n      max_events: abc\n",
			[]want{{"pipelines[0].batch.max_events", 12, `expects a whole number|the string "abc"`, "give max_events a whole number"}}, []string{"cannot unmarshal"}},
		{"scalar for a list", strings.Replace(base, "tables: [public.orders]", "tables: public.orders", 1),
			[]want{{"pipelines[0].source.postgres.tables", 10, `expects a list of strings|"public.orders"`, "give tables a list"}}, []string{"no tables are listed", "cannot unmarshal"}},
		{"negative server_id", mysql,
			[]want{{"pipelines[0].source.mysql.server_id", 11, "from 0 to 4294967295|the number -1", "server_id"}}, []string{"server_id is not set"}},
		{"word for a bool", base + "    tombstones: maybe\n",
			[]want{{"pipelines[0].tombstones", 11, `true or false|"maybe"`, "true or false"}}, nil},
		{"list for a mapping", strings.Replace(base, `kafka:
  brokers: ["127.0.0.1:19092"]`, `kafka: ["127.0.0.1:19092"]`, 1),
			[]want{{"kafka", 1, "expects a mapping with the keys|brokers|a list", "see config.example.yaml"}}, []string{"no Kafka brokers"}},
		{"list for a duration", base + "        heartbeat_interval: [1s]\n",
			[]want{{"pipelines[0].source.postgres.heartbeat_interval", 11, "expects a duration|a list", "10s"}}, []string{"not a scalar"}},
		{"mapping for the pipelines list", strings.Replace(base, "  - name: shop", "    name: shop", 1),
			[]want{{"pipelines", 6, "expects a list|a mapping", "give pipelines a list"}}, []string{"no pipelines are configured"}},
		{"mapping for a string", strings.Replace(base, "  url: http://127.0.0.1:18081", "  url: {a: b}", 1),
			[]want{{"schema_registry.url", 4, "expects a string|a mapping", "give url"}}, []string{"no schema registry URL"}},
		{"two on one line", base + "    batch: {max_events: x, interval: [1s]}\n",
			[]want{
				{"pipelines[0].batch.max_events", 11, "expects a whole number", "max_events"},
				{"pipelines[0].batch.interval", 11, "expects a duration", "interval"},
			}, []string{"cannot unmarshal"}},
	})
}

// Duplicate keys used to add false follow-ons: the later value replaced the first.
func TestDuplicateKeysReportedOnce(t *testing.T) {
	followOns := []string{"no Kafka brokers", "no schema registry URL", "no pipelines are configured", "already defined"}
	checkMalformed(t, []malformed{
		{"top-level mapping", base + "kafka: {}\n",
			[]want{{"kafka", 11, `key "kafka" is given twice|line 1|line 11`, "remove the duplicate"}}, followOns},
		{"top-level with content", base + "schema_registry:\n  url: http://other:8081\n",
			[]want{{"schema_registry", 11, "line 3|line 11", "remove the duplicate"}}, followOns},
		{"pipelines list", base + "pipelines: []\n",
			[]want{{"pipelines", 11, "line 5|line 11", "remove the duplicate"}}, followOns},
		{"nested key", base + "        tables: [public.other]\n",
			[]want{{"pipelines[0].source.postgres.tables", 11, `key "tables" is given twice|line 10|line 11`, "remove the duplicate"}}, followOns},
		{"override map", base + "    topics:\n      overrides:\n        public.orders: a\n        public.orders: b\n",
			[]want{{"pipelines[0].topics.overrides.public.orders", 14, "line 13|line 14", "remove the duplicate"}}, followOns},
	})
}

// A 10 MB value used to be echoed whole, twice or more, and with a wrong fix for the names
// derived from it.
func TestLongValuesAreCut(t *testing.T) {
	// The report pasted 10 MB; 1 MiB tells the same (a message of a few hundred bytes) and
	// keeps the test fast under -race.
	big := strings.Repeat("x", 1<<20)
	sized := "(1048576 bytes)"
	checkMalformed(t, []malformed{
		{"pipeline name", strings.Replace(base, "name: shop", "name: "+big, 1),
			[]want{{"pipelines[0].name", 6, "is not a valid pipeline name|" + sized, "at most 63"}}, []string{"slot", "publication"}},
		{"delivery", base + "    delivery: " + big + "\n", []want{{"pipelines[0].delivery", 11, sized, "exactly_once"}}, nil},
		{"broker", strings.Replace(base, `"127.0.0.1:19092"`, `"`+big+`"`, 1), []want{{"kafka.brokers[0]", 2, "host:port|" + sized, "host:port"}}, nil},
		{"registry URL", strings.Replace(base, "http://127.0.0.1:18081", big, 1), []want{{"schema_registry.url", 4, sized, "http://host:8081"}}, nil},
		{"dsn", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", "postgres://db:notaport/"+big, 1), []want{{"pipelines[0].source.postgres.dsn", 9, "does not parse", "postgres:// URL"}}, nil},
		{"table", strings.Replace(base, "public.orders", big, 1), []want{{"pipelines[0].source.postgres.tables[0]", 10, sized, "schema.table"}}, nil},
		{"duration", base + "        heartbeat_interval: " + big + "\n", []want{{"pipelines[0].source.postgres.heartbeat_interval", 11, "is not a duration|" + sized, "10s"}}, nil},
		{"number", base + "    batch:\n      max_events: " + big + "\n", []want{{"pipelines[0].batch.max_events", 12, "whole number|" + sized, "max_events"}}, nil},
		// YAML itself refuses keys over 1024 bytes.
		{"unknown key", base + big[:1000] + ": 1\n", []want{{big[:80] + "... (1000 bytes)", 11, "unknown key|(1000 bytes)", "known keys"}}, nil},
		{"unterminated variable", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", "${"+big, 1), []want{{"pipelines[0].source.postgres.dsn", 9, "unterminated|(1048578 bytes)", "close it"}}, nil},
	})
	// A valid 63-character name makes default slot and publication names that are too long:
	// the fix is to set them or shorten the name, not to change characters.
	name := strings.Repeat("n", 63)
	checkMalformed(t, []malformed{
		{"default names from a long valid name", strings.Replace(base, "name: shop", "name: "+name, 1), []want{
			{"pipelines[0].source.postgres.slot", 8, "default replication slot name|longer than", "set slot:"},
			{"pipelines[0].source.postgres.publication", 8, "default publication name|longer than", "set publication:"},
		}, nil},
	})
}

// Unknown anchors and binary garbage used to give no line.
func TestNotYAMLGivesALine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"unknown anchor", base + "    topics: *common_topics\n",
			[]want{{"", 11, "*common_topics|no anchor", "&common_topics"}}, nil},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			[]want{{"", 1, "not YAML text|line 1, column 1", "wrong file"}}, nil},
		{"NUL bytes", base + "\x00\x00\x00\n",
			[]want{{"", 11, "looks binary|U+0000|line 11, column 1", "wrong file"}}, nil},
		{"not UTF-8", base + "    topics: {prefix: caf\xe9}\n",
			[]want{{"", 11, "not UTF-8|0xE9|line 11, column 25", "UTF-8"}}, nil},
		{"control character", base + "    delivery: exactly\x1b_once\n",
			[]want{{"", 11, "U+001B|column 22", "remove the character"}}, nil},
		{"non-character", base + "    delivery: exactly\uffff_once\n",
			[]want{{"", 11, "U+FFFF|column 22", "remove the character"}}, nil},
	})
	// UTF-8 with a byte order mark, and UTF-16 with one, are text.
	if _, err := Parse("c.yaml", append([]byte("\xef\xbb\xbf"), base...), noEnv); err != nil {
		t.Errorf("UTF-8 with a BOM refused: %v", err)
	}
}

// Merge keys are YAML's way to share settings between pipelines: their keys are checked as
// if written in place, not reported as an unknown key "<<".
func TestMergeKeys(t *testing.T) {
	y := base + `  - <<: &common
      source:
        postgres:
          dsn: postgres://postgres@127.0.0.1:55432/other
          tables: [public.x]
    name: other
  - <<: *common
    name: third
    delivery: at_least_once
`
	cfg, err := Parse("c.yaml", []byte(y), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pipelines[2].Source.Postgres.Tables[0]; got != "public.x" || cfg.Pipelines[2].Delivery != "at_least_once" {
		t.Errorf("merged pipeline: %+v", cfg.Pipelines[2])
	}
	bad := strings.Replace(y, "    delivery: at_least_once\n", "", 1) + "  - <<: *common\n    name: fourth\n    delivry: x\n"
	checkMalformed(t, []malformed{{"typo next to a merge", bad,
		[]want{{"pipelines[3].delivry", 21, `unknown key "delivry"`, `did you mean "delivery"`}}, []string{`"<<"`}}})
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PG_PASSWORD": "from-the-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name    string
		yaml    string
		path    string // "" when no warning is expected
		line    int
		fix     string
		secrets []string
	}{
		{"no passwords", base, "", 0, "", nil},
		{"registry password in the URL", strings.Replace(base, "http://127.0.0.1:18081", "http://reg:${file:pw}@127.0.0.1:18081", 1),
			"schema_registry.url", 4, "schema_registry.username and schema_registry.password", []string{"from-a-file"}},
		{"registry password key written inline", strings.Replace(base, "  url: http://127.0.0.1:18081\n", "  url: http://127.0.0.1:18081\n  username: reg\n  password: hunter22\n", 1),
			"schema_registry.password", 6, "${file:", []string{"hunter22"}},
		{"registry password key from a file", strings.Replace(base, "  url: http://127.0.0.1:18081\n", "  url: http://127.0.0.1:18081\n  username: reg\n  password: ${file:pw}\n", 1),
			"", 0, "", []string{"from-a-file"}},
		{"postgres URL password inline", strings.Replace(base, "postgres://postgres@", "postgres://postgres:inl1ne@", 1),
			"pipelines[0].source.postgres.dsn", 9, "${file:/run/secrets/pg_password}", []string{"inl1ne"}},
		{"postgres key/value password inline", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", `"host=db dbname=shop password='in line'"`, 1),
			"pipelines[0].source.postgres.dsn", 9, "${file:", []string{"in line"}},
		{"postgres password from a file", strings.Replace(base, "postgres://postgres@", "postgres://postgres:${file:pw}@", 1),
			"", 0, "", []string{"from-a-file"}},
		{"postgres key/value password from a file", strings.Replace(base, "postgres://postgres@127.0.0.1:55432/shop", `"host=db dbname=shop user=cdcd password=${file:pw}"`, 1),
			"", 0, "", []string{"from-a-file"}},
		{"postgres password from the environment", strings.Replace(base, "postgres://postgres@", "postgres://postgres:${PG_PASSWORD}@", 1),
			"", 0, "", []string{"from-the-env"}},
		{"sasl password inline", strings.Replace(base, "  brokers: [\"127.0.0.1:19092\"]\n", "  brokers: [\"127.0.0.1:19092\"]\n  sasl: {mechanism: PLAIN, username: u, password: saslpw1}\n", 1),
			"kafka.sasl.password", 3, "${file:", []string{"saslpw1"}},
		{"mysql password inline", strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: root:myinl1ne@tcp(127.0.0.1:33306)/inventory
        server_id: 1
        tables: [inventory.items]`, 1),
			"pipelines[0].source.mysql.dsn", 9, "${file:/run/secrets/mysql_password}", []string{"myinl1ne"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			cfg, err := Parse(path, []byte(c.yaml), lookup)
			if err != nil {
				t.Fatal(err)
			}
			ws := cfg.Warnings()
			if c.path == "" {
				if len(ws) > 0 {
					t.Errorf("unexpected warnings: %+v", ws)
				}
			} else if len(ws) != 1 || ws[0].Path != c.path || ws[0].Line != c.line || !strings.Contains(ws[0].Fix, c.fix) {
				t.Errorf("warnings %+v; want one at %s line %d with a fix containing %q", ws, c.path, c.line, c.fix)
			}
			got := strings.Join(cfg.Secrets(), "\n")
			for _, s := range c.secrets {
				if !strings.Contains(got, s) {
					t.Errorf("Secrets() lacks %q: %q", s, cfg.Secrets())
				}
			}
		})
	}
}

// Problems about a value that holds a secret must not print it.
func TestProblemsDoNotPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `kafka:
  brokers: ["${file:pw}"]
schema_registry:
  url: ftp://reg:url-s3cret@127.0.0.1:18081
  password: [x]
pipelines:
  - name: shop
    source:
      mysql:
        dsn: root:my-s3cret@127.0.0.1:33306/inventory
        server_id: 1
        tables: [inventory.items]
  - name: two
    source:
      postgres:
        dsn: "postgres://u:pg-s3cret@db:notaport/shop"
        tables: [public.x]
`
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(y), noEnv)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, s := range []string{"file-s3cret", "url-s3cret", "my-s3cret", "pg-s3cret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error prints %q:\n%v", s, err)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) < 4 {
		t.Errorf("want a problem for each bad value:\n%v", err)
	}
}
