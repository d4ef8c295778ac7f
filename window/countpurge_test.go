package window

import (
	"testing"
	"time"
)

// applyChanges plays a processor's changelog records into changelog as compaction keeps it.
func applyChanges(changelog map[string][]byte, kvs []KV) {
	for _, kv := range kvs {
		if kv.Value == nil {
			delete(changelog, string(kv.Key))
		} else {
			changelog[string(kv.Key)] = kv.Value
		}
	}
}

func countSpec(events int) *Spec {
	s := spec(WindowSpec{Type: Count, Events: events})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	return s
}

func addCountRec(t *testing.T, p *Processor, group, at int64) {
	t.Helper()
	if err := p.Add(Rec{Group: []Value{Long(group)}, T: at, Sign: 1, Vals: []Value{Null}}); err != nil {
		t.Fatal(err)
	}
}

// Count-window groups whose last window closed and that saw no record for countRetention of
// stream time are dropped: state is bounded by the groups active within the retention, not
// by every group ever seen.
func TestCountWindowGroupsArePurged(t *testing.T) {
	p := NewProcessor(countSpec(2))
	changelog := map[string][]byte{}
	const groups = 20_000
	step := (30 * 24 * time.Hour / groups).Microseconds() // 20,000 groups over 30 days
	for i := int64(0); i < groups; i++ {
		addCountRec(t, p, i, i*step)
		addCountRec(t, p, i, i*step+1)
		if i%100 == 0 {
			p.TakeResults()
			applyChanges(changelog, p.TakeChanges())
		}
	}
	p.TakeResults()
	applyChanges(changelog, p.TakeChanges())
	// Groups within the last countRetention of stream time are kept, older ones dropped.
	maxKept := int(countRetention.Microseconds()/step) + 2
	if len(p.groups) > maxKept {
		t.Errorf("%d groups held after %d distinct groups over 30 days, want at most %d (those seen within %s)", len(p.groups), groups, maxKept, countRetention)
	}
	if len(changelog) > maxKept+2 {
		t.Errorf("the changelog holds %d records, want at most %d", len(changelog), maxKept+2)
	}
	size := 0
	for k, v := range changelog {
		size += len(k) + len(v)
	}
	if p.StateBytes() != size {
		t.Errorf("StateBytes %d, the changelog holds %d bytes", p.StateBytes(), size)
	}
}

// After a restore, a group within the retention goes on numbering its windows; a group that
// was purged starts again at window_index 0 (with a new window_start, so under a new key); a
// group with a window still open is never purged, however long it is quiet.
func TestCountWindowPurgeSurvivesRestore(t *testing.T) {
	s := countSpec(2)
	p := NewProcessor(s)
	changelog := map[string][]byte{}
	day := (24 * time.Hour).Microseconds()
	addCountRec(t, p, 1, 0) // group 1: window 0 closes, then quiet
	addCountRec(t, p, 1, 1)
	addCountRec(t, p, 3, 2) // group 3: a window open, then quiet
	p.TakeResults()
	applyChanges(changelog, p.TakeChanges())
	later := countRetention.Microseconds() + day
	addCountRec(t, p, 2, later) // group 2: window 0 closes just now
	addCountRec(t, p, 2, later+1)
	p.TakeResults()
	applyChanges(changelog, p.TakeChanges())
	if _, ok := p.groups[string(appendKey(nil, Long(1)))]; ok {
		t.Error("group 1, quiet for longer than the retention with no window open, is still held")
	}
	q := NewProcessor(s)
	for k, v := range changelog {
		if err := q.Restore([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []int64{1, 2} {
		addCountRec(t, q, g, later+10)
		addCountRec(t, q, g, later+11)
	}
	addCountRec(t, q, 3, later+12)
	res, _ := q.TakeResults()
	got := map[int64]int64{}
	for _, r := range res {
		got[r.Group[0].I] = r.Index
	}
	if len(res) != 3 || got[1] != 0 || got[2] != 1 || got[3] != 0 {
		t.Errorf("after a restore want group 1 at window 0 (purged), group 2 at window 1, group 3's window 0 completed; got %+v", res)
	}
	// The restored processor purges group 2 too once it is quiet long enough.
	q.AdvanceTo(later + 11 + countRetention.Microseconds() + 1)
	if _, ok := q.groups[string(appendKey(nil, Long(2)))]; ok {
		t.Error("restored group 2 is not purged after the retention")
	}
}

// A busy group keeps one entry in the queue of quiet groups, not one per window it closed:
// the bookkeeping of the purge is bounded by the groups, like the state.
func TestCountWindowPurgeQueueBoundedByGroups(t *testing.T) {
	p := NewProcessor(countSpec(2))
	for i := int64(0); i < 19_998; i++ { // 6,666 events each: no window left open
		addCountRec(t, p, i%3, i)
	}
	p.TakeResults()
	p.TakeChanges()
	if len(p.closedQ) > 3 {
		t.Errorf("%d entries queued for 3 groups", len(p.closedQ))
	}
	// Quiet for the retention after their last close, all three go.
	p.AdvanceTo(19_997 + countRetention.Microseconds())
	if len(p.groups) != 0 || len(p.closedQ) != 0 {
		t.Errorf("after the retention: %d groups, %d queued; want none", len(p.groups), len(p.closedQ))
	}
}
