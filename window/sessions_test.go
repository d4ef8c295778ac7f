package window

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// With emit: updates, a session whose start moved, or that merged into another, leaves no
// stale result: its old key gets a tombstone.
func TestSessionUpdatesTombstoneMovedKeys(t *testing.T) {
	s := spec(WindowSpec{Type: Session, Gap: 10 * time.Second, Grace: time.Hour})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	s.EmitUpdates = true
	p := NewProcessor(s)
	compacted := map[int64]string{} // the output topic as compaction keeps it, by window_start
	step := func(ats ...int64) {
		t.Helper()
		for _, at := range ats {
			if err := p.Add(Rec{Group: []Value{Long(1)}, T: at * sec, Sign: 1, Vals: []Value{Null}}); err != nil {
				t.Fatal(err)
			}
		}
		res, _ := p.TakeResults()
		for _, r := range res {
			if r.Tombstone {
				delete(compacted, r.Start/sec)
			} else {
				compacted[r.Start/sec] = fmt.Sprintf("[%d,%d] n=%s", r.Start/sec, r.End/sec, r.Aggs[0].Text())
			}
		}
	}
	step(10) // [10,10]
	step(5)  // moves to [5,10]
	step(30) // [30,30]
	step(20) // merges [5,10] and [30,30] into [5,30]
	var got []string
	for _, v := range compacted {
		got = append(got, v)
	}
	sort.Strings(got)
	if len(got) != 1 || got[0] != "[5,30] n=4" {
		t.Errorf("the compacted output holds %q, want only [5,30] n=4", got)
	}
}
