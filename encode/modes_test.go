package encode

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the type tables of docs/record-format.md from the encoder")

const recordFormatDoc = "../docs/record-format.md"

// typeRow is one row of a type table: a column of the source, and the decimal_handling mode
// the row shows (decimal rows only).
type typeRow struct {
	col     change.Column
	decimal string
}

var pgTypeRows = []typeRow{
	{col: change.Column{Kind: change.KindBool, SourceType: "boolean"}},
	{col: change.Column{Kind: change.KindInt16, SourceType: "smallint"}},
	{col: change.Column{Kind: change.KindInt32, SourceType: "integer"}},
	{col: change.Column{Kind: change.KindInt64, SourceType: "bigint"}},
	{col: change.Column{Kind: change.KindUint64, SourceType: "xid8"}},
	{col: change.Column{Kind: change.KindFloat32, SourceType: "real"}},
	{col: change.Column{Kind: change.KindFloat64, SourceType: "double precision"}},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}, decimal: ModeAvro},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}, decimal: DecimalPrecise},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}, decimal: DecimalDouble},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}, decimal: DecimalString},
	{col: change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, decimal: ModeAvro},
	{col: change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, decimal: DecimalPrecise},
	{col: change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, decimal: DecimalDouble},
	{col: change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, decimal: DecimalString},
	{col: change.Column{Kind: change.KindString, SourceType: "text"}},
	{col: change.Column{Kind: change.KindEnum, SourceType: "mood (an enum)"}},
	{col: change.Column{Kind: change.KindUUID, SourceType: "uuid"}},
	{col: change.Column{Kind: change.KindJSON, SourceType: "jsonb"}},
	{col: change.Column{Kind: change.KindBytes, SourceType: "bytea"}},
	{col: change.Column{Kind: change.KindDate, SourceType: "date"}},
	{col: change.Column{Kind: change.KindTime, SourceType: "time(3) without time zone"}},
	{col: change.Column{Kind: change.KindTime, SourceType: "time without time zone"}},
	{col: change.Column{Kind: change.KindTimeTZ, SourceType: "time with time zone"}},
	{col: change.Column{Kind: change.KindTimestamp, SourceType: "timestamp(3) without time zone"}},
	{col: change.Column{Kind: change.KindTimestamp, SourceType: "timestamp without time zone"}},
	{col: change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamp with time zone"}},
	{col: change.Column{Kind: change.KindInterval, SourceType: "interval"}},
	{col: change.Column{Kind: change.KindArray, Elem: change.KindTimestamp, SourceType: "timestamp without time zone[]"}},
}

var mysqlTypeRows = []typeRow{
	{col: change.Column{Kind: change.KindBool, SourceType: "bit(1)"}},
	{col: change.Column{Kind: change.KindInt16, SourceType: "tinyint"}},
	{col: change.Column{Kind: change.KindInt32, SourceType: "int"}},
	{col: change.Column{Kind: change.KindInt64, SourceType: "bigint"}},
	{col: change.Column{Kind: change.KindUint64, SourceType: "bigint unsigned"}},
	{col: change.Column{Kind: change.KindFloat32, SourceType: "float"}},
	{col: change.Column{Kind: change.KindFloat64, SourceType: "double"}},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "decimal(10,2)"}, decimal: ModeAvro},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "decimal(10,2)"}, decimal: DecimalPrecise},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "decimal(10,2)"}, decimal: DecimalDouble},
	{col: change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "decimal(10,2)"}, decimal: DecimalString},
	{col: change.Column{Kind: change.KindString, SourceType: "varchar"}},
	{col: change.Column{Kind: change.KindEnum, SourceType: "enum"}},
	{col: change.Column{Kind: change.KindString, SourceType: "set"}},
	{col: change.Column{Kind: change.KindJSON, SourceType: "json"}},
	{col: change.Column{Kind: change.KindBytes, SourceType: "varbinary"}},
	{col: change.Column{Kind: change.KindInt32, SourceType: "year"}},
	{col: change.Column{Kind: change.KindDate, SourceType: "date"}},
	{col: change.Column{Kind: change.KindDuration, SourceType: "time"}},
	{col: change.Column{Kind: change.KindDuration, SourceType: "time(6)"}},
	{col: change.Column{Kind: change.KindTimestamp, SourceType: "datetime"}},
	{col: change.Column{Kind: change.KindTimestamp, SourceType: "datetime(6)"}},
	{col: change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamp(3)"}},
}

