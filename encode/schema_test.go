package encode

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/hamba/avro/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// allKindsTable has one column of every kind, half of them nullable.
func allKindsTable() *change.Table {
	t := &change.Table{Database: "db", Schema: "public", Name: "all_kinds", KeyColumns: []int{0, 1}}
	for k := change.KindBool; k <= change.KindArray; k++ {
		c := change.Column{Name: "c_" + k.String(), Kind: k, Nullable: k%2 == 0, SourceType: k.String()}
		switch k {
		case change.KindDecimal:
			c.Precision, c.Scale = 12, 3
		case change.KindArray:
			c.Elem = change.KindDecimal
			c.Precision, c.Scale = 5, 5
		}
		t.Columns = append(t.Columns, c)
	}
	t.Columns = append(t.Columns, change.Column{Name: "c_numeric", Kind: change.KindDecimal, SourceType: "numeric"})
	return t
}

func TestSchemasParseAndCarryProperties(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	tbl := allKindsTable()
	key, value, err := enc.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{key, value} { // the default parser, as consumers use it
		if _, err := avro.Parse(s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
	ks := parseSchema(t, key).(*avro.RecordSchema)
	if ks.FullName() != "shop.public.all_kinds.Key" || len(ks.Fields()) != 2 {
		t.Errorf("key schema %s", key)
	}
	env := parseSchema(t, value).(*avro.RecordSchema)
	if env.FullName() != "shop.public.all_kinds.Envelope" {
		t.Errorf("envelope is %s", env.FullName())
	}
	var names []string
	for _, f := range env.Fields() {
		names = append(names, f.Name())
	}
	if got := strings.Join(names, ","); got != "before,after,source,op,ts_ms,transaction,unchanged_toast" {
		t.Errorf("envelope fields %s", got)
	}
	rec := env.Fields()[0].Type().(*avro.UnionSchema).Types()[1].(*avro.RecordSchema)
	if rec.FullName() != "shop.public.all_kinds.Value" {
		t.Errorf("value record %s", rec.FullName())
	}
	for i, f := range rec.Fields() {
		c := tbl.Columns[i]
		if f.Prop(sourceTypeProp) != c.SourceType {
			t.Errorf("%s: %s = %v", f.Name(), sourceTypeProp, f.Prop(sourceTypeProp))
		}
		if c.Nullable {
			u, ok := f.Type().(*avro.UnionSchema)
			if !ok || u.Types()[0].Type() != avro.Null || !f.HasDefault() || f.Default() != nil {
				t.Errorf("%s: nullable column is not [null, T] default null", f.Name())
			}
		} else if f.Type().Type() == avro.Union {
			t.Errorf("%s: NOT NULL column is a union", f.Name())
		}
	}
	for _, name := range []string{"Source", "Transaction"} {
		if !strings.Contains(value, `"name":"`+name+`","namespace":"io.cdcd"`) {
			t.Errorf("%s record is not in io.cdcd", name)
		}
	}
	if !strings.Contains(value, `{"type":"string","connect.name":"io.debezium.data.Json"}`) {
		t.Error("json type lacks connect.name")
	}
	if !json.Valid([]byte(value)) || !json.Valid([]byte(key)) {
		t.Error("schema is not valid JSON")
	}
}

func TestSchemasAreDeterministic(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	k1, v1, err := enc.Schemas(allKindsTable())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		k2, v2, _ := enc.Schemas(allKindsTable())
		if k1 != k2 || v1 != v2 {
			t.Fatal("the same table shape gave different schema JSON")
		}
	}
}

func TestAvroName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"orders", "orders"},
		{"_x9", "_x9"},
		{"Order Items", "Order_Items" + nameHash("Order Items")},
		{"1st", "_1st" + nameHash("1st")},
		{"ünï", "_n_" + nameHash("ünï")},
		{"a-b", "a_b" + nameHash("a-b")},
		{"", "_" + nameHash("")},
	}
	for _, tc := range tests {
		got := AvroName(tc.in)
		if got != tc.want || !ValidAvroName(got) {
			t.Errorf("AvroName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if AvroName("a b") == AvroName("a_b") || AvroName("a b") == AvroName("a.b") {
		t.Error("distinct names collide")
	}
}

func TestOddIdentifiers(t *testing.T) {
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	tbl := &change.Table{Database: "db", Schema: "1st schema", Name: "Order Items.ünï", KeyColumns: []int{0},
		Columns: []change.Column{
			{Name: "1st", Kind: change.KindInt64},
			{Name: "Order Items", Kind: change.KindString},
			{Name: "Order_Items", Kind: change.KindString},
			{Name: "ünï", Kind: change.KindString, Nullable: true},
			{Name: "a.b", Kind: change.KindBool},
		}}
	topic := enc.Topic(tbl)
	if err := checkTopic(topic); err != nil {
		t.Fatal(err)
	}
	if strings.Count(topic, ".") != 2 {
		t.Errorf("topic %q: the dot inside the table name must not make a new segment", topic)
	}
	_, value, err := enc.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	parseSchema(t, value)
	var rec Record
	err = enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl,
		After: []change.Value{{Int: 1}, {Str: "x"}, {Str: "y"}, change.NullValue, {Int: 1}}}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	a := decodeFramed(t, reg, rec.Value)["after"].(map[string]any)
	if a[AvroName("Order Items")] != "x" || a["Order_Items"] != "y" || a[AvroName("a.b")] != true {
		t.Errorf("after = %v", a)
	}
}

