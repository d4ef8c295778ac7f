package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/change"
)

func mustBuiltin(t testing.TB, oid uint32, typmod int32) *typeInfo {
	t.Helper()
	ti, ok := builtinInfo(oid, typmod)
	if !ok {
		t.Fatalf("OID %d is not built in", oid)
	}
	return ti
}

var enumInfo = &typeInfo{OID: 90001, Name: "mood", Kind: change.KindEnum, SourceType: "public.mood", BaseOID: 90001, delim: ','}

var enumArrayInfo = arrayInfo(90000, "_mood", -1, enumInfo)

func ival(n int64) change.Value { return change.Value{Int: n} }

func str(s string) change.Value { return change.Value{Str: s} }

func flt(f float64) change.Value { return change.Value{Float: f} }

func arr(vs ...change.Value) change.Value {
	if vs == nil {
		vs = []change.Value{}
	}
	return change.Value{Arr: vs}
}

func equalValue(a, b change.Value) bool {
	if a.State != b.State || a.Int != b.Int || a.Uint != b.Uint || a.Str != b.Str || !bytes.Equal(a.Bytes, b.Bytes) ||
		(a.Bytes == nil) != (b.Bytes == nil) || (a.Arr == nil) != (b.Arr == nil) || len(a.Arr) != len(b.Arr) {
		return false
	}
	if math.IsNaN(a.Float) || math.IsNaN(b.Float) {
		if !math.IsNaN(a.Float) || !math.IsNaN(b.Float) {
			return false
		}
	} else if a.Float != b.Float || math.Signbit(a.Float) != math.Signbit(b.Float) {
		return false
	}
	for i := range a.Arr {
		if !equalValue(a.Arr[i], b.Arr[i]) {
			return false
		}
	}
	return true
}

type decodeCase struct {
	name    string
	t       *typeInfo
	text    string
	want    change.Value
	wantErr error // errMalformedValue or errUnsupportedType
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeText(tc.t, []byte(tc.text))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("decodeText(%s, %q) = %+v, %v; want error %v", tc.t.SourceType, tc.text, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeText(%s, %q): %v", tc.t.SourceType, tc.text, err)
			}
			if !equalValue(got, tc.want) {
				t.Fatalf("decodeText(%s, %q) = %+v; want %+v", tc.t.SourceType, tc.text, got, tc.want)
			}
		})
	}
}

func TestDecodeColumnNamesTheColumn(t *testing.T) {
	_, err := decodeColumn("matrix", mustBuiltin(t, 1007, -1), []byte("{{1,2},{3,4}}"))
	if !errors.Is(err, errNotRepresentable) || !strings.Contains(err.Error(), `column "matrix"`) || !strings.Contains(err.Error(), "integer[]") {
		t.Fatalf("error %q should name the column, its type and that the value is not representable", err)
	}
	_, err = decodeColumn("born", mustBuiltin(t, 1082, -1), []byte("01/02/2024"))
	if !errors.Is(err, errMalformedValue) || !strings.Contains(err.Error(), `column "born"`) || !strings.Contains(err.Error(), "DateStyle") {
		t.Fatalf("error %q should name the column and DateStyle", err)
	}
}