var timeModes = []string{ModeAvro, TimeAdaptive, TimeAdaptiveMicroseconds, TimeConnect}

// typeTable renders the type table of a source from the schemas the encoder builds: for each
// row, the Avro type of its column under each time_precision mode.
func typeTable(t *testing.T, connector string, rows []typeRow) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("| Type | `decimal_handling` |")
	for _, m := range timeModes {
		if m == ModeAvro {
			m += "` (default)"
		} else {
			m += "`"
		}
		fmt.Fprintf(&b, " `%s |", m)
	}
	b.WriteString("\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		dec := "any"
		if r.decimal != "" {
			dec = "`" + r.decimal + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s |", r.col.SourceType, dec)
		for _, m := range timeModes {
			fmt.Fprintf(&b, " %s |", typeCell(t, columnSchema(t, connector, r, m)))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// columnSchema returns the Avro type (without the null union) the encoder writes for the
// row's column under time mode tm.
func columnSchema(t *testing.T, connector string, r typeRow, tm string) any {
	t.Helper()
	col := r.col
	col.Name = "c"
	tbl := &change.Table{Schema: "s", Name: "t", Columns: []change.Column{col}}
	e, err := New(Config{Pipeline: "p", Connector: connector, TimePrecision: tm, DecimalHandling: r.decimal}, newFakeRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, value, err := e.Schemas(tbl)
	if err != nil {
		t.Fatalf("%s: %v", col.SourceType, err)
	}
	parseSchema(t, value)
	var env struct {
		Fields []struct {
			Name string
			Type json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(value), &env); err != nil {
		t.Fatal(err)
	}
	var union []json.RawMessage
	if err := json.Unmarshal(env.Fields[0].Type, &union); err != nil || len(union) != 2 {
		t.Fatalf("before: %s", env.Fields[0].Type)
	}
	var rec struct {
		Fields []struct {
			Type any
		}
	}
	if err := json.Unmarshal(union[1], &rec); err != nil {
		t.Fatal(err)
	}
	typ := rec.Fields[0].Type
	if u, ok := typ.([]any); ok { // ["null", T]
		typ = u[1]
	}
	return typ
}

// typeCell describes an Avro type in a table cell: the Avro type, then its logical type and
// its Kafka Connect name.
func typeCell(t *testing.T, typ any) string {
	switch v := typ.(type) {
	case string:
		return "`" + v + "`"
	case map[string]any:
		base, _ := v["type"].(string)
		if base == "array" {
			items := v["items"].([]any)
			return "`array` of " + typeCell(t, items[1])
		}
		parts := []string{"`" + base + "`"}
		if lt, ok := v["logicalType"].(string); ok {
			if lt == "decimal" {
				lt = fmt.Sprintf("decimal(%v,%v)", v["precision"], v["scale"])
			}
			parts = append(parts, lt)
		}
		if cn, ok := v["connect.name"].(string); ok {
			parts = append(parts, cn)
		}
		return strings.Join(parts, " ")
	}
	t.Fatalf("unexpected type %T %v", typ, typ)
	return ""
}

// TestTypeTables checks the type tables of docs/record-format.md against the schemas the
// encoder writes, per source and mode (go test -run TestTypeTables -update-docs rewrites them).
func TestTypeTables(t *testing.T) {
	doc, err := os.ReadFile(recordFormatDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, src := range []struct {
		connector string
		rows      []typeRow
	}{{"postgresql", pgTypeRows}, {"mysql", mysqlTypeRows}} {
		begin := "<!-- type table: " + src.connector + " (generated by encode's TestTypeTables) -->\n"
		const end = "<!-- end of type table -->"
		i := strings.Index(text, begin)
		if i < 0 {
			t.Fatalf("%s has no %q", recordFormatDoc, begin)
		}
		j := strings.Index(text[i:], end)
		if j < 0 {
			t.Fatalf("%s: the %s type table has no end marker", recordFormatDoc, src.connector)
		}
		want := typeTable(t, src.connector, src.rows)
		if got := text[i+len(begin) : i+j]; got != want {
			if *updateDocs {
				text = text[:i+len(begin)] + want + text[i+j:]
				continue
			}
			t.Errorf("the %s type table of %s is not what the encoder writes; run go test ./encode -run TestTypeTables -update-docs\ngot:\n%s\nwant:\n%s", src.connector, recordFormatDoc, got, want)
		}
	}
	if *updateDocs {
		if err := os.WriteFile(recordFormatDoc, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// modeCase is one value encoded under a mode and what a reader decodes from it.
type modeCase struct {
	name      string
	connector string
	time, dec string
	col       change.Column
	in        change.Value
	want      any // decoded by hamba/avro
}

func TestTypeModeValues(t *testing.T) {
	const day = 86400 * 1000000
	ts := int64(1714979289123456) // 2024-05-06T07:08:09.123456Z
	big1 := func(s string) *big.Rat { r, _ := new(big.Rat).SetString(s); return r }
	pgTime := change.Column{Kind: change.KindTime, SourceType: "time without time zone"}
	pgTime3 := change.Column{Kind: change.KindTime, SourceType: "time(3) without time zone"}
	pgTS := change.Column{Kind: change.KindTimestamp, SourceType: "timestamp without time zone"}
	pgTS3 := change.Column{Kind: change.KindTimestamp, SourceType: "timestamp(3) without time zone"}
	pgTSTZ := change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamp with time zone"}
	pgTSTZ0 := change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamp(0) with time zone"}
	pgDate := change.Column{Kind: change.KindDate, SourceType: "date"}
	num := change.Column{Kind: change.KindDecimal, SourceType: "numeric"}
	num102 := change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}
	interval := change.Column{Kind: change.KindInterval, SourceType: "interval"}
	myTime := change.Column{Kind: change.KindDuration, SourceType: "time(6)"}
	myDatetime := change.Column{Kind: change.KindTimestamp, SourceType: "datetime"}
	myTS := change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamp(3)"}
	pg, my := "postgresql", "mysql"
	cases := []modeCase{
		// time: 24:00:00 is a plain long in Debezium's modes, which every reader takes
		{"pg time 24:00 adaptive", pg, TimeAdaptive, "", pgTime, change.Value{Int: day}, int64(day)},
		{"pg time adaptive_time_microseconds", pg, TimeAdaptiveMicroseconds, "", pgTime3, change.Value{Int: 3723004000}, int64(3723004000)},
		{"pg time(3) adaptive is millis", pg, TimeAdaptive, "", pgTime3, change.Value{Int: 3723004000}, 3723004},
		{"pg time 24:00 connect", pg, TimeConnect, "", pgTime3, change.Value{Int: day}, 24 * time.Hour},
		{"pg time avro", pg, ModeAvro, "", pgTime, change.Value{Int: 3723004005}, 3723004005 * time.Microsecond},
		// timestamps
		{"pg timestamp adaptive", pg, TimeAdaptive, "", pgTS, change.Value{Int: ts}, ts},
		{"pg timestamp infinity adaptive", pg, TimeAdaptive, "", pgTS, change.Value{Int: math.MaxInt64}, int64(math.MaxInt64)},
		{"pg timestamp(3) adaptive", pg, TimeAdaptive, "", pgTS3, change.Value{Int: 1714979289123000}, int64(1714979289123)},
		{"pg timestamp(3) -infinity adaptive", pg, TimeAdaptive, "", pgTS3, change.Value{Int: math.MinInt64}, int64(math.MinInt64)},
		{"pg timestamp connect", pg, TimeConnect, "", pgTS, change.Value{Int: 1714979289123000}, time.UnixMilli(1714979289123).UTC()},
		{"pg timestamptz adaptive", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: ts}, "2024-05-06T07:08:09.123456Z"},
		{"pg timestamptz(0) connect", pg, TimeConnect, "", pgTSTZ0, change.Value{Int: 1714979289000000}, "2024-05-06T07:08:09Z"},
		{"pg timestamptz before 1970", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: -1}, "1969-12-31T23:59:59.999999Z"},
		{"pg timestamptz year 1", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: -62135596800000000}, "0001-01-01T00:00:00.000000Z"},
		{"pg timestamptz 4713 BC", pg, TimeAdaptive, "", pgTSTZ0, change.Value{Int: -210863520000000000}, "-4712-01-01T00:00:00Z"},
		{"pg timestamptz year 294247", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: 9223371244800000000}, "+294247-01-01T00:00:00.000000Z"},
		{"pg timestamptz infinity", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: math.MaxInt64}, "infinity"},
		{"pg timestamptz -infinity", pg, TimeAdaptive, "", pgTSTZ, change.Value{Int: math.MinInt64}, "-infinity"},
		{"pg date adaptive", pg, TimeAdaptive, "", pgDate, change.Value{Int: -719162}, -719162},
		{"pg date infinity adaptive", pg, TimeAdaptive, "", pgDate, change.Value{Int: math.MaxInt32}, math.MaxInt32},
		{"pg date connect", pg, TimeConnect, "", pgDate, change.Value{Int: 19849}, time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)},
		// intervals: Debezium's MicroDuration counts a month as 30.4375 days
		{"pg interval", pg, TimeAdaptive, "", interval, change.Value{Str: "P1Y2M3DT4H5M6.5S"}, int64(14*2629800+3*86400+4*3600+5*60+6)*1000000 + 500000},
		{"pg interval negative", pg, TimeAdaptive, "", interval, change.Value{Str: "P-1DT-0.000001S"}, -int64(86400*1000000 + 1)},
		{"pg interval leading minus", pg, TimeAdaptive, "", interval, change.Value{Str: "-P1W"}, -int64(7 * day)},
		{"pg interval zero", pg, TimeAdaptive, "", interval, change.Value{Str: "PT0S"}, int64(0)},
		// decimals
		{"numeric precise", pg, "", DecimalPrecise, num, change.Value{Str: "-12.3400"}, map[string]any{"scale": int32(4), "value": []byte{0xfe, 0x1d, 0xf8}}},
		{"numeric precise integer", pg, "", DecimalPrecise, num, change.Value{Str: "7"}, map[string]any{"scale": int32(0), "value": []byte{7}}},
		{"numeric precise zero", pg, "", DecimalPrecise, num, change.Value{Str: "0.000"}, map[string]any{"scale": int32(3), "value": []byte{0}}},
		{"numeric(10,2) precise", pg, "", DecimalPrecise, num102, change.Value{Str: "-12.34"}, big1("-12.34")},
		{"numeric double", pg, "", DecimalDouble, num, change.Value{Str: "-12.5"}, -12.5},
		{"numeric NaN double", pg, "", DecimalDouble, num, change.Value{Str: "NaN"}, math.NaN()},
		{"numeric Infinity double", pg, "", DecimalDouble, num, change.Value{Str: "-Infinity"}, math.Inf(-1)},
		{"numeric(10,2) double", pg, "", DecimalDouble, num102, change.Value{Str: "0.10"}, 0.1},
		{"numeric(10,2) string", pg, "", DecimalString, num102, change.Value{Str: "12.50"}, "12.50"},
		{"numeric NaN string", pg, "", DecimalString, num, change.Value{Str: "NaN"}, "NaN"},
		{"numeric avro", pg, "", ModeAvro, num, change.Value{Str: "1e-3"}, "1e-3"},
		// MySQL
		{"mysql time over 24h", my, TimeAdaptiveMicroseconds, "", myTime, change.Value{Int: -(838*3600 + 59*60 + 59) * 1000000}, -int64(838*3600+59*60+59) * 1000000},
		{"mysql time adaptive is micros", my, TimeAdaptive, "", myTime, change.Value{Int: 1000001}, int64(1000001)},
		{"mysql datetime", my, TimeAdaptiveMicroseconds, "", myDatetime, change.Value{Int: 1714979289000000}, int64(1714979289000)},
		{"mysql timestamp(3)", my, TimeAdaptiveMicroseconds, "", myTS, change.Value{Int: 1714979289120000}, "2024-05-06T07:08:09.120Z"},
		{"mysql year", my, TimeAdaptiveMicroseconds, "", change.Column{Kind: change.KindInt32, SourceType: "year"}, change.Value{Int: 2024}, 2024},
		{"mysql bigint unsigned precise", my, TimeAdaptiveMicroseconds, DecimalPrecise, change.Column{Kind: change.KindUint64, SourceType: "bigint unsigned"}, change.Value{Uint: math.MaxUint64}, big1("18446744073709551615")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := encodeOne(t, c)
			switch w := c.want.(type) {
			case float64:
				g, ok := got.(float64)
				if !ok || !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
					t.Fatalf("got %T %v, want %v", got, got, w)
				}
				return
			case *big.Rat:
				if g, ok := got.(*big.Rat); !ok || g.Cmp(w) != 0 {
					t.Fatalf("got %T %v, want %v", got, got, w)
				}
				return
			}
			if fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", c.want, c.want) {
				t.Fatalf("got %T %v, want %T %v", got, got, c.want, c.want)
			}
		})
	}
}

