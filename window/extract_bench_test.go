package window

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
)

// BenchmarkExtract reads the job's fields (time, group, a decimal to sum) out of one encoded
// change record of a table with columns the job skips: the per-record cost of the input side.
func BenchmarkExtract(b *testing.B) {
	tbl := &change.Table{Database: "shop", Schema: "public", Name: "orders", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{
			{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "customer_id", Kind: change.KindInt32, Nullable: true, SourceType: "integer"},
			{Name: "note", Kind: change.KindString, Nullable: true, SourceType: "text"},
			{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true, SourceType: "numeric(10,2)"},
			{Name: "created_at", Kind: change.KindTimestampTZ, Nullable: true, SourceType: "timestamp with time zone"},
		}}
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop"}, nopRegistry{})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := change.Event{Op: change.OpUpdate, Table: tbl, Pos: change.Position{Tx: 1}, CommitTime: at, TxID: "1",
		Before: []change.Value{{State: change.Present, Int: 1}, {State: change.Present, Int: 7}, {State: change.Present, Str: "a note of some length"},
			{State: change.Present, Str: "12.50"}, {State: change.Present, Int: at.UnixMicro()}},
		After: []change.Value{{State: change.Present, Int: 1}, {State: change.Present, Int: 7}, {State: change.Present, Str: "a note of some length"},
			{State: change.Present, Str: "13.75"}, {State: change.Present, Int: at.UnixMicro()}}}
	var rec encode.Record
	if err := enc.Encode(context.Background(), &ev, &rec); err != nil {
		b.Fatal(err)
	}
	_, value, err := enc.Schemas(tbl)
	if err != nil {
		b.Fatal(err)
	}
	env, err := avro.ParseWithCache(value, "", &avro.SchemaCache{})
	if err != nil {
		b.Fatal(err)
	}
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "created_at"}, GroupBy: []Path{{"after", "customer_id"}},
		Aggs: []AggSpec{{Name: "n", Fn: FnCount}, {Name: "revenue", Fn: FnSum, Field: Path{"after", "total"}}}, Mode: ModeTable}
	x := newExtractor(s)
	p, err := x.compile(1, env)
	if err != nil {
		b.Fatal(err)
	}
	body := rec.Value[5:]
	out, err := x.extract(p, body, 1, nil)
	if err != nil || len(out) != 2 || out[1].Vals[1].R.FloatString(2) != "13.75" || out[1].Group[0].I != 7 {
		b.Fatalf("extract: %v, %+v", err, out)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, _ = x.extract(p, body, uint64(i), out[:0])
	}
}
