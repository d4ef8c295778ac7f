package encode

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

var ctx = context.Background()

// expect converts a change.Value of column c into what hamba's generic decoder returns
// (after normalizing times), for comparison.
func sameDecoded(t *testing.T, c change.Column, kind change.Kind, want change.Value, got any) {
	t.Helper()
	if want.State == change.Null {
		if got != nil {
			t.Errorf("%s: got %v, want null", c.Name, got)
		}
		return
	}
	fail := func() { t.Errorf("%s (%v): got %#v (%T), want %+v", c.Name, kind, got, got, want) }
	switch kind {
	case change.KindBool:
		if got != (want.Int != 0) {
			fail()
		}
	case change.KindInt16, change.KindInt32:
		if g, ok := got.(int); !ok || int64(g) != want.Int {
			fail()
		}
	case change.KindInt64, change.KindTimestamp, change.KindDuration:
		if got != want.Int {
			fail()
		}
	case change.KindUint64:
		r, ok := got.(*big.Rat)
		if !ok || r.Cmp(new(big.Rat).SetInt(new(big.Int).SetUint64(want.Uint))) != 0 {
			fail()
		}
	case change.KindFloat32:
		g, ok := got.(float32)
		w := float32(want.Float)
		if !ok || math.Float32bits(g) != math.Float32bits(w) {
			fail()
		}
	case change.KindFloat64:
		g, ok := got.(float64)
		if !ok || math.Float64bits(g) != math.Float64bits(want.Float) {
			fail()
		}
	case change.KindDecimal:
		if c.Precision == 0 {
			if got != want.Str {
				fail()
			}
			return
		}
		r, ok := got.(*big.Rat)
		w, wok := new(big.Rat).SetString(want.Str)
		if !ok || !wok || r.Cmp(w) != 0 {
			fail()
		}
	case change.KindString, change.KindEnum, change.KindTimeTZ, change.KindInterval, change.KindUUID, change.KindJSON:
		if got != want.Str {
			fail()
		}
	case change.KindBytes:
		if g, ok := got.([]byte); !ok || !bytes.Equal(g, want.Bytes) {
			fail()
		}
	case change.KindDate:
		if g, ok := got.(time.Time); !ok || g.Unix() != want.Int*86400 {
			fail()
		}
	case change.KindTime:
		if g, ok := got.(time.Duration); !ok || g.Microseconds() != want.Int {
			fail()
		}
	case change.KindTimestampTZ:
		if g, ok := got.(time.Time); !ok || g.UnixMicro() != want.Int {
			fail()
		}
	case change.KindArray:
		g, ok := got.([]any)
		if !ok || len(g) != len(want.Arr) {
			fail()
			return
		}
		for i := range g {
			sameDecoded(t, c, c.Elem, want.Arr[i], g[i])
		}
	default:
		t.Fatalf("no comparison for %v", kind)
	}
}

func present(vs ...change.Value) []change.Value { return vs }

