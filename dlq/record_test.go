package dlq

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

func everyKindTable() *change.Table {
	return &change.Table{Database: "db", Schema: "public", Name: "all", Version: 3, FullIdentity: true,
		Columns: []change.Column{
			{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "b", Kind: change.KindBool, Nullable: true},
			{Name: "i2", Kind: change.KindInt16, Nullable: true},
			{Name: "u", Kind: change.KindUint64, Nullable: true},
			{Name: "f4", Kind: change.KindFloat32, Nullable: true},
			{Name: "f8", Kind: change.KindFloat64, Nullable: true},
			{Name: "n", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true},
			{Name: "s", Kind: change.KindString, Nullable: true},
			{Name: "by", Kind: change.KindBytes, Nullable: true},
			{Name: "d", Kind: change.KindDate, Nullable: true},
			{Name: "d2", Kind: change.KindDate, Nullable: true},
			{Name: "tm", Kind: change.KindTime, Nullable: true},
			{Name: "ts", Kind: change.KindTimestamp, Nullable: true},
			{Name: "tz", Kind: change.KindTimestampTZ, Nullable: true},
			{Name: "tzinf", Kind: change.KindTimestampTZ, Nullable: true},
			{Name: "far", Kind: change.KindTimestamp, Nullable: true},
			{Name: "iv", Kind: change.KindInterval, Nullable: true},
			{Name: "j", Kind: change.KindJSON, Nullable: true},
			{Name: "arr", Kind: change.KindArray, Elem: change.KindInt32, Nullable: true},
			{Name: "toast", Kind: change.KindString, Nullable: true},
			{Name: "nul", Kind: change.KindString, Nullable: true},
			{Name: "bad", Kind: change.KindDate, Nullable: true},
		}, KeyColumns: []int{0}}
}

func TestMarshalRoundTripEveryKind(t *testing.T) {
	tb := everyKindTable()
	after := []change.Value{
		{Int: math.MaxInt64}, {Int: 1}, {Int: -32768}, {Uint: math.MaxUint64}, {Float: float64(float32(1.5))}, {Float: math.Inf(-1)},
		{Str: "123456789.99"}, {Str: "héllo \"quoted\"\n"}, {Bytes: []byte{0, 1, 255}},
		{Int: -719162}, {Int: change.DateInfinity}, {Int: 86400000000}, {Int: 253402300799999999}, {Int: -62135596800000000},
		{Int: change.TimestampNegInfinity}, {Int: 300000000000000000}, {Str: "P1Y2M"}, {Str: `{"a":1}`},
		{Arr: []change.Value{{Int: 1}, change.NullValue, {Int: 3}}}, {State: change.Unchanged}, change.NullValue,
		{State: change.Undecodable, Str: "2024-13-45 \"odd\""},
	}
	before := make([]change.Value, len(after))
	for i := range before {
		before[i] = change.Value{State: change.Absent}
	}
	before[0] = change.Value{Int: math.MaxInt64}
	ev := &change.Event{Op: change.OpUpdate, Table: tb, Before: before, After: after,
		Pos: change.Position{Tx: 1 << 33, Index: 4}, CommitTime: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), TxID: "991"}
	key, value, err := Marshal("shop", ev, "value_not_representable", "numeric overflow")
	if err != nil {
		t.Fatal(err)
	}
	if string(key) != `{"id":9223372036854775807}` {
		t.Errorf("key = %s", key)
	}
	var l Letter
	if err := json.Unmarshal(value, &l); err != nil {
		t.Fatal(err)
	}
	if l.Error.Class != "value_not_representable" || l.Pipeline != "shop" || l.Table != "all" || l.Position != ev.Pos {
		t.Fatalf("letter header fields: %+v", l)
	}
	got, err := l.Event()
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != ev.Op || got.Pos != ev.Pos || !got.CommitTime.Equal(ev.CommitTime) || got.TxID != ev.TxID {
		t.Fatalf("event header: %+v", got)
	}
	if !reflect.DeepEqual(got.Table.Columns, tb.Columns) || !reflect.DeepEqual(got.Table.KeyColumns, tb.KeyColumns) {
		t.Fatalf("columns differ:\n%+v\n%+v", got.Table.Columns, tb.Columns)
	}
	for i := range after {
		if !reflect.DeepEqual(got.After[i], after[i]) {
			t.Errorf("after column %s: got %+v, want %+v (json %s)", tb.Columns[i].Name, got.After[i], after[i], l.After)
		}
		if !reflect.DeepEqual(got.Before[i], before[i]) {
			t.Errorf("before column %s: got %+v, want %+v", tb.Columns[i].Name, got.Before[i], before[i])
		}
	}
	// NaN survives too (DeepEqual cannot compare it).
	ev.After[5] = change.Value{Float: math.NaN()}
	_, value, _ = Marshal("shop", ev, "c", "m")
	_ = json.Unmarshal(value, &l)
	got, err = l.Event()
	if err != nil || !math.IsNaN(got.After[5].Float) {
		t.Fatalf("NaN: %v %v", got.After[5], err)
	}
}

func FuzzLetterEvent(f *testing.F) {
	_, v, _ := Marshal("p", &change.Event{Op: change.OpCreate, Table: everyKindTable(), After: make([]change.Value, 22)}, "c", "m")
	f.Add(v)
	f.Add([]byte(`{"columns":[{"name":"a","kind":"array","elem":"date"}],"op":"c","after":{"a":["x"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Letter
		if json.Unmarshal(data, &l) != nil {
			return
		}
		_, _ = l.Event()
	})
}
