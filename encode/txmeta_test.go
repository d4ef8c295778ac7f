package encode

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// BEGIN and END records decode with the registered schemas to Debezium's fields.
func TestTxBoundaryRecords(t *testing.T) {
	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	ctx := context.Background()
	ts := time.UnixMilli(1714979289123)
	var rec Record
	if err := e.EncodeTxBoundary(ctx, TxBoundary{Topic: "shop.transaction", ID: "771", TS: ts}, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "shop.transaction" {
		t.Fatalf("topic %q", rec.Topic)
	}
	if k := decodeFramed(t, reg, rec.Key); k["id"] != "771" {
		t.Fatalf("BEGIN key %v", k)
	}
	begin := decodeFramed(t, reg, rec.Value)
	want := map[string]any{"status": "BEGIN", "id": "771", "event_count": nil, "data_collections": nil, "ts_ms": int64(1714979289123)}
	if !reflect.DeepEqual(begin, want) {
		t.Fatalf("BEGIN = %v\nwant %v", begin, want)
	}
	end := TxBoundary{Topic: "shop.transaction", ID: "771", End: true, TS: ts, Events: 3,
		Collections: []TxCollection{{"public.orders", 2}, {"public.items", 1}}}
	if err := e.EncodeTxBoundary(ctx, end, &rec); err != nil {
		t.Fatal(err)
	}
	got := decodeFramed(t, reg, rec.Value)
	want = map[string]any{"status": "END", "id": "771", "event_count": int64(3), "ts_ms": int64(1714979289123),
		"data_collections": []any{
			map[string]any{"data_collection": "public.orders", "event_count": int64(2)},
			map[string]any{"data_collection": "public.items", "event_count": int64(1)},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("END = %v\nwant %v", got, want)
	}
	if reg.schema(1) == "" || reg.calls != 2 {
		t.Errorf("registry calls %d, want the two metadata schemas registered once", reg.calls)
	}
	if err := e.EncodeTxBoundary(ctx, TxBoundary{Topic: "shop.transaction"}, &rec); err == nil {
		t.Error("a boundary without an id was encoded")
	}
}

// The tracker numbers a transaction's events in all and per table, from 1, and starts over
// at the next transaction; the envelope carries its orders.
func TestTxTrackerOrders(t *testing.T) {
	orders, items := ordersTable(), &change.Table{Schema: "public", Name: "items", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	var tr TxTracker
	seq := []*change.Table{orders, items, orders, orders, items}
	var got []TxOrder
	for i, tbl := range seq {
		o, first := tr.Next(&change.Event{Table: tbl, TxID: "9", Pos: change.Position{Tx: 500, Index: uint32(i)}})
		if first != (i == 0) {
			t.Errorf("event %d: first = %v", i, first)
		}
		got = append(got, o)
	}
	want := []TxOrder{{1, 1}, {2, 1}, {3, 2}, {4, 3}, {5, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("orders %v, want %v", got, want)
	}
	if id, _, ok := tr.Open(500); !ok || id != "9" {
		t.Fatalf("Open(500) = %q, %v", id, ok)
	}
	end := tr.End("p.transaction", time.Time{})
	if end.Events != 5 || !reflect.DeepEqual(end.Collections, []TxCollection{{"public.orders", 3}, {"public.items", 2}}) {
		t.Fatalf("END %+v", end)
	}
	if _, _, ok := tr.Open(500); ok {
		t.Fatal("the transaction is still open after End")
	}
	if o, first := tr.Next(&change.Event{Table: items, TxID: "10", Pos: change.Position{Tx: 600}}); !first || o != (TxOrder{1, 1}) {
		t.Fatalf("next transaction starts at %v (first %v)", o, first)
	}

	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	var rec Record
	ev := &change.Event{Op: change.OpCreate, Table: orders, After: ordersRow(1), TxID: "9", Pos: change.Position{Tx: 500, Index: 7}}
	if err := e.EncodeInTx(context.Background(), ev, TxOrder{Total: 4, DataCollection: 3}, &rec); err != nil {
		t.Fatal(err)
	}
	tx := decodeFramed(t, reg, rec.Value)["transaction"]
	if !reflect.DeepEqual(tx, map[string]any{"id": "9", "total_order": int64(4), "data_collection_order": int64(3)}) {
		t.Fatalf("transaction block %v", tx)
	}
}

// The tracker runs for every event of a transaction: it must not allocate once a
// transaction's tables are known.
func TestTxTrackerDoesNotAllocate(t *testing.T) {
	orders := ordersTable()
	var tr TxTracker
	ev := &change.Event{Table: orders, TxID: "9", Pos: change.Position{Tx: 500}}
	tr.Next(ev)
	if n := testing.AllocsPerRun(1000, func() { tr.Next(ev) }); n != 0 {
		t.Fatalf("TxTracker.Next allocates %.1f times per event", n)
	}
}