func TestEveryKindRoundTrips(t *testing.T) {
	big1MB := strings.Repeat("ü€x", 1<<20/6)
	year1Days := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	year9999Days := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
	year1Micros := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	year9999Micros := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	tests := []struct {
		name   string
		col    change.Column
		values []change.Value
	}{
		{"bool", change.Column{Kind: change.KindBool, SourceType: "boolean"},
			present(change.Value{Int: 1}, change.Value{Int: 0})},
		{"int16", change.Column{Kind: change.KindInt16, SourceType: "smallint"},
			present(change.Value{Int: math.MinInt16}, change.Value{Int: math.MaxInt16}, change.Value{})},
		{"int32", change.Column{Kind: change.KindInt32, SourceType: "integer"},
			present(change.Value{Int: math.MinInt32}, change.Value{Int: math.MaxInt32}, change.Value{Int: -1})},
		{"int64", change.Column{Kind: change.KindInt64, SourceType: "bigint"},
			present(change.Value{Int: math.MinInt64}, change.Value{Int: math.MaxInt64}, change.Value{Int: 0})},
		{"uint64", change.Column{Kind: change.KindUint64, SourceType: "bigint unsigned"},
			present(change.Value{Uint: 0}, change.Value{Uint: math.MaxUint64}, change.Value{Uint: 1 << 63},
				change.Value{Uint: 1<<63 - 1}, change.Value{Uint: 128}, change.Value{Uint: 255})},
		{"float32", change.Column{Kind: change.KindFloat32, SourceType: "real"},
			present(change.Value{Float: 1.5}, change.Value{Float: math.NaN()}, change.Value{Float: math.Inf(1)},
				change.Value{Float: math.Inf(-1)}, change.Value{Float: math.MaxFloat32}, change.Value{Float: math.Copysign(0, -1)})},
		{"float64", change.Column{Kind: change.KindFloat64, SourceType: "double precision"},
			present(change.Value{Float: math.NaN()}, change.Value{Float: math.Inf(1)}, change.Value{Float: math.Inf(-1)},
				change.Value{Float: math.SmallestNonzeroFloat64}, change.Value{Float: -math.MaxFloat64})},
		{"decimal", change.Column{Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"},
			present(change.Value{Str: "12.50"}, change.Value{Str: "-12.50"}, change.Value{Str: "0"},
				change.Value{Str: "-0.01"}, change.Value{Str: "99999999.99"}, change.Value{Str: "-99999999.99"},
				change.Value{Str: "1.27"}, change.Value{Str: "-1.28"}, change.Value{Str: "+3"}, change.Value{Str: "1e2"},
				change.Value{Str: "12.5000"}, change.Value{Str: ".5"})},
		{"decimal wide", change.Column{Kind: change.KindDecimal, Precision: 60, Scale: 20, SourceType: "numeric(60,20)"},
			present(change.Value{Str: "1234567890123456789012345678901234567890.01234567890123456789"},
				change.Value{Str: "-" + strings.Repeat("9", 40) + "." + strings.Repeat("9", 20)},
				change.Value{Str: "-0.00000000000000000001"}, change.Value{Str: "18446744073709551616"})},
		{"decimal negative scale", change.Column{Kind: change.KindDecimal, Precision: 3, Scale: -2, SourceType: "numeric(3,-2)"},
			present(change.Value{Str: "99900"}, change.Value{Str: "-12300"})},
		{"decimal scale above precision", change.Column{Kind: change.KindDecimal, Precision: 2, Scale: 4, SourceType: "numeric(2,4)"},
			present(change.Value{Str: "0.0099"}, change.Value{Str: "-0.0012"})},
		{"numeric unconstrained", change.Column{Kind: change.KindDecimal, SourceType: "numeric"},
			present(change.Value{Str: "NaN"}, change.Value{Str: "Infinity"}, change.Value{Str: "-Infinity"},
				change.Value{Str: "3.14159265358979323846264338327950288419716939937510"})},
		{"string", change.Column{Kind: change.KindString, SourceType: "text"},
			present(change.Value{Str: ""}, change.Value{Str: "ünïcödé 日本語 🎉"}, change.Value{Str: "nul\x00byte"},
				change.Value{Str: big1MB})},
		{"enum", change.Column{Kind: change.KindEnum, SourceType: "mood"}, present(change.Value{Str: "happy"})},
		{"timetz", change.Column{Kind: change.KindTimeTZ, SourceType: "time with time zone"},
			present(change.Value{Str: "10:11:12.5+02:00"})},
		{"interval", change.Column{Kind: change.KindInterval, SourceType: "interval"},
			present(change.Value{Str: "P1Y2M3DT4H5M6.5S"})},
		{"uuid", change.Column{Kind: change.KindUUID, SourceType: "uuid"},
			present(change.Value{Str: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"})},
		{"json", change.Column{Kind: change.KindJSON, SourceType: "jsonb"},
			present(change.Value{Str: `{"a": [1, 2.5, null], "b": "ü"}`})},
		{"bytes", change.Column{Kind: change.KindBytes, SourceType: "bytea"},
			present(change.Value{Bytes: []byte{}}, change.Value{Bytes: []byte{0, 0xff, 0x80, 1}})},
		{"date", change.Column{Kind: change.KindDate, SourceType: "date"},
			present(change.Value{Int: 0}, change.Value{Int: -1}, change.Value{Int: change.DateInfinity},
				change.Value{Int: change.DateNegInfinity}, change.Value{Int: year1Days}, change.Value{Int: year9999Days})},
		{"time", change.Column{Kind: change.KindTime, SourceType: "time"},
			present(change.Value{Int: 0}, change.Value{Int: 86_399_999_999}, change.Value{Int: 86_400_000_000})},
		{"duration", change.Column{Kind: change.KindDuration, SourceType: "time(6)"}, // MySQL TIME
			present(change.Value{Int: -3_020_399_000_000}, change.Value{Int: 0}, change.Value{Int: 3_020_399_999_999})},
		{"timestamp", change.Column{Kind: change.KindTimestamp, SourceType: "timestamp"},
			present(change.Value{Int: change.TimestampInfinity}, change.Value{Int: change.TimestampNegInfinity},
				change.Value{Int: year1Micros}, change.Value{Int: year9999Micros}, change.Value{Int: -1})},
		{"timestamptz", change.Column{Kind: change.KindTimestampTZ, SourceType: "timestamptz"},
			present(change.Value{Int: change.TimestampInfinity}, change.Value{Int: change.TimestampNegInfinity},
				change.Value{Int: year1Micros}, change.Value{Int: year9999Micros}, change.Value{Int: 1})},
		{"int array", change.Column{Kind: change.KindArray, Elem: change.KindInt32, SourceType: "integer[]"},
			present(change.Value{Arr: []change.Value{{Int: 1}, change.NullValue, {Int: -7}}},
				change.Value{Arr: []change.Value{}}, change.Value{Arr: []change.Value{change.NullValue}})},
		{"text array", change.Column{Kind: change.KindArray, Elem: change.KindString, SourceType: "text[]"},
			present(change.Value{Arr: []change.Value{{Str: "a"}, change.NullValue, {Str: ""}, {Str: "ü"}}})},
		{"decimal array", change.Column{Kind: change.KindArray, Elem: change.KindDecimal, Precision: 5, Scale: 1, SourceType: "numeric(5,1)[]"},
			present(change.Value{Arr: []change.Value{{Str: "1234.5"}, change.NullValue, {Str: "-0.1"}}})},
		{"timestamptz array", change.Column{Kind: change.KindArray, Elem: change.KindTimestampTZ, SourceType: "timestamptz[]"},
			present(change.Value{Arr: []change.Value{{Int: change.TimestampInfinity}, change.NullValue}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, n := tc.col, tc.col
			v.Name, n.Name, n.Nullable = "v", "n", true
			tbl := &change.Table{Database: "db", Schema: "public", Name: "kinds", KeyColumns: []int{0},
				Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, v, n}}
			reg := newFakeRegistry()
			enc := newTestEncoder(t, reg)
			var rec Record
			for i, val := range tc.values {
				for _, nv := range []change.Value{val, change.NullValue} {
					ev := &change.Event{Op: change.OpCreate, Table: tbl,
						After: []change.Value{{Int: int64(i)}, val, nv}}
					if err := enc.Encode(ctx, ev, &rec); err != nil {
						t.Fatalf("value %d: %v", i, err)
					}
					got := decodeFramed(t, reg, rec.Value)
					after := got["after"].(map[string]any)
					sameDecoded(t, v, v.Kind, val, after["v"])
					sameDecoded(t, n, n.Kind, nv, after["n"])
					if got["before"] != nil {
						t.Errorf("before = %v, want null", got["before"])
					}
					key := decodeFramed(t, reg, rec.Key)
					if key["id"] != int64(i) {
						t.Errorf("key = %v", key)
					}
				}
			}
		})
	}
}

func TestDecimalNotRepresentable(t *testing.T) {
	tests := []struct {
		prec, scale int
		in          string
		class       Class
		msg         string
	}{
		{8, 2, "123456.789", ClassValueNotRepresentable,
			"public.orders column total: value 123456.789 does not fit numeric(8,2) (more than 2 fractional digits); widen"},
		{8, 2, "1234567.8", ClassValueNotRepresentable, "(more than 6 integer digits)"},
		{8, 2, "-1234567", ClassValueNotRepresentable, "(more than 6 integer digits)"},
		{8, 2, "1e7", ClassValueNotRepresentable, "integer digits"},
		{8, 2, "1e-3", ClassValueNotRepresentable, "fractional digits"},
		{8, 2, "1e999999999999", ClassValueNotRepresentable, "integer digits"},
		{8, 2, "NaN", ClassValueNotRepresentable, "value NaN does not fit numeric(8,2) (an Avro decimal has no NaN or Infinity)"},
		{8, 2, "-Infinity", ClassValueNotRepresentable, "no NaN or Infinity"},
		{8, 2, "", ClassUndecodable, "is not a decimal number"},
		{8, 2, "12,50", ClassUndecodable, "is not a decimal number"},
		{8, 2, "--1", ClassUndecodable, "is not a decimal number"},
		{8, 2, "1e", ClassUndecodable, "is not a decimal number"},
		{8, 2, ".", ClassUndecodable, "is not a decimal number"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			tbl := &change.Table{Schema: "public", Name: "orders", KeyColumns: []int{0}, Columns: []change.Column{
				{Name: "id", Kind: change.KindInt64},
				{Name: "total", Kind: change.KindDecimal, Precision: tc.prec, Scale: tc.scale,
					SourceType: "numeric(8,2)"}}}
			enc := newTestEncoder(t, newFakeRegistry())
			var rec Record
			err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl,
				After: []change.Value{{Int: 1}, {Str: tc.in}}}, &rec)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ce.Class != tc.class || ce.Table != "public.orders" || ce.Column != "total" {
				t.Errorf("got %+v", ce)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
			if Retriable(err) {
				t.Error("a poison record must not be retriable")
			}
			if rec.Value != nil || rec.Key != nil {
				t.Error("a failed Encode left a record behind")
			}
		})
	}
}

// TestDecimalBytes checks the two's complement bytes against math/big at the edges where
// a byte is added or saved.
func TestDecimalBytes(t *testing.T) {
	var sc scratch
	for _, s := range []string{"0", "1", "-1", "127", "128", "-128", "-129", "255", "256", "-256", "-257",
		"32767", "32768", "-32768", "-32769", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "999999999999999999", "1000000000000000000",
		"-4294967296", "4294967295", "18446744073709551615", "-18446744073709551616",
		"123456789012345678901234567890123456789"} {
		want, _ := new(big.Int).SetString(s, 10)
		out, p := appendDecimal(nil, s, 40, 0, &sc)
		if p != decOK {
			t.Fatalf("%s: problem %d", s, p)
		}
		n, used := readLongForTest(out)
		b := out[used:]
		if int(n) != len(b) {
			t.Fatalf("%s: length %d, have %d bytes", s, n, len(b))
		}
		if got := fromTwos(b); got.Cmp(want) != 0 {
			t.Errorf("%s: decoded %s from % x", s, got, b)
		}
		if len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
			t.Errorf("%s: % x is not minimal", s, b)
		}
	}
}

func readLongForTest(b []byte) (int64, int) {
	var u uint64
	var shift uint
	for i, c := range b {
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
		shift += 7
	}
	panic("truncated varint")
}

func fromTwos(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

func TestEnvelope(t *testing.T) {
	tbl := ordersTable()
	row := ordersRow(7)
	keyOnly := make([]change.Value, len(row))
	for i := range keyOnly {
		keyOnly[i] = change.Value{State: change.Absent}
	}
	keyOnly[0] = change.Value{Int: 7}
	commit := time.Date(2024, 5, 6, 7, 8, 0, 0, time.UTC)
	pos := change.Position{Tx: 0x16B374D848, Index: 3}

	tests := []struct {
		name                   string
		ev                     change.Event
		wantKey, wantBefore    bool
		wantAfter              bool
		op, snapshot           string
		txID, lsn, gtid, trans any
	}{
		{name: "create", ev: change.Event{Op: change.OpCreate, After: row, TxID: "771"},
			wantKey: true, wantAfter: true, op: "c", snapshot: "false", txID: int64(771), lsn: int64(pos.Tx),
			trans: map[string]any{"id": "771", "total_order": int64(4), "data_collection_order": int64(4)}},
		{name: "snapshot read", ev: change.Event{Op: change.OpRead, After: row},
			wantKey: true, wantAfter: true, op: "r", snapshot: "true", lsn: int64(pos.Tx)},
		{name: "update with full before", ev: change.Event{Op: change.OpUpdate, Before: row, After: row, TxID: "9"},
			wantKey: true, wantBefore: true, wantAfter: true, op: "u", snapshot: "false", txID: int64(9), lsn: int64(pos.Tx),
			trans: map[string]any{"id": "9", "total_order": int64(4), "data_collection_order": int64(4)}},
		{name: "update with key-only before", ev: change.Event{Op: change.OpUpdate, Before: keyOnly, After: row},
			wantKey: true, wantAfter: true, op: "u", snapshot: "false", lsn: int64(pos.Tx)},
		{name: "delete with key-only before", ev: change.Event{Op: change.OpDelete, Before: keyOnly},
			wantKey: true, op: "d", snapshot: "false", lsn: int64(pos.Tx)},
		{name: "delete with full before", ev: change.Event{Op: change.OpDelete, Before: row, TxID: "0-1-100"},
			wantKey: true, wantBefore: true, op: "d", snapshot: "false", lsn: int64(pos.Tx), gtid: "0-1-100",
			trans: map[string]any{"id": "0-1-100", "total_order": int64(4), "data_collection_order": int64(4)}},
		{name: "truncate", ev: change.Event{Op: change.OpTruncate},
			op: "t", snapshot: "false", lsn: int64(pos.Tx)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry()
			enc := newTestEncoder(t, reg)
			ev := tc.ev
			ev.Table, ev.Pos, ev.CommitTime = tbl, pos, commit
			var rec Record
			if err := enc.Encode(ctx, &ev, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Topic != "shop.public.orders" || rec.Op != ev.Op {
				t.Errorf("topic %q op %v", rec.Topic, rec.Op)
			}
			if (rec.Key != nil) != tc.wantKey {
				t.Fatalf("key = % x", rec.Key)
			}
			if tc.wantKey {
				if k := decodeFramed(t, reg, rec.Key); k["id"] != int64(7) {
					t.Errorf("key = %v", k)
				}
			}
			v := decodeFramed(t, reg, rec.Value)
			if (v["before"] != nil) != tc.wantBefore || (v["after"] != nil) != tc.wantAfter {
				t.Errorf("before = %v, after = %v", v["before"], v["after"])
			}
			if tc.wantAfter {
				a := v["after"].(map[string]any)
				if a["id"] != int64(7) || a["status"] != "paid" || a["note"] != "leave at the door ✓" {
					t.Errorf("after = %v", a)
				}
			}
			if v["op"] != tc.op || v["ts_ms"] != testNow.UnixMilli() {
				t.Errorf("op %v ts_ms %v", v["op"], v["ts_ms"])
			}
			src := v["source"].(map[string]any)
			want := map[string]any{"version": "1.2.3", "connector": "postgresql", "name": "shop",
				"ts_ms": commit.UnixMilli(), "snapshot": tc.snapshot, "db": "shop", "schema": "public",
				"table": "orders", "txId": tc.txID, "lsn": tc.lsn, "gtid": tc.gtid,
				"sequence": `{"tx":` + strconv.FormatUint(pos.Tx, 10) + `,"index":3}`}
			for k, w := range want {
				if src[k] != w {
					t.Errorf("source.%s = %#v, want %#v", k, src[k], w)
				}
			}
			if tc.trans == nil {
				if v["transaction"] != nil {
					t.Errorf("transaction = %v", v["transaction"])
				}
			} else {
				got := v["transaction"].(map[string]any)
				for k, w := range tc.trans.(map[string]any) {
					if got[k] != w {
						t.Errorf("transaction.%s = %v, want %v", k, got[k], w)
					}
				}
			}
			tomb, ok := rec.Tombstone()
			if ok != (ev.Op == change.OpDelete) {
				t.Fatalf("Tombstone ok = %v", ok)
			}
			if ok && (tomb.Value != nil || !bytes.Equal(tomb.Key, rec.Key) || tomb.Topic != rec.Topic || &tomb.Key[0] == &rec.Key[0]) {
				t.Errorf("tombstone %+v", tomb)
			}
		})
	}
}

// TestSnapshotAndStreamEncodeAlike: the same row must give the same key bytes and the same
// after bytes whether it came from a snapshot or the stream.
func TestSnapshotAndStreamEncodeAlike(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	tbl := ordersTable()
	var recs [3]Record
	for i, op := range []change.Op{change.OpRead, change.OpCreate, change.OpUpdate} {
		ev := &change.Event{Op: op, Table: tbl, After: ordersRow(1), Pos: change.Position{Tx: uint64(i + 1)}}
		if op == change.OpUpdate {
			ev.Before = ordersRow(1)
		}
		if err := enc.Encode(ctx, ev, &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := enc.state(ctx, tbl)
	after, err := st.plan.appendRecord([]byte{unionValue}, ordersRow(1), nil, &scratch{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !bytes.Equal(recs[i].Key, recs[0].Key) {
			t.Errorf("op %v: key % x, want % x", recs[i].Op, recs[i].Key, recs[0].Key)
		}
		afterAt := 6 // header, then a null before
		if recs[i].Op == change.OpUpdate {
			afterAt = 5 + len(after) // header, then before holding the same row
		}
		if !bytes.HasPrefix(recs[i].Value[afterAt:], after) {
			t.Errorf("op %v: after bytes differ", recs[i].Op)
		}
	}
}

// TestUnchangedToast: an UPDATE that leaves an out-of-line (TOASTed) value alone must never
// stop the pipeline, whatever the column's type, and consumers must be able to tell the
// unchanged value from NULL. Text and bytes columns (and arrays of them) carry Debezium's
// placeholder; other columns are null; every such column is listed in unchanged_toast. It
// used to fail arrays of non-text elements and numeric(P,S) with value_not_representable.
func TestUnchangedToast(t *testing.T) {
	tbl := &change.Table{Schema: "public", Name: "docs", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, Key: true},
		{Name: "body", Kind: change.KindString, Nullable: true},
		{Name: "doc", Kind: change.KindJSON},
		{Name: "blob", Kind: change.KindBytes, Nullable: true},
		{Name: "big", Kind: change.KindDecimal},
		{Name: "tags", Kind: change.KindArray, Elem: change.KindString, Nullable: true},
		{Name: "nums", Kind: change.KindArray, Elem: change.KindInt32, Nullable: true},
		{Name: "nn nums", Kind: change.KindArray, Elem: change.KindInt64},
		{Name: "amount", Kind: change.KindDecimal, Precision: 40, Scale: 2},
		{Name: "small", Kind: change.KindDecimal, Precision: 10, Scale: 2},
	}}
	unchanged := change.Value{State: change.Unchanged}
	full := func() []change.Value {
		return []change.Value{{Int: 1}, {Str: "b"}, {Str: "{}"}, change.NullValue, {Str: "1"},
			{Arr: []change.Value{{Str: "x"}}}, {Arr: []change.Value{{Int: 7}}}, {Arr: []change.Value{{Int: 8}}}, {Str: "1.00"}, {Str: "2.00"}}
	}
	all := full()
	for i := 1; i <= 8; i++ {
		all[i] = unchanged
	}
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	var rec Record
	for _, op := range []change.Op{change.OpUpdate, change.OpCreate} { // a create follows a key change
		if err := enc.Encode(ctx, &change.Event{Op: op, Table: tbl, After: all}, &rec); err != nil {
			t.Fatalf("%v: %v", op, err)
		}
		v := decodeFramed(t, reg, rec.Value)
		a := v["after"].(map[string]any)
		for _, f := range []string{"body", "doc", "big"} {
			if a[f] != UnchangedPlaceholder {
				t.Errorf("%s = %v, want the placeholder", f, a[f])
			}
		}
		if b, _ := a["blob"].([]byte); string(b) != UnchangedPlaceholder {
			t.Errorf("blob = %v", a["blob"])
		}
		if tags, _ := a["tags"].([]any); len(tags) != 1 || tags[0] != UnchangedPlaceholder {
			t.Errorf("tags = %#v, want [placeholder]", a["tags"])
		}
		nn := AvroName("nn nums")
		for _, f := range []string{"nums", nn, "amount"} {
			if a[f] != nil {
				t.Errorf("%s = %#v, want null", f, a[f])
			}
		}
		want := []any{"body", "doc", "blob", "big", "tags", "nums", nn, "amount"}
		if got, _ := v["unchanged_toast"].([]any); !equalAny(got, want) {
			t.Errorf("unchanged_toast = %#v, want %v", v["unchanged_toast"], want)
		}
	}
	if UnchangedPlaceholder != "__debezium_unavailable_value" {
		t.Errorf("placeholder %q is not the one Debezium sinks recognise", UnchangedPlaceholder)
	}

	// Without unchanged values the list is null, and an incomplete before is not written.
	before := full()
	before[2] = unchanged
	if err := enc.Encode(ctx, &change.Event{Op: change.OpUpdate, Table: tbl, Before: before, After: full()}, &rec); err != nil {
		t.Fatal(err)
	}
	if v := decodeFramed(t, reg, rec.Value); v["unchanged_toast"] != nil || v["before"] != nil {
		t.Errorf("unchanged_toast = %v, before = %v; want both null", v["unchanged_toast"], v["before"])
	}

	// A key cannot be guessed: an unchanged key column is a source bug, not a placeholder.
	badKey := full()
	badKey[0] = unchanged
	err := enc.Encode(ctx, &change.Event{Op: change.OpUpdate, Table: tbl, After: badKey}, &rec)
	if ClassOf(err) != ClassUndecodable || !strings.Contains(err.Error(), "key") {
		t.Errorf("unchanged key: err = %v", err)
	}

	// The NOT NULL columns without a placeholder form are nullable in Postgres schemas only.
	_, pgValue, _ := enc.Schemas(tbl)
	my, err := New(Config{Pipeline: "p", Connector: "mysql", Now: func() time.Time { return testNow }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	_, myValue, _ := my.Schemas(tbl)
	for _, f := range []string{`{"name":"amount","type":["null",`, `{"name":"` + AvroName("nn nums") + `","type":["null",`} {
		if !strings.Contains(pgValue, f) {
			t.Errorf("postgresql schema lacks %s", f)
		}
		if strings.Contains(myValue, f) {
			t.Errorf("mysql schema has %s", f)
		}
	}
	// numeric(10,2) is never stored out of line: it stays NOT NULL.
	if !strings.Contains(pgValue, `{"name":"small","type":{"type":"bytes"`) {
		t.Errorf("numeric(10,2) NOT NULL became nullable:\n%s", pgValue)
	}
	parseSchema(t, pgValue)
}

func equalAny(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRowProblems(t *testing.T) {
	tbl := ordersTable()
	enc := newTestEncoder(t, newFakeRegistry())
	mk := func(f func(r []change.Value) []change.Value) []change.Value { return f(ordersRow(1)) }
	tests := []struct {
		name   string
		ev     change.Event
		class  Class
		column string
	}{
		{"null in NOT NULL", change.Event{Op: change.OpCreate, After: mk(func(r []change.Value) []change.Value {
			r[3] = change.NullValue
			return r
		})}, ClassValueNotRepresentable, "status"},
		{"absent in after", change.Event{Op: change.OpCreate, After: mk(func(r []change.Value) []change.Value {
			r[5] = change.Value{State: change.Absent}
			return r
		})}, ClassUndecodable, "note"},
		{"absent key in before", change.Event{Op: change.OpDelete, Before: mk(func(r []change.Value) []change.Value {
			r[0] = change.Value{State: change.Absent}
			return r
		})}, ClassUndecodable, "id"},
		{"int32 overflow", change.Event{Op: change.OpCreate, After: mk(func(r []change.Value) []change.Value {
			r[1] = change.Value{Int: math.MaxInt32 + 1}
			return r
		})}, ClassValueNotRepresentable, "customer_id"},
		{"short row", change.Event{Op: change.OpCreate, After: ordersRow(1)[:3]}, ClassUndecodable, ""},
		{"delete without before", change.Event{Op: change.OpDelete}, ClassUndecodable, ""},
		{"unknown op", change.Event{Op: 'x', After: ordersRow(1)}, ClassUndecodable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev
			ev.Table = tbl
			var rec Record
			err := enc.Encode(ctx, &ev, &rec)
			var ce *Error
			if !errors.As(err, &ce) || ce.Class != tc.class || ce.Column != tc.column || ce.Table != "public.orders" {
				t.Fatalf("err = %v (%+v)", err, ce)
			}
		})
	}
}

func TestNoKeyTable(t *testing.T) {
	tbl := &change.Table{Schema: "public", Name: "log", Columns: []change.Column{{Name: "msg", Kind: change.KindString}}}
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	key, _, err := enc.Schemas(tbl)
	if err != nil || key != "" {
		t.Fatalf("key schema %q, %v", key, err)
	}
	var rec Record
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{Str: "hi"}}}, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Key != nil {
		t.Errorf("key = % x", rec.Key)
	}
	if len(reg.ids) != 1 {
		t.Errorf("registered %d subjects, want only the value subject", len(reg.ids))
	}
}

func TestRegistryCalledOncePerTableShape(t *testing.T) {
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	tbl := ordersTable()
	var rec Record
	for i := range 100 {
		if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: ordersRow(int64(i))}, &rec); err != nil {
			t.Fatal(err)
		}
	}
	if reg.calls != 2 || reg.ensures != 2 {
		t.Errorf("register calls %d, ensure calls %d; want 2 and 2", reg.calls, reg.ensures)
	}
	v2 := ordersTable() // a new version with the same shape: no new registration
	v2.Version = 2
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: v2, After: ordersRow(1)}, &rec); err != nil {
		t.Fatal(err)
	}
	if reg.calls != 2 || reg.ensures != 2 {
		t.Errorf("after same-shape version: register calls %d, ensure calls %d", reg.calls, reg.ensures)
	}
}

