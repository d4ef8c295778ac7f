package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestSignalKeyValidatedWithKeyAndLine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"short signal key", base + "    snapshot: {mode: never, signal_key: short}\n",
			[]want{{"pipelines[0].snapshot.signal_key", 11, "5 characters|too easy to guess", "${file:"}}, nil},
	})
}

func TestSignalKeyFromConfigOrPassword(t *testing.T) {
	parse := func(yaml string) *Pipeline {
		t.Helper()
		c, err := Parse("c.yaml", []byte(yaml), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return &c.Pipelines[0]
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", "/nonexistent")
	if k := parse(base).SignalKey(); k != nil {
		t.Errorf("a source without a password and no signal_key has a key: %x", k)
	}
	withPw := strings.Replace(base, "postgres://postgres@", "postgres://postgres:s3cret@", 1)
	k1 := parse(withPw).SignalKey()
	if len(k1) != 32 {
		t.Fatalf("no key derived from the password: %x", k1)
	}
	other := strings.Replace(withPw, "s3cret", "other", 1)
	if bytes.Equal(parse(other).SignalKey(), k1) {
		t.Error("two passwords give the same key")
	}
	renamed := strings.Replace(withPw, "name: shop", "name: shop2", 1)
	if bytes.Equal(parse(renamed).SignalKey(), k1) {
		t.Error("two pipelines give the same key")
	}
	set := parse(base + "    snapshot: {signal_key: 0123456789abcdef0123}\n").SignalKey()
	if len(set) != 32 || bytes.Equal(set, k1) {
		t.Errorf("signal_key not used: %x", set)
	}
	my := strings.Replace(base, `      postgres:
        dsn: postgres://postgres@127.0.0.1:55432/shop
        tables: [public.orders]`, `      mysql:
        dsn: cdcd:pw@tcp(127.0.0.1:33306)/inventory
        tables: [inventory.items]
        server_id: 7`, 1)
	if k := parse(my).SignalKey(); len(k) != 32 {
		t.Errorf("no key derived from the MySQL password: %x", k)
	}
}

func TestShapeValidatedWithKeyAndLine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"shape of a table not captured", base + "    shape:\n      public.other:\n        columns: {exclude: [email]}\n",
			[]want{{"pipelines[0].shape.public.other", 12, "not captured", "shape only tables listed"}}, nil},
		{"include and exclude", base + "    shape:\n      public.orders:\n        columns: {include: [id], exclude: [email]}\n",
			[]want{{"pipelines[0].shape.public.orders.columns", 13, "both include and exclude", "keep one"}}, nil},
		{"a column twice", base + "    shape:\n      public.orders:\n        columns: {exclude: [email, email]}\n",
			[]want{{"pipelines[0].shape.public.orders.columns", 13, "listed twice", "once"}}, nil},
		{"unknown key", base + "    shape:\n      public.orders:\n        colums: {exclude: [email]}\n",
			[]want{{"pipelines[0].shape.public.orders.colums", 13, "colums", "columns"}}, nil},
	})
	c, err := Parse("c.yaml", []byte(base+"    shape:\n      public.orders:\n        columns: {exclude: [email]}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Pipelines[0].ShapeRules(); len(r["public.orders"].Exclude) != 1 {
		t.Fatalf("rules %v", r)
	}
}

func TestMaskValidatedWithKeyAndLine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"unknown mask", base + "    mask_key: 0123456789abcdef0\n    shape:\n      public.orders:\n        mask: {email: scramble}\n",
			[]want{{"pipelines[0].shape.public.orders.mask.email", 14, "unknown mask", "hash, redact or truncate(n)"}}, nil},
		{"hash without a key", base + "    shape:\n      public.orders:\n        mask: {email: hash}\n",
			[]want{{"pipelines[0].shape.public.orders.mask.email", 13, "needs a key", "mask_key"}}, nil},
		{"masked and excluded", base + "    shape:\n      public.orders:\n        columns: {exclude: [email]}\n        mask: {email: redact}\n",
			[]want{{"pipelines[0].shape.public.orders.mask.email", 14, "left out by columns", "mask only columns"}}, nil},
		{"short mask key", base + "    mask_key: short\n",
			[]want{{"pipelines[0].mask_key", 11, "too easy to guess", "${file:"}}, nil},
	})
}

func TestShapeKeyValidatedWithKeyAndLine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"excluded key column", base + "    shape:\n      public.orders:\n        columns: {exclude: [code]}\n        key: [code]\n",
			[]want{{"pipelines[0].shape.public.orders.key[0]", 14, "left out by columns", "key by columns"}}, nil},
		{"masked key column", base + "    shape:\n      public.orders:\n        mask: {code: redact}\n        key: [code]\n",
			[]want{{"pipelines[0].shape.public.orders.key[0]", 14, "masked", "another column"}}, nil},
	})
}

func TestShapeFilterValidatedWithKeyAndLine(t *testing.T) {
	checkMalformed(t, []malformed{
		{"SQL in a filter", base + "    shape:\n      public.orders:\n        filter: \"id > 0; DROP TABLE orders\"\n",
			[]want{{"pipelines[0].shape.public.orders.filter", 13, "allowed grammar", "compare columns with literals"}}, nil},
	})
}