// encodeOne encodes a one-column row and returns the column's decoded after value.
func encodeOne(t *testing.T, c modeCase) any {
	t.Helper()
	reg := newFakeRegistry()
	e, err := New(Config{Pipeline: "p", Connector: c.connector, TimePrecision: c.time, DecimalHandling: c.dec}, reg)
	if err != nil {
		t.Fatal(err)
	}
	col := c.col
	col.Name = "c"
	tbl := &change.Table{Schema: "s", Name: "t", Columns: []change.Column{col}}
	var rec Record
	if err := e.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{c.in}}, &rec); err != nil {
		t.Fatal(err)
	}
	return decodeFramed(t, reg, rec.Value)["after"].(map[string]any)["c"]
}

func TestTypeModeRefusals(t *testing.T) {
	pg := "postgresql"
	for _, c := range []struct {
		modeCase
		class Class
		fix   string
	}{
		{modeCase{"sub-millisecond timestamp in connect", pg, TimeConnect, "", change.Column{Kind: change.KindTimestamp, SourceType: "timestamp without time zone"}, change.Value{Int: 1001}, nil},
			ClassValueNotRepresentable, "adaptive_time_microseconds"},
		{modeCase{"sub-millisecond time in connect", pg, TimeConnect, "", change.Column{Kind: change.KindTime, SourceType: "time without time zone"}, change.Value{Int: 1001}, nil},
			ClassValueNotRepresentable, "adaptive_time_microseconds"},
		{modeCase{"MySQL time over 24h in connect", "mysql", TimeConnect, "", change.Column{Kind: change.KindDuration, SourceType: "time"}, change.Value{Int: 25 * 3600 * 1000000}, nil},
			ClassValueNotRepresentable, "adaptive_time_microseconds"},
		{modeCase{"NaN in precise", pg, "", DecimalPrecise, change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, change.Value{Str: "NaN"}, nil},
			ClassValueNotRepresentable, "decimal_handling: string"},
		{modeCase{"numeric beyond a double", pg, "", DecimalDouble, change.Column{Kind: change.KindDecimal, SourceType: "numeric"}, change.Value{Str: "1e400"}, nil},
			ClassValueNotRepresentable, "decimal_handling: string"},
		{modeCase{"interval beyond a long", pg, TimeAdaptive, "", change.Column{Kind: change.KindInterval, SourceType: "interval"}, change.Value{Str: "P178000000Y"}, nil},
			ClassValueNotRepresentable, "MicroDuration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(Config{Pipeline: "p", Connector: c.connector, TimePrecision: c.time, DecimalHandling: c.dec}, newFakeRegistry())
			if err != nil {
				t.Fatal(err)
			}
			col := c.col
			col.Name = "c"
			tbl := &change.Table{Schema: "s", Name: "t", Columns: []change.Column{col}}
			var rec Record
			err = e.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{c.in}}, &rec)
			if ClassOf(err) != c.class || !strings.Contains(err.Error(), c.fix) || rec.Value != nil {
				t.Fatalf("got %v (class %q), want class %s naming %q", err, ClassOf(err), c.class, c.fix)
			}
		})
	}
}