func TestRejectionIsCachedThenRetried(t *testing.T) {
	reg := newFakeRegistry()
	reg.reject = &Error{Class: ClassSchemaRejected, Err: errors.New("incompatible")}
	now := testNow
	enc, err := New(Config{Pipeline: "p", Connector: "mysql", Now: func() time.Time { return now }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	tbl := ordersTable()
	var rec Record
	for range 3 {
		err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: ordersRow(1)}, &rec)
		var ce *Error
		if !errors.As(err, &ce) || ce.Class != ClassSchemaRejected || ce.Table != "public.orders" || ce.Subject != "public.orders-key" {
			t.Fatalf("err = %v", err)
		}
	}
	if reg.calls != 1 {
		t.Errorf("registry called %d times, want 1", reg.calls)
	}
	reg.reject = nil
	now = now.Add(rejectionRetry + time.Second)
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: ordersRow(1)}, &rec); err != nil {
		t.Fatalf("after the retry delay: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{TopicPrefix: "bad prefix", Compatibility: "SOMETIMES",
		TopicOverrides: map[string]string{"public.t": "no/slash"}}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"Pipeline", "Connector", "Registry", "SOMETIMES", "bad prefix", "public.t"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestTopicOverride(t *testing.T) {
	reg := newFakeRegistry()
	enc, err := New(Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": "orders-v2"}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "orders-v2" {
		t.Errorf("topic %q", rec.Topic)
	}
	if _, ok := reg.ids["orders-v2-value\x00"+reg.schema(2)]; !ok {
		t.Errorf("value subject not orders-v2-value: %v", reg.ids)
	}
	_, v, _ := enc.Schemas(ordersTable())
	if !strings.Contains(v, `"namespace":"orders_v2_`) {
		t.Errorf("namespace not sanitized: %s", v[:120])
	}
	parseSchema(t, v)
}

// TestConcurrentEncode: the encoder is shared by goroutines, each with its own Record.
func TestConcurrentEncode(t *testing.T) {
	reg := newFakeRegistry()
	enc := newTestEncoder(t, reg)
	tables := []*change.Table{ordersTable(), ordersTable(), allKindsTable()}
	tables[1].Name = "orders_archive"
	done := make(chan error)
	for g := range 8 {
		go func() {
			var rec Record
			for i := range 200 {
				tbl := tables[(g+i)%2]
				if err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: ordersRow(int64(i))}, &rec); err != nil {
					done <- err
					return
				}
				if _, err := enc.state(ctx, tables[2]); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if reg.ensures != 6 {
		t.Errorf("ensured %d subjects, want 6", reg.ensures)
	}
}
