package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
)

// decodeValue decodes a Confluent-framed value with schema, union wrappers left in place.
func decodeValue(t *testing.T, schema string, b []byte) map[string]any {
	t.Helper()
	sch, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(sch, b[5:], &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Transaction metadata through a split transaction and a crash: the second source transaction
// is split over Kafka transactions, the session dies mid-way, and the next session replays it
// from its start. The transaction topic holds BEGIN and END of each transaction exactly once,
// END counts every event in all and per table, and every data event carries its orders.
func TestTransactionMetadataSurvivesSplitAndRestart(t *testing.T) {
	c, _ := newCluster(t)
	mem := NewMemory()
	cfg := Config{Ack: func(uint64) {}, TransactionTopic: "p.transaction"}
	orders := &change.Table{Schema: "public", Name: "orders", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	items := &change.Table{Schema: "public", Name: "items", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	// tx 100: orders, items. tx 200: orders ×3, items ×4, interleaved.
	txs := map[uint64][]*change.Table{
		100: {orders, items},
		200: {orders, items, items, orders, items, orders, items},
	}
	events := func(tx uint64) []*change.Item {
		var out []*change.Item
		for i, tbl := range txs[tx] {
			out = append(out, &change.Item{Event: change.Event{Op: change.OpCreate, Table: tbl, TxID: fmt.Sprint(tx / 10),
				After: []change.Value{{Int: int64(tx) + int64(i)}}, Pos: change.Position{Tx: tx, Index: uint32(i)}}})
		}
		return append(out, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: tx, Index: uint32(len(txs[tx]))}, AckPosition: tx + 1}})
	}
	ctx := context.Background()
	s := openSink(t, c, cfg, mem)
	s.cfg.BatchMaxEvents = 3 // tx 200 is split every 3 events
	for _, it := range events(100) {
		if err := s.Add(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range events(200)[:5] { // two commits happen within tx 200, then the session dies
		if err := s.Add(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = openSink(t, c, cfg, mem)
	s.cfg.BatchMaxEvents = 3
	for _, it := range events(200) { // the source replays tx 200 from its start
		if err := s.Add(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	_, valSchema := encode.TxMetaSchemas()
	var got []string
	for _, r := range readCommitted(t, c, "p.transaction") {
		v := decodeValue(t, valSchema, r.Value)
		line := fmt.Sprintf("%s %s", v["status"], v["id"])
		if v["status"] == "END" {
			line += fmt.Sprintf(" %v", v["event_count"])
			dcs := v["data_collections"]
			if m, ok := dcs.(map[string]any); ok { // a union branch, named
				dcs = m["array"]
			}
			for _, dc := range dcs.([]any) {
				m := dc.(map[string]any)
				line += fmt.Sprintf(" %s=%d", m["data_collection"], m["event_count"])
			}
		}
		got = append(got, line)
	}
	want := []string{"BEGIN 10", "END 10 2 public.orders=1 public.items=1", "BEGIN 20", "END 20 7 public.orders=3 public.items=4"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transaction topic:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Each data event once, with its orders.
	for _, tbl := range []*change.Table{orders, items} {
		_, vs, err := s.enc.Schemas(tbl)
		if err != nil {
			t.Fatal(err)
		}
		var orders []string
		for _, r := range readCommitted(t, c, "p.public."+tbl.Name) {
			m := decodeValue(t, vs, r.Value)["transaction"].(map[string]any)
			if inner, ok := m["io.cdcd.Transaction"].(map[string]any); ok { // a union branch, named
				m = inner
			}
			orders = append(orders, fmt.Sprintf("%s:%d/%d", m["id"], m["total_order"], m["data_collection_order"]))
		}
		wantOrders := map[string]string{
			"orders": "10:1/1 20:1/1 20:4/2 20:6/3",
			"items":  "10:2/1 20:2/1 20:3/2 20:5/3 20:7/4",
		}[tbl.Name]
		if strings.Join(orders, " ") != wantOrders {
			t.Errorf("%s: orders %s, want %s", tbl.Name, strings.Join(orders, " "), wantOrders)
		}
	}
}
