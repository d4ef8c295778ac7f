package window

import (
	"testing"
	"time"
)

// Stream time is the minimum over the input partitions of the largest event time each
// reached: a partition read ahead of another closes no window the other still feeds; an input
// partition that is expected holds stream time until it reports (or is released); the
// per-partition times survive a restore from the changelog.
func TestStreamTimeIsMinimumOverInputPartitions(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	in0, in1, in2 := Origin{Topic: "in", Partition: 0}, Origin{Topic: "in", Partition: 1}, Origin{Topic: "in", Partition: 2}
	p := NewProcessor(s)
	p.Expect([]Origin{in0, in1, in2})
	base := int64(1_700_000_040) * sec // a minute's start
	add := func(o Origin, at int64) {
		t.Helper()
		if err := p.Add(Rec{Group: []Value{Long(1)}, T: at, Sign: 1, Vals: []Value{Null}, Origin: o}); err != nil {
			t.Fatal(err)
		}
	}
	// Partition 0's chunk of a backlog: ten minutes.
	for m := int64(0); m < 10; m++ {
		add(in0, base+m*60*sec)
	}
	if res, late := p.TakeResults(); len(res) != 0 || len(late) != 0 {
		t.Fatalf("partitions 1 and 2 have not reported: nothing may close, got %d results, %d late", len(res), len(late))
	}
	// Partition 1 reports its first minute; partition 2 was read and had no event time.
	add(in1, base+5*sec)
	p.Watermark(in2, noTime)
	if res, late := p.TakeResults(); len(res) != 0 || len(late) != 0 {
		t.Fatalf("stream time is partition 1's (base+5s): nothing may close, got %d results, %d late", len(res), len(late))
	}
	// Partition 1 moves on: the first minute closes (end + grace = base+70s).
	p.Watermark(in1, base+70*sec)
	res, late := p.TakeResults()
	if len(res) != 1 || res[0].Start != base || res[0].Aggs[0].I != 2 || len(late) != 0 {
		t.Fatalf("want the first minute with 2 events, got %+v, late %d", res, len(late))
	}
	if st, _ := p.StreamTime(); st != base+70*sec {
		t.Fatalf("stream time %d, want %d", st, base+70*sec)
	}

	// Restored from the changelog, the processor knows each partition's time.
	q := NewProcessor(s)
	for _, kv := range p.TakeChanges() {
		if err := q.Restore(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	q.Expect([]Origin{in0, in1, in2})
	if len(q.wm.waiting) != 0 {
		t.Fatalf("after a restore, partitions still waited for: %v", q.wm.waiting)
	}
	if err := q.Add(Rec{Group: []Value{Long(1)}, T: base + 65*sec, Sign: 1, Vals: []Value{Null}, Origin: in1}); err != nil {
		t.Fatal(err)
	}
	if _, late := q.TakeResults(); len(late) != 0 {
		t.Fatalf("partition 1's record at base+65s went late after a restore")
	}
	q.Watermark(in1, base+10*60*sec) // partition 0 is at base+9m: stream time follows it
	res, _ = q.TakeResults()
	if len(res) != 7 { // minutes 1..7 close (minute 8 ends at base+9m, + grace)
		t.Fatalf("want 7 windows closed at stream time base+9m, got %d", len(res))
	}
}
