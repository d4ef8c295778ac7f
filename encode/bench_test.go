package encode

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// BenchmarkEncode encodes one 6-column row (bigint key, integer, numeric(10,2), enum,
// timestamptz, nullable text) into a reused Record.
func BenchmarkEncode(b *testing.B) {
	enc := newTestEncoder(b, newFakeRegistry())
	ev := &change.Event{Op: change.OpUpdate, Table: ordersTable(), Before: ordersRow(1), After: ordersRow(1),
		TxID: "771", Pos: change.Position{Tx: 1 << 36, Index: 7}, CommitTime: testNow}
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
}

// BenchmarkEncodeWideDecimal exercises the big-number path of a numeric(38,10).
func BenchmarkEncodeWideDecimal(b *testing.B) {
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64},
		{Name: "amount", Kind: change.KindDecimal, Precision: 38, Scale: 10},
	}}
	enc := newTestEncoder(b, newFakeRegistry())
	ev := &change.Event{Op: change.OpCreate, Table: tbl,
		After: []change.Value{{Int: 1}, {Str: "-1234567890123456789012345678.0123456789"}}}
	var rec Record
	if err := enc.Encode(ctx, ev, &rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Encode(ctx, ev, &rec); err != nil {
			b.Fatal(err)
		}
	}
}
