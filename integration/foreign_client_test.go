package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The foreign-client test reads cdcd's records with a client no one here wrote: Python's
// confluent-kafka with its schema-registry AvroDeserializer (fastavro underneath), as a
// Debezium user's consumer does, in the pipeline modes such consumers use
// (time_precision: adaptive, decimal_handling: precise). Every value of the type torture
// table below, each type's edge values included, must decode and equal what PostgreSQL
// returns for it.

const foreignClientDir = "testdata/foreign_client"

// pythonClient returns the python of a virtualenv under ~/.cache holding the pinned
// requirements, installing them from the package index on first use (CI starts on a fresh
// machine). A failed install fails the test: it never skips.
func pythonClient(t *testing.T, ctx context.Context) string {
	t.Helper()
	req, err := os.ReadFile(filepath.Join(foreignClientDir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the Python client's virtualenv: %v", err)
	}
	sum := sha256.Sum256(req)
	dir := filepath.Join(cache, "cdcd-test", "pyclient-"+hex.EncodeToString(sum[:6]))
	py := filepath.Join(dir, "bin", "python")
	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return py
	}
	python3, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the foreign-client test (install python3 and python3-venv): %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("installing the Python client failed: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	start := time.Now()
	run(python3, "-m", "venv", dir)
	run(py, "-m", "pip", "install", "--quiet", "-r", filepath.Join(foreignClientDir, "requirements.txt"))
	if err := os.WriteFile(done, req, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("installed the Python client in %s (%v)", dir, time.Since(start).Round(time.Second))
	return py
}

// tortureCol is a column of the torture table: its values (SQL literals, row by row; rows
// past the list are NULL), the SQL expression (%[1]s is the column) of the canonical text
// the Python client must print, and how to compare the two.
type tortureCol struct {
	name, typ string
	values    []string
	expect    string
	cmp       string // text, float4, float8, decimal, vsd, timetz, array, arrayvsd
}

const (
	exText   = "%[1]s::text"
	exMicros = "CASE WHEN %[1]s = 'infinity' THEN '9223372036854775807' WHEN %[1]s = '-infinity' THEN '-9223372036854775808' ELSE (extract(epoch from %[1]s) * %[2]s)::bigint::text END"
	exArray  = "CASE WHEN %[1]s IS NULL THEN NULL ELSE coalesce((SELECT json_agg(e::text ORDER BY o) FROM unnest(%[1]s) WITH ORDINALITY u(e, o)), '[]') END"
)

var tortureCols = []tortureCol{
	{"b", "bool", []string{"true", "false", "true", "false"}, exText, "text"},
	{"i2", "int2", []string{"-32768", "32767", "0", "1"}, exText, "text"},
	{"i4", "int4", []string{"-2147483648", "2147483647", "0", "-1"}, exText, "text"},
	{"i8", "int8", []string{"-9223372036854775808", "9223372036854775807", "0", "42"}, exText, "text"},
	{"f4", "float4", []string{"'NaN'", "'Infinity'", "'-Infinity'", "'-3.4028235e38'", "'1.4e-45'"}, exText, "float4"},
	{"f8", "float8", []string{"'NaN'", "'Infinity'", "'-Infinity'", "'1.7976931348623157e308'", "'5e-324'"}, exText, "float8"},
	{"n", "numeric(10,2)", []string{"-99999999.99", "99999999.99", "0", "0.01"}, exText, "decimal"},
	{"nu", "numeric", []string{"0", "'-123456789012345678901234567890.123456789012345678901234567890'", "1e-300", "1e300", "0.000"}, exText, "vsd"},
	{"t", "text", []string{"''", "'héllo ✓ 世界'", "'__debezium_unavailable_value'", "repeat('x', 5000)"}, "%[1]s", "text"},
	{"by", "bytea", []string{`'\x'`, `'\x00ff'`, `'\x80'`}, "encode(%[1]s, 'hex')", "text"},
	{"d", "date", []string{"'infinity'", "'-infinity'", "'4713-01-01 BC'", "'5874897-12-31'", "'0001-01-01'", "'1970-01-01'"},
		"CASE WHEN %[1]s = 'infinity' THEN '2147483647' WHEN %[1]s = '-infinity' THEN '-2147483648' ELSE (%[1]s - date '1970-01-01')::text END", "text"},
	{"tm", "time", []string{"'24:00:00'", "'00:00:00'", "'23:59:59.999999'", "'12:34:56.000001'"}, "(extract(epoch from %[1]s) * 1000000)::bigint::text", "text"},
	{"tm3", "time(3)", []string{"'24:00:00'", "'00:00:00'", "'23:59:59.999'"}, "(extract(epoch from %[1]s) * 1000)::bigint::text", "text"},
	{"ttz", "timetz", []string{"'24:00:00+00'", "'00:00:00-15:59'", "'10:11:12.5+02'", "'23:59:59.999999+15:59'"}, exText, "timetz"},
	{"ts", "timestamp", []string{"'infinity'", "'-infinity'", "'4713-01-01 00:00:00 BC'", "'294247-01-01 00:00:00'", "'1969-12-31 23:59:59.999999'", "'9999-12-31 23:59:59.999999'"},
		"", "text"},
	{"ts3", "timestamp(3)", []string{"'infinity'", "'-infinity'", "'0001-01-01 00:00:00'", "'1969-12-31 23:59:59.999'"}, "", "text"},
	{"tstz", "timestamptz", []string{"'infinity'", "'-infinity'", "'4713-01-01 00:00:00+00 BC'", "'294247-01-01 00:00:00+00'", "'1969-12-31 23:59:59.999999+00'", "'2024-05-06 09:08:09.123456+02'"},
		`CASE WHEN NOT isfinite(%[1]s) THEN %[1]s::text ELSE (SELECT CASE WHEN y > 9999 THEN '+' || y::text WHEN y < 0 THEN '-' || lpad((-y)::text, 4, '0') ELSE lpad(y::text, 4, '0') END || to_char(x, '"-"MM"-"DD"T"HH24:MI:SS.US"Z"')
		 FROM (SELECT x, CASE WHEN extract(year FROM x) < 0 THEN extract(year FROM x)::int + 1 ELSE extract(year FROM x)::int END AS y FROM (SELECT %[1]s AT TIME ZONE 'UTC' AS x) a) b) END`, "text"},
	{"iv", "interval", []string{"'290000 years'", "'-290000 years'", "'-1 days -00:00:00.000001'", "'1 year 2 mons 3 days 04:05:06.5'", "'0'", "'-13 mons 1 day'"},
		"((extract(year from %[1]s) * 12 + extract(month from %[1]s)) * 2629800000000 + extract(day from %[1]s) * 86400000000 + (extract(epoch from %[1]s) - (extract(year from %[1]s) * 365.25 + extract(month from %[1]s) * 30 + extract(day from %[1]s)) * 86400) * 1000000)::bigint::text", "text"},
	{"u", "uuid", []string{"'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"}, exText, "text"},
	{"j", "json", []string{`'null'`, `'{"a": [1, 2], "b": "\u00e9"}'`, `'[]'`}, exText, "text"},
	{"jb", "jsonb", []string{`'{"b": null}'`, `'"x"'`, `'1e400'`}, exText, "text"},
	{"m", "mood", []string{"'sad'", "'happy'"}, exText, "text"},
	{"ip", "inet", []string{"'192.168.0.1/24'", "'::1'"}, "CASE WHEN %[1]s IS NOT NULL THEN format('%%s', %[1]s) END", "text"},
	{"ai", "int4[]", []string{"'{1,NULL,3}'", "'{}'", "'{-2147483648,2147483647}'"}, exArray, "array"},
	{"at", "text[]", []string{`'{"a,b",NULL,"",x}'`, "'{}'"}, exArray, "array"},
	{"an", "numeric[]", []string{"'{1.5,NULL,-0.25}'", "'{0}'"}, exArray, "arrayvsd"},
}

const tortureRows = 7 // the longest value list is 6: the last row is all NULL

func tortureDDL() string {
	var b strings.Builder
	b.WriteString("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\nCREATE TABLE torture (id int PRIMARY KEY")
	for _, c := range tortureCols {
		fmt.Fprintf(&b, ", %s %s", c.name, c.typ)
	}
	b.WriteString(");\n")
	return b.String()
}

func tortureInserts() string {
	var b strings.Builder
	for row := 1; row <= tortureRows; row++ {
		fmt.Fprintf(&b, "INSERT INTO torture VALUES (%d", row)
		for _, c := range tortureCols {
			v := "NULL"
			if row <= len(c.values) {
				v = c.values[row-1]
			}
			fmt.Fprintf(&b, ", %s", v)
		}
		b.WriteString(");\n")
	}
	return b.String()
}

func TestForeignClientDecodesTypeTorture(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_foreign", tortureDDL())
	py := pythonClient(t, ctx)
	name := uniqueName("foreign")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.torture"},
		"    time_precision: adaptive\n    decimal_handling: precise\n"))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, tortureInserts()); err != nil {
		t.Fatalf("filling the torture table: %v", err)
	}

	// What PostgreSQL returns, in the client's canonical text.
	var sel strings.Builder
	sel.WriteString("SELECT id")
	for _, c := range tortureCols {
		expr := c.expect
		switch c.name {
		case "ts":
			expr = fmt.Sprintf(exMicros, c.name, "1000000")
		case "ts3":
			expr = fmt.Sprintf(exMicros, c.name, "1000")
		default:
			expr = fmt.Sprintf(expr, c.name)
		}
		fmt.Fprintf(&sel, ", (%s)::text", expr)
	}
	sel.WriteString(" FROM torture ORDER BY id")
	want := map[string][]*string{}
	rows, err := db.Query(ctx, sel.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, sel.String())
	}
	for rows.Next() {
		vals := make([]*string, len(tortureCols))
		dst := []any{new(int)}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		want[strconv.Itoa(*dst[0].(*int))] = vals
	}
	if rows.Err() != nil || len(want) != tortureRows {
		t.Fatalf("reading the table back: %v (%d rows)", rows.Err(), len(want))
	}

	recs := runForeignClient(t, ctx, py, s, name+".public.torture", tortureRows)
	seen := 0
	for _, rec := range recs {
		id, _ := rec.After["id"].(string)
		w, ok := want[id]
		if rec.Op != "c" || !ok {
			t.Errorf("unexpected record op %s id %q", rec.Op, id)
			continue
		}
		seen++
		if len(rec.After) != len(tortureCols)+1 {
			t.Errorf("row %s: the client decoded %d columns, want %d", id, len(rec.After), len(tortureCols)+1)
		}
		for i, c := range tortureCols {
			if msg := compareForeign(c.cmp, rec.After[c.name], w[i]); msg != "" {
				t.Errorf("row %s column %s (%s): %s", id, c.name, c.typ, msg)
			}
		}
	}
	if seen != tortureRows {
		t.Fatalf("the client printed %d rows, want %d", seen, tortureRows)
	}
}