// TestVariableScaleDecimalDefinedOnce: VariableScaleDecimal is a named Avro type; a schema
// with several such columns (one of them in the key, one an array) defines it once per
// schema and still parses.
func TestVariableScaleDecimalDefinedOnce(t *testing.T) {
	reg := newFakeRegistry()
	e, err := New(Config{Pipeline: "p", Connector: "postgresql", DecimalHandling: DecimalPrecise, TimePrecision: TimeAdaptive}, reg)
	if err != nil {
		t.Fatal(err)
	}
	tbl := &change.Table{Schema: "s", Name: "t", KeyColumns: []int{1}, Columns: []change.Column{
		{Name: "a", Kind: change.KindDecimal, Nullable: true, SourceType: "numeric"},
		{Name: "k", Kind: change.KindDecimal, SourceType: "numeric"},
		{Name: "arr", Kind: change.KindArray, Elem: change.KindDecimal, Nullable: true, SourceType: "numeric[]"},
	}}
	key, value, err := e.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{key, value} {
		parseSchema(t, s)
		if n := strings.Count(s, `"name":"VariableScaleDecimal"`); n != 1 {
			t.Fatalf("VariableScaleDecimal defined %d times in %s", n, s)
		}
	}
	var rec Record
	ev := &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{
		{State: change.Null}, {Str: "1.5"}, {Arr: []change.Value{{Str: "-0.25"}, {State: change.Null}}}}}
	if err := e.Encode(ctx, ev, &rec); err != nil {
		t.Fatal(err)
	}
	after := decodeFramed(t, reg, rec.Value)["after"].(map[string]any)
	if got := fmt.Sprint(after["k"], after["arr"]); got != "map[scale:1 value:[15]] [map[scale:2 value:[231]] <nil>]" {
		t.Fatalf("decoded %s", got)
	}
	// an unchanged TOAST value of such a column is null and listed, never the text placeholder
	ev = &change.Event{Op: change.OpUpdate, Table: tbl, After: []change.Value{
		{State: change.Unchanged}, {Str: "1.5"}, {State: change.Unchanged}}}
	if err := e.Encode(ctx, ev, &rec); err != nil {
		t.Fatal(err)
	}
	env := decodeFramed(t, reg, rec.Value)
	after = env["after"].(map[string]any)
	if after["a"] != nil || after["arr"] != nil || fmt.Sprint(env["unchanged_toast"]) != "[a arr]" {
		t.Fatalf("after %v, unchanged_toast %v", after, env["unchanged_toast"])
	}
}

