package integration

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

const everythingDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE everything (
  id bigint PRIMARY KEY,
  b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
  n numeric(10,2), nu numeric, t text, vc varchar(20), c char(3), by bytea,
  d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
  u uuid, j json, jb jsonb, ip inet, net cidr, mac macaddr, m mood, dom posint,
  ai int4[], at text[]
);
ALTER TABLE everything REPLICA IDENTITY FULL;
CREATE TABLE plain (id int PRIMARY KEY, big text, note text);
`

func TestPostgresEndToEndTypes(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_types", everythingDDL)
	name := uniqueName("types")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.everything", "public.plain"}, ""))
	d.waitReady(90 * time.Second)

	exec := func(sql string) {
		t.Helper()
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO everything VALUES (1, true, -32768, 2147483647, -9223372036854775808, 'NaN', '-Infinity',
		-12345678.90, 'NaN', 'héllo ✓ 世界', '', 'ab', '\x00ff', '0001-01-01', '24:00:00', '10:11:12.5+02',
		'9999-12-31 23:59:59.999999', 'infinity', '1 year 2 mons 3 days 04:05:06.5',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', '192.168.0.1/24', '10.0.0.0/8',
		'08:00:2b:01:02:03', 'happy', 5, '{1,NULL,3}', '{"a,b",NULL,"",x}')`)
	exec(`INSERT INTO everything (id) VALUES (2)`)
	exec(`INSERT INTO everything (id, t) SELECT 3, string_agg(md5(g::text), '') FROM generate_series(1, 8000) g`)
	exec(`UPDATE everything SET i4 = 7 WHERE id = 3`) // t is unchanged TOAST: FULL identity gives it back
	exec(`INSERT INTO plain SELECT 1, string_agg(md5(g::text), ''), 'a' FROM generate_series(1, 3000) g`)
	exec(`UPDATE plain SET note = 'b' WHERE id = 1`)   // big is unchanged TOAST: placeholder, never NULL
	exec(`UPDATE everything SET id = 10 WHERE id = 2`) // key change: delete + tombstone + create
	exec(`DELETE FROM everything WHERE id = 1`)
	exec(`TRUNCATE plain`)

	c := newConsumer(t, s, name+".public.everything", name+".public.plain")
	// everything: 3 creates, 1 update, delete+tombstone+create (key change), delete+tombstone = 9
	// plain: create, update, truncate = 3
	recs := c.read(t, 12, 90*time.Second, 2*time.Second)
	if len(recs) != 12 {
		for _, r := range recs {
			t.Logf("%s key=%v value=%v", r.Topic, c.decode(t, r.Key), c.decode(t, r.Value))
		}
		t.Fatalf("got %d records, want 12", len(recs))
	}
	type rec struct {
		op            string
		before, after map[string]any
		tombstone     bool
	}
	got := map[string][]rec{}
	for _, r := range recs {
		var id any = "none"
		if k := c.decode(t, r.Key); k != nil {
			id = k["id"]
		}
		key := fmt.Sprintf("%s/%v", strings.TrimPrefix(r.Topic, name+".public."), id)
		if r.Value == nil {
			got[key] = append(got[key], rec{tombstone: true})
			continue
		}
		v := unwrap(c.decode(t, r.Value)).(map[string]any)
		rr := rec{op: v["op"].(string)}
		if b, ok := unwrap(v["before"]).(map[string]any); ok {
			rr.before = b
		}
		if a, ok := unwrap(v["after"]).(map[string]any); ok {
			rr.after = a
		}
		got[key] = append(got[key], rr)
	}
	ops := func(key string) string {
		var b strings.Builder
		for _, r := range got[key] {
			if r.tombstone {
				b.WriteString("~")
			} else {
				b.WriteString(r.op)
			}
		}
		return b.String()
	}
	for key, want := range map[string]string{
		"everything/1": "cd~", "everything/2": "cd~", "everything/3": "cu", "everything/10": "c",
		"plain/1": "cu", "plain/none": "t",
	} {
		if g := ops(key); g != want {
			t.Errorf("%s: ops %q, want %q (c create, u update, d delete, ~ tombstone, t truncate)", key, g, want)
		}
	}

	// Row 1: every type at an extreme, compared value by value.
	a := unwrapAll(got["everything/1"][0].after)
	big := func(s string) *big.Rat { r, _ := new(big.Rat).SetString(s); return r }
	want := map[string]any{
		"id": int64(1), "b": true, "i2": -32768, "i4": 2147483647, "i8": int64(math.MinInt64),
		"f8": math.Inf(-1), "n": big("-12345678.90"), "nu": "NaN", "t": "héllo ✓ 世界", "vc": "", "c": "ab ",
		"by": []byte{0, 255}, "d": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "tm": 24 * time.Hour, "ttz": "10:11:12.5+02:00",
		"ts": time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), "tstz": time.UnixMicro(math.MaxInt64).UTC(),
		"iv": "P1Y2M3DT4H5M6.5S", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": `{"a": [1, 2]}`, "jb": `{"b": null}`,
		"ip": "192.168.0.1/24", "net": "10.0.0.0/8", "mac": "08:00:2b:01:02:03", "m": "happy", "dom": 5,
		"ai": []any{1, nil, 3}, "at": []any{"a,b", nil, "", "x"},
	}
	for col, w := range want {
		g := a[col]
		if !equalValue(g, w) {
			t.Errorf("row 1 column %s: got %#v (%T), want %#v (%T)", col, g, g, w, w)
		}
	}
	if f, ok := a["f4"].(float32); !ok || !math.IsNaN(float64(f)) {
		t.Errorf("row 1 column f4: got %#v, want NaN", a["f4"])
	}
	// Row 2: every nullable column NULL.
	for col, v := range unwrapAll(got["everything/2"][0].after) {
		if col != "id" && v != nil {
			t.Errorf("row 2 column %s: got %#v, want NULL", col, v)
		}
	}
	// The delete of row 1 carries the full old row (REPLICA IDENTITY FULL).
	if d := got["everything/1"][1]; d.before == nil || unwrapAll(d.before)["t"] != "héllo ✓ 世界" {
		t.Errorf("delete of row 1: before = %v", d.before)
	}
	// Unchanged TOAST under FULL identity: the value comes from the old row.
	long := got["everything/3"][0].after["t"]
	if u := unwrapAll(got["everything/3"][1].after); u["t"] != long || u["i4"] != 7 || len(u["t"].(string)) != 8000*32 {
		t.Errorf("update of row 3 lost its TOASTed text: i4=%v len(t)=%d", u["i4"], len(fmt.Sprint(u["t"])))
	}
	// Unchanged TOAST without FULL identity: the documented placeholder, never NULL.
	if u := unwrapAll(got["plain/1"][1].after); u["big"] != "__debezium_unavailable_value" || u["note"] != "b" {
		t.Errorf("update of plain row 1: big=%.40v note=%v, want the unchanged-TOAST placeholder", u["big"], u["note"])
	}
}

// unwrap removes hamba's union wrappers: a single-key map whose key is a type name.
func unwrap(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	for k, inner := range m {
		if strings.Contains(k, ".") || k == "array" {
			return unwrap(inner)
		}
	}
	return v
}

func unwrapAll(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = unwrap(v)
	}
	return out
}

func equalValue(g, w any) bool {
	switch w := w.(type) {
	case *big.Rat:
		r, ok := g.(*big.Rat)
		return ok && r.Cmp(w) == 0
	case time.Time:
		t, ok := g.(time.Time)
		return ok && t.Equal(w)
	}
	return reflect.DeepEqual(g, w)
}
