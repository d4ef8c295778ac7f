package publish

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// Config.Latency (the flight recorder's trigger) hears, once per committed batch, the oldest
// source commit's end-to-end latency; a batch without source commit times is not reported.
func TestLatencyHookReportsTheBatchWorst(t *testing.T) {
	var got []time.Duration
	s, _ := newSink(t, Config{Ack: func(uint64) {}, Latency: func(d time.Duration) { got = append(got, d) }})
	tbl := &change.Table{Schema: "public", Name: "t", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	ctx := context.Background()
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Second, 1 * time.Second} {
		tx := uint64(100 + 10*i)
		if err := s.Add(ctx, &change.Item{Event: change.Event{Op: change.OpCreate, Table: tbl,
			After: []change.Value{{Int: int64(i)}}, Pos: change.Position{Tx: tx}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: tx, Index: 1}, AckPosition: tx + 1,
			Time: now.Add(-age)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] < 3*time.Second || got[0] > 30*time.Second {
		t.Fatalf("latency hook heard %v, want one value of at least 3s (the older transaction)", got)
	}
	// A position-only batch (no source commit time) is not a latency.
	if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: 200, Index: 0}, AckPosition: 201}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("a batch without commit times was reported: %v", got)
	}
}
