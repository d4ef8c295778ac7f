package window

import (
	"testing"
	"time"
)

// In table mode an addition of a row already counted (an on-demand snapshot re-reads every
// row: op r) replaces the row's counted image instead of adding to it.
func TestTableModeRereadRowReplacesIt(t *testing.T) {
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "created_at"}, GroupBy: []Path{{"after", "shop"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour}, Mode: ModeTable, Output: "out",
		Aggs: []AggSpec{{Name: "n", Fn: FnCount}, {Name: "sum", Fn: FnSum, Field: Path{"after", "v"}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	base := int64(1_700_000_040) * sec
	p := NewProcessor(s)
	add := func(row uint64, at, v int64) {
		t.Helper()
		if err := p.Add(Rec{Group: []Value{Long(1)}, T: at, Sign: 1, Row: row, Vals: []Value{Null, Long(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	for row := uint64(1); row <= 3; row++ {
		add(row, base, 10)
	}
	// A snapshot reads the three rows again: row 3 now lies in the next minute (an update the
	// window state missed, e.g. one that came before the job's state began).
	add(1, base, 10)
	add(2, base+sec, 10)
	add(3, base+60*sec, 7)
	// Restored from the changelog, the row index is still there: a second re-read changes nothing.
	q := NewProcessor(s)
	for _, kv := range p.TakeChanges() {
		if err := q.Restore(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	p = q
	add(1, base, 10)
	p.AdvanceTo(base + 3*time.Hour.Microseconds())
	res, _ := p.TakeResults()
	got := map[int64][2]int64{}
	for _, r := range res {
		got[r.Start] = [2]int64{r.Aggs[0].I, r.Aggs[1].I}
	}
	if g := got[base]; g != [2]int64{2, 20} {
		t.Errorf("first minute: count, sum = %v, want [2 20]", g)
	}
	if g := got[base+60*sec]; g != [2]int64{1, 7} {
		t.Errorf("second minute: count, sum = %v, want [1 7]", g)
	}
}

// Records reach the processor with values decoded into one reused buffer: the row images
// table mode keeps (to replace or retract a row later) must keep their own values.
func TestTableModeRowKeepsItsValuesAcrossDecodes(t *testing.T) {
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "created_at"}, GroupBy: []Path{{"after", "shop"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour}, Mode: ModeTable, Output: "out",
		Aggs: []AggSpec{{Name: "sum", Fn: FnSum, Field: Path{"after", "v"}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	base := int64(1_700_000_040) * sec
	p := NewProcessor(s)
	var d recDecoder
	add := func(row uint64, sign, v int64) {
		t.Helper()
		b := marshalRec(nil, &Rec{Group: []Value{Long(1)}, T: base, Sign: sign, Row: row, Vals: []Value{Long(v)}}, Origin{Topic: "in"})
		r, _, err := d.unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r.Row = row
		if err := p.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	add(1, 1, 10)
	add(2, 1, 100)
	add(1, 1, 20) // row 1 again (a snapshot re-read): its old image (10) is retracted
	p.AdvanceTo(base + 2*time.Hour.Microseconds())
	res, _ := p.TakeResults()
	if len(res) != 1 || res[0].Aggs[0] != Long(120) {
		t.Fatalf("results %+v, want one window with sum 120", res)
	}
}