func TestColumnCollisionIsAnError(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	tbl := &change.Table{Schema: "public", Name: "t", Columns: []change.Column{
		{Name: "a b", Kind: change.KindString},
		{Name: AvroName("a b"), Kind: change.KindString},
	}}
	_, _, err := enc.Schemas(tbl)
	if ClassOf(err) != ClassSchemaRejected || !strings.Contains(err.Error(), `"a b"`) {
		t.Fatalf("err = %v", err)
	}
	var rec Record
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{}, {}}}, &rec); ClassOf(err) != ClassSchemaRejected {
		t.Fatalf("Encode err = %v", err)
	}
}

// TestAddingNullableColumnIsBackwardCompatible: the new field is [null, T] with default
// null, and a reader on the new schema can read data written with the old one.
func TestAddingNullableColumnIsBackwardCompatible(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	v1 := ordersTable()
	v2 := ordersTable()
	v2.Version = 2
	v2.Columns = append(v2.Columns, change.Column{Name: "coupon", Kind: change.KindString, Nullable: true, SourceType: "text"})
	k1, s1, _ := enc.Schemas(v1)
	k2, s2, err := enc.Schemas(v2)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 {
		t.Error("the key schema changed")
	}
	if !strings.Contains(s2, `{"name":"coupon","type":["null","string"],"default":null,"cdcd.source_type":"text"}`) {
		t.Errorf("new field is not null-first with default null:\n%s", s2)
	}
	old, newer := parseSchema(t, s1), parseSchema(t, s2)
	if err := avro.NewSchemaCompatibility().Compatible(newer, old); err != nil {
		t.Errorf("not BACKWARD compatible: %v", err)
	}

	// And data written with v1 decodes with the v2 reader.
	reg := newFakeRegistry()
	enc = newTestEncoder(t, reg)
	var rec Record
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: v1, After: ordersRow(3)}, &rec); err != nil {
		t.Fatal(err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(newer, old)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := avro.Unmarshal(resolved, rec.Value[5:], &out); err != nil {
		t.Fatal(err)
	}
	after := out["after"].(map[string]any)["shop.public.orders.Value"].(map[string]any)
	if after["coupon"] != nil || after["id"] != int64(3) {
		t.Errorf("after = %v", after)
	}
}

// TestEnvelopeEvolutionIsFullyCompatible: the unchanged_toast field was added to the
// envelope with a default, so subjects registered before it accept the new schema under any
// compatibility level: readers of either schema read records written with the other.
func TestEnvelopeEvolutionIsFullyCompatible(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "orders.value.before-unchanged-toast.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	_, value, err := newTestEncoder(t, newFakeRegistry()).Schemas(ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	prev, cur := parseSchema(t, string(old)), parseSchema(t, value)
	if err := avro.NewSchemaCompatibility().Compatible(cur, prev); err != nil {
		t.Errorf("not BACKWARD compatible: %v", err)
	}
	if err := avro.NewSchemaCompatibility().Compatible(prev, cur); err != nil {
		t.Errorf("not FORWARD compatible: %v", err)
	}
}

// TestGolden pins the schemas and the bytes of one update of the orders table; run with
// -update after an intended change, and review the diff.
func TestGolden(t *testing.T) {
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	tbl := ordersTable()
	key, value, err := enc.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	before := ordersRow(1001)
	before[5] = change.NullValue
	var rec Record
	err = enc.Encode(ctx, &change.Event{Op: change.OpUpdate, Table: tbl, Before: before, After: ordersRow(1001),
		Pos: change.Position{Tx: 0x16B374D848, Index: 2}, TxID: "771",
		CommitTime: time.Date(2024, 5, 6, 7, 8, 0, 0, time.UTC)}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	// The schemas are pinned byte for byte, as registered.
	files := map[string][]byte{
		"orders.key.avsc":   []byte(key + "\n"),
		"orders.value.avsc": []byte(value + "\n"),
		"orders.update.hex": []byte("key\n" + hexDump(rec.Key) + "value\n" + hexDump(rec.Value)),
	}
	for name, got := range files {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file; if intended, run go test -run TestGolden -update\ngot:\n%s", name, got)
		}
	}
	// The golden record must decode to what went in.
	v := decodeFramed(t, reg, rec.Value)
	if v["before"].(map[string]any)["note"] != nil || v["after"].(map[string]any)["note"] != "leave at the door ✓" {
		t.Errorf("decoded %v", v)
	}
}