// FuzzDecodeText feeds arbitrary text to every kind: decodeText must fail cleanly, never panic.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"t", "-12.50", "2024-01-02 03:04:05.123456+00", "0044-03-15 BC", "{1,NULL,3}",
		`{"a\"b",NULL}`, `\x0102`, `\000\\`, "[0:1]={1,2}", "{{1},{2}}", "[0:1][5:6]={{7,7},{7,7}}", "294247-01-10 04:00:54.775806",
		"P1Y2M3DT4H5M6.5S", "24:00:00+05", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "NaN", "-Infinity",
		"{(1,1),(0,0);(2,2),(1,1)}", `{"2024-01-01 00:00:00+00",infinity}`, "[1:0]={}"} {
		f.Add([]byte(s))
	}
	var types []*typeInfo
	for _, b := range builtinList {
		types = append(types, mustBuiltin(f, b.oid, -1), mustBuiltin(f, b.arrayOID, -1))
	}
	types = append(types, enumInfo, enumArrayInfo)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		for _, ti := range types {
			v, err := decodeText(ti, data)
			if err == nil && ti.Kind == change.KindArray && v.Arr == nil {
				t.Fatalf("%s %q: array without Arr", ti.SourceType, data)
			}
			if err == nil && ti.Kind == change.KindArray && len(data) > 0 && data[0] == '[' && !bytes.HasPrefix(data, []byte("[1:")) {
				t.Fatalf("%s %q: a lower bound other than 1 decoded to %+v", ti.SourceType, data, v)
			}
			if err != nil && !errors.Is(err, errMalformedValue) && !errors.Is(err, errUnsupportedType) && !errors.Is(err, errNotRepresentable) {
				t.Fatalf("%s %q: unclassified error %v", ti.SourceType, data, err)
			}
		}
		if !bytes.Equal(orig, data) {
			t.Fatal("decodeText modified its input")
		}
	})
}

