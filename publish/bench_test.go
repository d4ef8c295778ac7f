package publish

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// BenchmarkSinkAdd measures the sink's cost per change: encoding, producing and committing
// creates of a four-column row (as the catch-up benchmark's bench_rows) in source
// transactions of 1,000 rows, against the in-process Kafka (whose own work is included, the
// same before and after a change of the sink).
//
//	go test -run '^$' -bench BenchmarkSinkAdd -benchmem ./publish/
func BenchmarkSinkAdd(b *testing.B) {
	s, _ := newSink(b, Config{})
	s.cfg.BatchMaxEvents, s.cfg.BatchMaxBytes = 10_000, 16<<20
	rows := &change.Table{Schema: "public", Name: "bench_rows", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "a", Kind: change.KindInt32, Nullable: true},
			{Name: "b", Kind: change.KindString, Nullable: true}, {Name: "c", Kind: change.KindTimestampTZ, Nullable: true}}}
	ctx := context.Background()
	text := strings.Repeat("x", 40)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	it := &change.Item{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, idx := uint64(i/1000+1), uint32(i%1000)
		it.Commit = nil
		it.Event = change.Event{Op: change.OpCreate, Table: rows, Pos: change.Position{Tx: tx, Index: idx}, CommitTime: at,
			After: []change.Value{{State: change.Present, Int: int64(i)}, {State: change.Present, Int: int64(i % 1000)},
				{State: change.Present, Str: text}, {State: change.Present, Int: at.UnixMicro()}}}
		if err := s.Add(ctx, it); err != nil {
			b.Fatal(err)
		}
		if idx == 999 || i == b.N-1 {
			if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: tx, Index: 1000}, AckPosition: tx}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}