// foreignRecord is a record as the Python client printed it.
type foreignRecord struct {
	Op    string
	After map[string]any
}

// runForeignClient reads n records of topic with the Python client.
func runForeignClient(t *testing.T, ctx context.Context, py string, s stack, topic string, n int) []foreignRecord {
	t.Helper()
	cmd := exec.CommandContext(ctx, py, filepath.Join(foreignClientDir, "consume.py"), s.kafka[0], s.registry,
		topic, strconv.Itoa(n), "120")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the Python client failed: %v\n%s\n%s", err, out, stderr.String())
	}
	var recs []foreignRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec foreignRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("client output %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// compareForeign compares a value as the Python client printed it with PostgreSQL's
// canonical text (nil for NULL), and says how they differ ("" when they are equal).
func compareForeign(cmp string, got any, want *string) string {
	if want == nil || got == nil {
		if want == nil && got == nil {
			return ""
		}
		return fmt.Sprintf("got %#v, want %v", got, deref(want))
	}
	w := *want
	switch cmp {
	case "array", "arrayvsd":
		var wa []*string
		ga, ok := got.([]any)
		if err := json.Unmarshal([]byte(w), &wa); err != nil || !ok || len(ga) != len(wa) {
			return fmt.Sprintf("got %#v, want %s", got, w)
		}
		elem := "text"
		if cmp == "arrayvsd" {
			elem = "vsd"
		}
		for i := range wa {
			if msg := compareForeign(elem, ga[i], wa[i]); msg != "" {
				return fmt.Sprintf("element %d: %s", i, msg)
			}
		}
		return ""
	}
	g, ok := got.(string)
	if !ok {
		return fmt.Sprintf("got %#v, want %s", got, w)
	}
	switch cmp {
	case "float4", "float8":
		bits := 64
		if cmp == "float4" {
			bits = 32
		}
		wf, err1 := strconv.ParseFloat(w, bits)
		gf, err2 := strconv.ParseFloat(g, 64)
		if err1 != nil || err2 != nil || !(wf == gf || math.IsNaN(wf) && math.IsNaN(gf)) {
			return fmt.Sprintf("got %s, want %s", g, w)
		}
		return ""
	case "decimal":
		wr, ok1 := new(big.Rat).SetString(w)
		gr, ok2 := new(big.Rat).SetString(g)
		if !ok1 || !ok2 || wr.Cmp(gr) != 0 {
			return fmt.Sprintf("got %s, want %s", g, w)
		}
		return ""
	case "vsd": // "unscaled|scale", from PostgreSQL's text
		scale := 0
		if i := strings.IndexByte(w, '.'); i >= 0 {
			scale = len(w) - i - 1
		}
		u, ok := new(big.Int).SetString(strings.Replace(w, ".", "", 1), 10)
		if !ok || g != fmt.Sprintf("%s|%d", u, scale) {
			return fmt.Sprintf("got %s, want %s (%s|%d)", g, w, u, scale)
		}
		return ""
	case "timetz": // cdcd writes the offset as +HH:MM
		if i := strings.LastIndexAny(w, "+-"); i >= 0 && !strings.Contains(w[i:], ":") {
			w += ":00"
		}
	}
	if g != w {
		return fmt.Sprintf("got %q, want %q", excerptStr(g), excerptStr(w))
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

func excerptStr(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