func BenchmarkDecodeText(b *testing.B) {
	for _, bc := range []struct {
		name   string
		oid    uint32
		typmod int32
		text   string
	}{
		{"timestamptz", 1184, -1, "2024-01-02 03:04:05.123456+05:30"},
		{"timestamp", 1114, -1, "2024-01-02 03:04:05.123456"},
		{"numeric", 1700, 655366, "-12345678.50"},
		{"int8", 20, -1, "-9223372036854775807"},
		{"float8", 701, -1, "1.2345678901234567e+100"},
		{"date", 1082, -1, "2024-01-02"},
		{"text", 25, -1, "hello, world"},
		{"uuid", 2950, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"interval_iso", 1186, -1, "P1Y2M3DT4H5M6.5S"},
		{"int4_array_10", 1007, -1, "{1,2,3,4,5,6,7,8,9,10}"},
		{"text_array_10", 1009, -1, `{a,b,"c,d",NULL,e,f,g,"h\"i",j,k}`},
	} {
		ti := mustBuiltin(b, bc.oid, bc.typmod)
		text := []byte(bc.text)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := decodeText(ti, text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingQuerier counts catalog queries sent to a real server.
type countingQuerier struct {
	q catalogQuerier
	n int
}

func (c *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n++
	return c.q.QueryRow(ctx, sql, args...)
}

// TestPostgresTypes checks the catalog and decodeText against a real server. It runs only
// when CDCD_TEST_PG_DSN is set, e.g. postgres://postgres@127.0.0.1:55432/postgres.
func TestPostgresTypes(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("CDCD_TEST_PG_DSN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	schema := fmt.Sprintf("cdcd_types_test_%d", time.Now().UnixNano())
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE SCHEMA ` + schema)
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	exec(`SET search_path = ` + schema + `, public`)
	exec(`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'NULL')`)
	exec(`CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0)`)
	exec(`CREATE DOMAIN price2 AS price`)
	exec(`CREATE DOMAIN intlist AS int[]`)
	exec(`CREATE TYPE addr AS (street text, no int)`)
	exec(`CREATE TABLE t (
		m mood, ma mood[], p price, p2 price2, pa price2[], il intlist, home addr, homes addr[],
		n numeric(10,2), nn numeric, na numeric(10,2)[], ns numeric(5,-2), v varchar(20), va varchar(20)[],
		c char(4), bp bpchar, tm time(3), ttz timetz(2), ts timestamp, tz timestamptz(0), iv interval,
		ivy interval year to month, ivd interval day to second(2), b bit(5), vb varbit(7), money money,
		pt point, bx box[], r int4range, tsv tsvector, u uuid, j json, jb jsonb[], x xml, o oid,
		mc macaddr8, i inet, cd cidr, f4 real, f8 double precision, by bytea, d date, qc "char")`)

	q := &countingQuerier{q: conn}
	cat := newTypeCatalog(q)

	t.Run("columns", func(t *testing.T) {
		rows, err := conn.Query(ctx, `SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod)
			FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum`)
		if err != nil {
			t.Fatal(err)
		}
		type attr struct {
			name   string
			oid    uint32
			typmod int32
			format string
		}
		var attrs []attr
		for rows.Next() {
			var a attr
			if err := rows.Scan(&a.name, &a.oid, &a.typmod, &a.format); err != nil {
				t.Fatal(err)
			}
			attrs = append(attrs, a)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[string]change.Column{
			"m":  {Kind: change.KindEnum, SourceType: schema + ".mood"},
			"ma": {Kind: change.KindArray, Elem: change.KindEnum, SourceType: schema + ".mood[]"},
			"p":  {Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price"},
			"p2": {Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price2"},
			"pa": {Kind: change.KindArray, Elem: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price2[]"},
			"il": {Kind: change.KindArray, Elem: change.KindInt32, SourceType: schema + ".intlist"},
			"n":  {Kind: change.KindDecimal, Precision: 10, Scale: 2},
			"nn": {Kind: change.KindDecimal},
			"na": {Kind: change.KindArray, Elem: change.KindDecimal, Precision: 10, Scale: 2},
			"ns": {Kind: change.KindDecimal, Precision: 5, Scale: -2},
			"tz": {Kind: change.KindTimestampTZ},
			"iv": {Kind: change.KindInterval},
			"o":  {Kind: change.KindInt64},
			"bx": {Kind: change.KindArray, Elem: change.KindString},
			"jb": {Kind: change.KindArray, Elem: change.KindJSON},
		}
		before := q.n
		for _, a := range attrs {
			col, ti, err := cat.resolveColumn(ctx, a.name, a.oid, a.typmod)
			if a.name == "home" || a.name == "homes" {
				if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), fmt.Sprintf("column %q", a.name)) {
					t.Errorf("%s: want an unsupported-type error naming the column, got %v", a.name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", a.name, err)
				continue
			}
			if a.oid < 10000 && ti.SourceType != a.format {
				t.Errorf("%s: SourceType %q; format_type says %q", a.name, ti.SourceType, a.format)
			}
			if w, ok := want[a.name]; ok {
				if w.SourceType == "" {
					w.SourceType = a.format
				}
				w.Name = a.name
				if col != w {
					t.Errorf("%s: got %+v; want %+v", a.name, col, w)
				}
			}
		}
		// One query per user type OID the table uses: mood, mood[], price, price2, price2[],
		// intlist, addr and addr[] (some come with an earlier query's rows).
		if n := q.n - before; n < 1 || n > 8 {
			t.Errorf("%d catalog queries", n)
		}
		n := q.n
		for _, a := range attrs {
			_, _, _ = cat.resolveColumn(ctx, a.name, a.oid, a.typmod)
		}
		if q.n != n { // results and pg_type rows (also of unsupported types) are cached
			t.Errorf("resolving again cost %d queries", q.n-n)
		}
	})

	t.Run("builtins", func(t *testing.T) {
		for _, b := range builtinList {
			var name, sql, arraySQL string
			var arrayOID uint32
			var delim string
			err := conn.QueryRow(ctx, `SELECT typname, typarray, format_type(oid, -1), format_type(typarray, -1), typdelim::text
				FROM pg_type WHERE oid = $1`, b.oid).Scan(&name, &arrayOID, &sql, &arraySQL, &delim)
			if errors.Is(err, pgx.ErrNoRows) {
				t.Logf("type %s (OID %d) is not in this server", b.name, b.oid)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			ti, at := mustBuiltin(t, b.oid, -1), mustBuiltin(t, b.arrayOID, -1)
			if name != b.name || arrayOID != b.arrayOID || sql != ti.SourceType || arraySQL != at.SourceType || delim != string(ti.delim) {
				t.Errorf("OID %d: server says %s %d %q %q %q; static %+v / %q", b.oid, name, arrayOID, sql, arraySQL, delim, ti, at.SourceType)
			}
		}
	})

	// value returns the output function's text of a SQL expression under the current session
	// settings, as pgoutput would send it. (A cast to text is not always that: bool::text is
	// "true", char(n)::text drops the padding.)
	value := func(t *testing.T, expr string) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT format('%s', `+expr+`)`).Scan(&s); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	resolveExpr := func(t *testing.T, expr string) *typeInfo {
		t.Helper()
		var oid uint32
		if err := conn.QueryRow(ctx, `SELECT pg_typeof(`+expr+`)::oid`).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		ti, err := cat.resolve(ctx, oid, -1)
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}
	decode := func(t *testing.T, expr string) change.Value {
		t.Helper()
		text := value(t, expr)
		v, err := decodeText(resolveExpr(t, expr), []byte(text))
		if err != nil {
			t.Fatalf("%s = %q: %v", expr, text, err)
		}
		return v
	}

	t.Run("temporal", func(t *testing.T) {
		exprs := []string{
			"timestamptz '2024-01-02 03:04:05.123456+00'", "timestamptz '1970-01-01 00:00:00+00'",
			"timestamptz '0001-01-01 00:00:00+00'", "timestamptz '9999-12-31 23:59:59.999999+00'",
			"timestamptz '1850-06-01 12:00:00+00'", "timestamptz '1900-01-01 00:00:00+00'",
			"timestamptz '0044-03-15 12:00:00+00 BC'", "timestamptz '4714-11-24 00:00:00+00 BC'",
			"timestamptz '2024-03-31 01:30:00+00'", "timestamptz '2024-10-27 00:30:00+00'",
			"timestamptz '1969-12-31 23:59:59.999999+00'",
			"timestamp '2024-01-02 03:04:05.123456'", "timestamp '0001-01-01 00:00:00'",
			"timestamp '9999-12-31 23:59:59.999999'", "timestamp '0001-12-31 23:00:00 BC'",
			"timestamp '100000-01-01 00:00:00'", "timestamp '294247-01-10 04:00:54.775806'",
			"timestamptz '294247-01-10 04:00:54.775806+00'", "timestamp '4713-01-01 00:00:00 BC'",
			"time '00:00:00'", "time '24:00:00'", "time '13:14:15.000001'",
		}
		for _, tzName := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "Pacific/Chatham", "America/Sao_Paulo", "Africa/Monrovia"} {
			exec(`SET TimeZone = '` + tzName + `'`)
			for _, e := range exprs {
				var want int64
				if err := conn.QueryRow(ctx, `SELECT (extract(epoch FROM `+e+`) * 1000000)::int8`).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if got := decode(t, e); got.Int != want {
					t.Errorf("%s: %s = %q decodes to %d; want %d", tzName, e, value(t, e), got.Int, want)
				}
			}
		}
		exec(`SET TimeZone = 'UTC'`)
		for _, e := range []string{"timestamp '294247-01-10 04:00:54.775807'", "timestamp '294276-12-31 23:59:59.999999'",
			"timestamptz '294276-12-31 23:59:59.999999+00'", "timestamptz '294247-01-10 04:00:54.775807+00'"} {
			text := value(t, e)
			if v, err := decodeText(resolveExpr(t, e), []byte(text)); !errors.Is(err, errNotRepresentable) {
				t.Errorf("%s = %q decodes to %+v, %v; want a not-representable error", e, text, v, err)
			}
		}
		for _, e := range []string{"date '1970-01-01'", "date '0001-01-01'", "date '9999-12-31'", "date '0044-03-15 BC'",
			"date '0001-02-29 BC'", "date '4713-01-01 BC'", "date '5874897-12-31'", "date '2000-02-29'"} {
			var want int64
			if err := conn.QueryRow(ctx, `SELECT (`+e+` - date '1970-01-01')::int8`).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if got := decode(t, e); got.Int != want {
				t.Errorf("%s decodes to %d; want %d", e, got.Int, want)
			}
		}
		for e, want := range map[string]int64{
			"date 'infinity'": change.DateInfinity, "date '-infinity'": change.DateNegInfinity,
			"timestamp 'infinity'": change.TimestampInfinity, "timestamptz '-infinity'": change.TimestampNegInfinity,
		} {
			if got := decode(t, e); got.Int != want {
				t.Errorf("%s decodes to %d", e, got.Int)
			}
		}
		for e, want := range map[string]string{
			"timetz '10:11:12.5+02'": "10:11:12.5+02:00", "timetz '10:11:12-05:30'": "10:11:12-05:30",
			"timetz '12:00:00+01:02:03'": "12:00:00+01:02:03", "timetz '24:00:00+00'": "24:00:00+00:00",
		} {
			if got := decode(t, e); got.Str != want {
				t.Errorf("%s decodes to %q; want %q", e, got.Str, want)
			}
		}
	})

	t.Run("intervals", func(t *testing.T) {
		// What connectReplication sets passes through verbatim; other styles are refused.
		for _, lit := range []string{"1 year 2 mons 3 days 04:05:06.5", "-1 year -2 mons +3 days -04:05:06.5", "0",
			"-1 sec", "100 hours", "1 mon -1 day", "-0.5 sec", "3 days", "1 year", "-2 days +3 hours",
			"2562047788 hours 54.775807 secs", "178956970 years 7 mons 2147483647 days 2562047788:00:54.775807",
			"-178956970 years -7 mons -2147483647 days -2562047788:00:54.775807",
			"1 microsecond", "-1 microsecond", "5 minutes", "-5 minutes 3 seconds", "1 day -00:00:01", "12 mons",
			"-1 year 1 mon", "1.5 days", "-0.000001 sec", "2 weeks"} {
			expr := "interval '" + lit + "'"
			exec(`SET IntervalStyle = iso_8601`)
			if iso, got := value(t, expr), decode(t, expr); got.Str != iso {
				t.Errorf("%s (%q) decodes to %q", lit, iso, got.Str)
			}
		}
		for _, style := range []string{"postgres", "postgres_verbose", "sql_standard"} {
			exec(`SET IntervalStyle = ` + style)
			text := value(t, "interval '1 year 2 mons 3 days 04:05:06'")
			if _, err := decodeText(mustBuiltin(t, 1186, -1), []byte(text)); !errors.Is(err, errMalformedValue) || !strings.Contains(err.Error(), "IntervalStyle=iso_8601") {
				t.Errorf("%s %q: %v; want a malformed-value error naming IntervalStyle", style, text, err)
			}
		}
		exec(`SET IntervalStyle = iso_8601`)
	})

	t.Run("floats", func(t *testing.T) {
		for _, lit := range []string{"0.1", "1e-05", "3.4028235e38", "1.17549435e-38", "1e-45", "-0", "NaN", "Infinity", "-Infinity", "123456.789", "2.5e+20"} {
			var f4 float32
			var f8 float64
			if err := conn.QueryRow(ctx, `SELECT '`+lit+`'::float4, '`+lit+`'::float8`).Scan(&f4, &f8); err != nil {
				t.Fatal(err)
			}
			g4, g8 := decode(t, "'"+lit+"'::float4"), decode(t, "'"+lit+"'::float8")
			if math.Float64bits(g4.Float) != math.Float64bits(float64(f4)) && !(math.IsNaN(g4.Float) && math.IsNaN(float64(f4))) {
				t.Errorf("float4 %s: %v; want %v", lit, g4.Float, f4)
			}
			if math.Float64bits(g8.Float) != math.Float64bits(f8) && !(math.IsNaN(g8.Float) && math.IsNaN(f8)) {
				t.Errorf("float8 %s: %v; want %v", lit, g8.Float, f8)
			}
		}
	})

	t.Run("bytea", func(t *testing.T) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		for _, style := range []string{"hex", "escape"} {
			exec(`SET bytea_output = ` + style)
			for _, b := range [][]byte{all, {}, []byte(`\x00`), []byte("plain text")} {
				var text string
				if err := conn.QueryRow(ctx, `SELECT $1::bytea::text`, b).Scan(&text); err != nil {
					t.Fatal(err)
				}
				got, err := decodeText(mustBuiltin(t, 17, -1), []byte(text))
				if err != nil || !bytes.Equal(got.Bytes, b) {
					t.Errorf("%s %q: %v %v", style, text, got.Bytes, err)
				}
			}
		}
		exec(`SET bytea_output = hex`)
	})

	t.Run("values", func(t *testing.T) {
		for expr, want := range map[string]string{
			"'happy'::mood": "happy", "12.5::price": "12.50", "12.5::price2": "12.50", "'NaN'::numeric": "NaN",
			"'Infinity'::numeric": "Infinity", "'-Infinity'::numeric": "-Infinity", "12345::numeric(5,-2)": "12300",
			"'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			`'{"b": 1, "a": [1, 2.50]}'::jsonb`:            `{"a": [1, 2.50], "b": 1}`, `'{"b": 1,  "a": 2}'::json`: `{"b": 1,  "a": 2}`,
			"'ab'::char(4)": "ab  ", "'héllo ✓'::text": "héllo ✓", "''::text": "", "'192.168.0.1/24'::inet": "192.168.0.1/24",
			"'[1,5)'::int4range": "[1,5)", "'a fat cat'::tsvector": "'a' 'cat' 'fat'", "B'101'::bit(3)": "101",
			"4294967295::oid::text": "4294967295",
		} {
			if got := decode(t, expr); got.Str != want {
				t.Errorf("%s decodes to %q; want %q", expr, got.Str, want)
			}
		}
		if got, f := decode(t, "true"), decode(t, "false"); got.Int != 1 || f.Int != 0 {
			t.Errorf("bool decodes to %d, %d", got.Int, f.Int)
		}
		if got := decode(t, "'-9223372036854775808'::int8"); got.Int != math.MinInt64 {
			t.Errorf("int8 min decodes to %d", got.Int)
		}
		if got := decode(t, "4294967295::oid"); got.Int != 4294967295 {
			t.Errorf("oid decodes to %d", got.Int)
		}
		huge := strings.Repeat("é\"\\,{} x", 1<<17)
		var text string
		if err := conn.QueryRow(ctx, `SELECT ARRAY[$1::text, NULL]::text`, huge).Scan(&text); err != nil {
			t.Fatal(err)
		}
		got, err := decodeText(mustBuiltin(t, 1009, -1), []byte(text))
		if err != nil || len(got.Arr) != 2 || got.Arr[0].Str != huge || !got.Arr[1].IsNull() {
			t.Errorf("huge text array: %v", err)
		}
	})

	t.Run("arrays", func(t *testing.T) {
		for _, expr := range []string{
			`ARRAY['a', NULL, 'NULL', 'null', 'c,d', 'e"f', 'g\h', '', ' sp ', 'é{}', E'tab\there', 'x;y']::text[]`,
			`ARRAY['sad', NULL, 'with space', 'NULL']::mood[]`,
			`ARRAY['{"a": "b"}', NULL, '"s"', '1.50']::jsonb[]`,
			`ARRAY[1.5, NULL]::numeric[]`,
			`'{}'::text[]`,
		} {
			isJSON := strings.Contains(expr, "json")
			var js string
			if err := conn.QueryRow(ctx, `SELECT coalesce(array_to_json(`+expr+`), '[]')::text`).Scan(&js); err != nil {
				t.Fatal(err)
			}
			var want []any
			if err := json.Unmarshal([]byte(js), &want); err != nil {
				t.Fatal(err)
			}
			got := decode(t, expr)
			if len(got.Arr) != len(want) {
				t.Fatalf("%s: %d elements; want %d", expr, len(got.Arr), len(want))
			}
			for i, w := range want {
				g := got.Arr[i]
				switch {
				case w == nil:
					if !g.IsNull() {
						t.Errorf("%s[%d] = %+v; want NULL", expr, i, g)
					}
				case !isJSON:
					if g.Str != fmt.Sprint(w) {
						t.Errorf("%s[%d] = %q; want %v", expr, i, g.Str, w)
					}
				default: // compare JSON values
					wj, _ := json.Marshal(w)
					var gj any
					if err := json.Unmarshal([]byte(g.Str), &gj); err != nil {
						t.Fatalf("%s[%d] = %q: %v", expr, i, g.Str, err)
					}
					if gb, _ := json.Marshal(gj); !bytes.Equal(gb, wj) {
						t.Errorf("%s[%d] = %s; want %s", expr, i, gb, wj)
					}
				}
			}
		}
		ts := decode(t, `ARRAY[timestamptz '2024-01-01 00:00:00+00', NULL, 'infinity']`)
		if !slices.EqualFunc(ts.Arr, []change.Value{ival(micros(2024, 1, 1, 0, 0, 0, 0, time.UTC)), change.NullValue, ival(change.TimestampInfinity)}, equalValue) {
			t.Errorf("timestamptz[]: %+v", ts.Arr)
		}
		bx := decode(t, `ARRAY[box '((1,1),(0,0))', box '((2,2),(1,1))']`)
		if len(bx.Arr) != 2 || bx.Arr[0].Str != "(1,1),(0,0)" {
			t.Errorf("box[]: %+v", bx.Arr)
		}
		// Values an Avro array cannot hold unchanged: refused, never renumbered or flattened.
		for _, expr := range []string{`'[0:2]={1,2,3}'::int[]`, `'[5:5]={"a b"}'::text[]`, `'{{1,2},{3,4}}'::int[]`,
			`array_fill(7, ARRAY[2,2], ARRAY[0,5])`, `'{{{1}},{{2}}}'::int[]`} {
			text := value(t, expr)
			_, err := decodeColumn("c", resolveExpr(t, expr), []byte(text))
			if !errors.Is(err, errNotRepresentable) || !strings.Contains(err.Error(), `column "c"`) {
				t.Errorf("%s = %q: %v; want a not-representable error naming the column", expr, text, err)
			}
		}
		if got := decode(t, `('[0:2]={1,2,3}'::int[])[:]`); !slices.EqualFunc(got.Arr, []change.Value{ival(1), ival(2), ival(3)}, equalValue) {
			t.Errorf("the suggested fix col[:] does not give lower bound 1: %+v", got.Arr)
		}
	})
}