// TestDefaultModeSchemasUnchanged: without type modes, and with time_precision avro and
// decimal_handling avro spelled out, the schemas are byte for byte those of earlier
// versions, so upgrading registers no new schema version.
func TestDefaultModeSchemasUnchanged(t *testing.T) {
	want, err := os.ReadFile("testdata/orders.value.avsc")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"", ""}, {ModeAvro, ModeAvro}} {
		e, err := New(Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop", TimePrecision: m[0], DecimalHandling: m[1]}, newFakeRegistry())
		if err != nil {
			t.Fatal(err)
		}
		_, value, err := e.Schemas(ordersTable())
		if err != nil {
			t.Fatal(err)
		}
		if value != strings.TrimSpace(string(want)) {
			t.Fatalf("modes %q: value schema changed:\n%s", m, value)
		}
	}
}

func TestUnknownModes(t *testing.T) {
	_, err := New(Config{Pipeline: "p", Connector: "postgresql", TimePrecision: "micro", DecimalHandling: "exact"}, newFakeRegistry())
	if err == nil || !strings.Contains(err.Error(), "adaptive_time_microseconds") || !strings.Contains(err.Error(), "precise") {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkEncodeModes encodes one row of the types the modes change (numeric(10,2),
// numeric, date, time, timestamp, timestamptz, interval, uuid) under each pair of modes; the
// values have whole milliseconds so that connect can carry them.
func BenchmarkEncodeModes(b *testing.B) {
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, SourceType: "bigint"},
		{Name: "amount", Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"},
		{Name: "ratio", Kind: change.KindDecimal, SourceType: "numeric"},
		{Name: "d", Kind: change.KindDate, SourceType: "date"},
		{Name: "tm", Kind: change.KindTime, SourceType: "time without time zone"},
		{Name: "ts", Kind: change.KindTimestamp, SourceType: "timestamp without time zone"},
		{Name: "tstz", Kind: change.KindTimestampTZ, SourceType: "timestamp with time zone"},
		{Name: "iv", Kind: change.KindInterval, SourceType: "interval"},
		{Name: "u", Kind: change.KindUUID, SourceType: "uuid"},
	}}
	row := []change.Value{{Int: 1}, {Str: "1234.50"}, {Str: "-0.000123456789"}, {Int: 19849}, {Int: 45296789000},
		{Int: 1714979289123000}, {Int: 1714979289123000}, {Str: "P1DT2H3M4.5S"}, {Str: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}}
	for _, m := range [][2]string{{ModeAvro, ModeAvro}, {TimeAdaptive, DecimalPrecise},
		{TimeAdaptiveMicroseconds, DecimalDouble}, {TimeConnect, DecimalString}} {
		b.Run(m[0]+"/"+m[1], func(b *testing.B) {
			enc, err := New(Config{Pipeline: "shop", Connector: "postgresql", Now: func() time.Time { return testNow },
				TimePrecision: m[0], DecimalHandling: m[1]}, newFakeRegistry())
			if err != nil {
				b.Fatal(err)
			}
			ev := &change.Event{Op: change.OpCreate, Table: tbl, After: row, TxID: "771",
				Pos: change.Position{Tx: 1 << 36, Index: 7}, CommitTime: testNow}
			var rec Record
			if err := enc.Encode(ctx, ev, &rec); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(rec.Key) + len(rec.Value)))
			for b.Loop() {
				if err := enc.Encode(ctx, ev, &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendZonedMatchesTime checks the hand-written ZonedTimestamp formatter against the
// time package over the whole range a long of microseconds covers.
func TestAppendZonedMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, -1, 1, 951782400000000, -62135596800000000, -62135596800000001, -210863520000000000,
		253402300799999999, 253402300800000000, 9223371244800000000, math.MaxInt64 - 1, math.MinInt64 + 1}
	for range 100000 {
		values = append(values, r.Int64()>>uint(r.IntN(20)), -(r.Int64() >> uint(r.IntN(20))))
	}
	for _, us := range values {
		for _, digits := range []int{0, 3, 6} {
			tm := time.UnixMicro(us).UTC()
			want := tm.Format("2006-01-02T15:04:05")
			if tm.Year() > 9999 {
				want = "+" + want
			}
			if digits > 0 {
				want += tm.Format(".000000")[:digits+1]
			}
			want += "Z"
			if got := string(appendZoned(nil, us, digits)); got != want {
				t.Fatalf("appendZoned(%d, %d) = %s, want %s", us, digits, got, want)
			}
		}
	}
}