// TestNotRepresentableSurvivesDecodeError: the stream wraps a value's decode error in a
// DecodeError (whose Undecodable says undecodable_value); the dead-letter classification must
// still find NotRepresentable behind it to say value_not_representable.
func TestNotRepresentableSurvivesDecodeError(t *testing.T) {
	var class interface{ NotRepresentable() bool }
	for _, tc := range []struct {
		oid  uint32
		text string
		want bool
	}{
		{1114, "294276-12-31 23:59:59.999999", true},
		{1007, "[0:2]={7,8,9}", true},
		{1007, "{{1,2},{3,4}}", true},
		{1007, "{1,x}", false},
		{1114, "2024-01-02T03:04:05", false},
	} {
		_, err := decodeColumn("c", mustBuiltin(t, tc.oid, -1), []byte(tc.text))
		if err == nil {
			t.Fatalf("%q decodes", tc.text)
		}
		wrapped := error(&DecodeError{Table: "public.t", Err: err})
		if got := errors.As(wrapped, &class) && class.NotRepresentable(); got != tc.want {
			t.Errorf("%q: NotRepresentable found %v; want %v (%v)", tc.text, got, tc.want, wrapped)
		}
	}
}

// TestReplicationSessionSettings checks, on a real server, that the replication connection
// runs output functions under the settings decodeText relies on (see types.go): another
// DateStyle or IntervalStyle makes values malformed, and another TimeZone changes the text of
// tstzrange values carried as strings. It runs only when CDCD_TEST_PG_DSN is set.
func TestReplicationSessionSettings(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("CDCD_TEST_PG_DSN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connectReplication(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for setting, want := range map[string]string{"DateStyle": "ISO, YMD", "IntervalStyle": "iso_8601", "TimeZone": "UTC", "extra_float_digits": "3"} {
		res, err := conn.Exec(ctx, "SHOW "+setting).ReadAll()
		if err != nil {
			t.Fatalf("SHOW %s: %v", setting, err)
		}
		if len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != want {
			t.Errorf("%s on the replication connection: %v; decodeText needs %q", setting, res, want)
		}
	}
}
