package window

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("CDCD_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		s = n
	}
	t.Logf("seed %d (replay with CDCD_TEST_SEED=%d)", s, s)
	return s
}

// allAggs covers every function; Vals of a record follow this order.
var allAggs = []AggSpec{
	{Name: "n", Fn: FnCount},
	{Name: "qty", Fn: FnSum, Field: Path{"after", "qty"}},
	{Name: "revenue", Fn: FnSum, Field: Path{"after", "total"}},
	{Name: "lo", Fn: FnMin, Field: Path{"after", "total"}},
	{Name: "hi", Fn: FnMax, Field: Path{"after", "qty"}},
	{Name: "mean", Fn: FnAvg, Field: Path{"after", "qty"}},
	{Name: "buyers", Fn: FnCountDistinct, Field: Path{"after", "buyer"}},
	{Name: "first_buyer", Fn: FnFirst, Field: Path{"after", "buyer"}},
	{Name: "last_buyer", Fn: FnLast, Field: Path{"after", "buyer"}},
}

const sec = int64(time.Second / time.Microsecond)

// genEvents makes n records over a few groups with event times that mostly grow, sometimes
// jump back by up to maxBack (some of which are late).
func genEvents(rng *rand.Rand, n int, maxBack int64) []Rec {
	recs := make([]Rec, 0, n)
	t := int64(1_700_000_000) * sec
	for i := 0; i < n; i++ {
		t += rng.Int64N(3 * sec)
		et := t
		if rng.IntN(5) == 0 {
			et -= rng.Int64N(maxBack)
		}
		var qty Value
		if rng.IntN(10) > 0 { // some NULLs
			qty = Long(rng.Int64N(100) - 20)
		}
		total := Decimal(big.NewRat(rng.Int64N(100000), 100), 2)
		recs = append(recs, Rec{
			Group: []Value{Long(rng.Int64N(4))},
			T:     et, Sign: 1, Seq: uint64(i),
			Vals: []Value{Null, qty, total, total, qty, qty, String(fmt.Sprint("b", rng.IntN(6))), String(fmt.Sprint("b", rng.IntN(6))), String(fmt.Sprint("b", rng.IntN(6)))},
		})
	}
	return recs
}

// oracleAgg computes the aggregates of recs directly (no incremental state).
func oracleAgg(recs []Rec) []Value {
	out := make([]Value, len(allAggs))
	out[0] = Long(int64(len(recs)))
	var qty, nQty int64
	rev := new(big.Rat)
	var lo, hi Value
	distinct := map[string]bool{}
	var first, last *Rec
	for i := range recs {
		r := &recs[i]
		if q := r.Vals[1]; !q.IsNull() {
			qty += q.I
			nQty++
			if hi.IsNull() || q.I > hi.I {
				hi = q
			}
		}
		rev.Add(rev, r.Vals[2].R)
		if lo.IsNull() || r.Vals[3].R.Cmp(lo.R) < 0 {
			lo = r.Vals[3]
		}
		distinct[r.Vals[6].S] = true
		if first == nil || r.T < first.T || r.T == first.T && r.Seq < first.Seq {
			first = r
		}
		if last == nil || r.T > last.T || r.T == last.T && r.Seq > last.Seq {
			last = r
		}
	}
	if nQty > 0 {
		out[1] = Long(qty)
		out[5] = Double(float64(qty) / float64(nQty))
	}
	out[2] = Decimal(rev, 2)
	out[3] = lo
	out[4] = hi
	out[6] = Long(int64(len(distinct)))
	out[7] = first.Vals[7]
	out[8] = last.Vals[8]
	return out
}

func resultKey(group []Value, start int64) string {
	return fmt.Sprintf("%s@%d", group[0].Text(), start)
}

func valuesText(vs []Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Text()
	}
	return strings.Join(parts, ",")
}

// oracleTimed replays recs with the definition of time windows: stream time is the largest
// event time seen; a record misses every window whose end + grace stream time has reached.
func oracleTimed(recs []Rec, size, adv, grace int64) (closed map[string]string, late int) {
	st := int64(-1 << 62)
	in := map[string][]Rec{}
	groups := map[string][]Value{}
	ends := map[string]int64{}
	for _, r := range recs {
		st = max(st, r.T)
		missed := false
		for start := floorDiv(r.T, adv)*adv - size + adv; start <= r.T; start += adv {
			if start+size <= r.T {
				continue
			}
			if start+size+grace <= st {
				missed = true
				continue
			}
			k := resultKey(r.Group, start)
			in[k] = append(in[k], r)
			groups[k] = r.Group
			ends[k] = start + size
		}
		if missed {
			late++
		}
	}
	closed = map[string]string{}
	for k, rs := range in {
		if ends[k]+grace <= st {
			closed[k] = valuesText(oracleAgg(rs))
		}
	}
	return closed, late
}

func runProcessor(t *testing.T, spec *Spec, recs []Rec, flushEvery int) (final map[string]string, updates map[string]string, late []LateRec) {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	p := NewProcessor(spec)
	final, updates = map[string]string{}, map[string]string{}
	take := func() {
		res, l := p.TakeResults()
		late = append(late, l...)
		for _, r := range res {
			start := r.Start
			if spec.Window.Type == Count {
				start = r.Index
			}
			k := resultKey(r.Group, start)
			if r.Final {
				if _, dup := final[k]; dup {
					t.Fatalf("window %s emitted twice", k)
				}
				final[k] = valuesText(r.Aggs)
			} else {
				updates[k] = valuesText(r.Aggs)
			}
		}
	}
	for i, r := range recs {
		if err := p.Add(r); err != nil {
			t.Fatal(err)
		}
		if i%flushEvery == 0 {
			take()
		}
	}
	take()
	return final, updates, late
}

func spec(w WindowSpec) *Spec {
	return &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"source", "ts_ms"}, GroupBy: []Path{{"after", "shop"}},
		Window: w, Aggs: allAggs, Mode: ModeEvents, Output: "out", Late: "late"}
}

func TestTimeWindowsMatchOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 1))
	for _, c := range []struct {
		name       string
		w          WindowSpec
		size, adv  int64
		maxBack    int64
		flushEvery int
	}{
		{"tumbling", WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second}, 60 * sec, 60 * sec, 40 * sec, 1},
		{"tumbling no grace", WindowSpec{Type: Tumbling, Size: 30 * time.Second}, 30 * sec, 30 * sec, 20 * sec, 7},
		{"hopping", WindowSpec{Type: Hopping, Size: time.Minute, Advance: 20 * time.Second, Grace: 5 * time.Second}, 60 * sec, 20 * sec, 30 * sec, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := genEvents(rng, 3000, c.maxBack)
			s := spec(c.w)
			final, _, late := runProcessor(t, s, recs, c.flushEvery)
			want, wantLate := oracleTimed(recs, c.size, c.adv, int64(c.w.Grace/time.Microsecond))
			if len(want) < 10 || wantLate == 0 {
				t.Fatalf("weak test data: %d closed windows, %d late", len(want), wantLate)
			}
			compareResults(t, final, want)
			if len(late) != wantLate {
				t.Errorf("late records: got %d, want %d", len(late), wantLate)
			}
		})
	}
}

func compareResults(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] && bad < 5 {
			t.Errorf("window %s:\n got  %s\n want %s", k, got[k], want[k])
			bad++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && bad < 10 {
			t.Errorf("window %s emitted but not closed in the oracle: %s", k, got[k])
			bad++
		}
	}
}

// Session windows over input whose disorder stays within grace: the sessions are exactly the
// clusters of each group's event times whose neighbours are at most gap apart.
func TestSessionWindowsMatchClusters(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 2))
	gap, grace := 20*sec, 15*sec
	recs := make([]Rec, 0, 2000)
	base := int64(1_700_000_000) * sec
	st := base
	for i := 0; i < 2000; i++ {
		st += rng.Int64N(12 * sec)
		if rng.IntN(8) == 0 {
			st += 40 * sec // a pause that ends sessions
		}
		et := st - rng.Int64N(grace-1) // disorder within grace: never late
		recs = append(recs, Rec{Group: []Value{Long(rng.Int64N(3))}, T: et, Sign: 1, Seq: uint64(i),
			Vals: []Value{Null, Long(1), Decimal(big.NewRat(1, 1), 2), Decimal(big.NewRat(1, 1), 2), Long(1), Long(1), String("x"), String("x"), String("x")}})
	}
	s := spec(WindowSpec{Type: Session, Gap: time.Duration(gap) * time.Microsecond, Grace: time.Duration(grace) * time.Microsecond})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	for i := range recs {
		recs[i].Vals = recs[i].Vals[:1]
	}
	final, _, late := runProcessor(t, s, recs, 5)
	if len(late) != 0 {
		t.Fatalf("%d late records from input within grace", len(late))
	}
	maxT := int64(0)
	byGroup := map[int64][]int64{}
	for _, r := range recs {
		byGroup[r.Group[0].I] = append(byGroup[r.Group[0].I], r.T)
		maxT = max(maxT, r.T)
	}
	want := map[string]string{}
	for g, ts := range byGroup {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		start, n := ts[0], 1
		for i := 1; i <= len(ts); i++ {
			if i < len(ts) && ts[i]-ts[i-1] <= gap {
				n++
				continue
			}
			last := ts[i-1]
			if last+gap+grace <= maxT {
				want[resultKey([]Value{Long(g)}, start)] = strconv.Itoa(n)
			}
			if i < len(ts) {
				start, n = ts[i], 1
			}
		}
	}
	if len(want) < 20 {
		t.Fatalf("weak test data: %d sessions", len(want))
	}
	compareResults(t, final, want)
}

func TestCountWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 3))
	recs := genEvents(rng, 1000, 5*sec)
	s := spec(WindowSpec{Type: Count, Events: 7})
	final, _, late := runProcessor(t, s, recs, 4)
	if len(late) != 0 {
		t.Fatalf("count windows have no late records, got %d", len(late))
	}
	in := map[int64][]Rec{}
	want := map[string]string{}
	idx := map[int64]int64{}
	for _, r := range recs {
		g := r.Group[0].I
		in[g] = append(in[g], r)
		if len(in[g]) == 7 {
			want[resultKey(r.Group, idx[g])] = valuesText(oracleAgg(in[g]))
			idx[g]++
			in[g] = nil
		}
	}
	compareResults(t, final, want)
}

// With emit updates, the last update of each window equals what emit final gives.
func TestEmitUpdatesConvergeToFinal(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 4))
	recs := genEvents(rng, 2000, 20*sec)
	w := WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 30 * time.Second}
	final, _, _ := runProcessor(t, spec(w), recs, 1)
	su := spec(w)
	su.EmitUpdates = true
	finalU, updates, _ := runProcessor(t, su, recs, 13)
	if len(finalU) != 0 {
		t.Fatalf("emit updates produced %d final results", len(finalU))
	}
	for k, v := range final {
		if updates[k] != v {
			t.Errorf("window %s: last update %s, final %s", k, updates[k], v)
		}
	}
}

// Table mode: rows are inserted, updated (value and time column) and deleted; with every
// window closed at the end, the results equal an aggregation of the final table.
func TestTableModeEqualsTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 5))
	type row struct {
		shop int64
		t    int64
		qty  int64
	}
	table := map[int]row{}
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "created_at"}, GroupBy: []Path{{"after", "shop"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour}, Mode: ModeTable, Output: "out",
		Aggs: []AggSpec{{Name: "n", Fn: FnCount}, {Name: "qty", Fn: FnSum, Field: Path{"after", "qty"}},
			{Name: "hi", Fn: FnMax, Field: Path{"after", "qty"}}, {Name: "lo", Fn: FnMin, Field: Path{"after", "qty"}},
			{Name: "d", Fn: FnCountDistinct, Field: Path{"after", "qty"}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p := NewProcessor(s)
	base := int64(1_700_000_000) * sec
	seq := uint64(0)
	rec := func(r row, sign int64) Rec {
		seq++
		v := Long(r.qty)
		return Rec{Group: []Value{Long(r.shop)}, T: r.t, Sign: sign, Seq: seq, Vals: []Value{Null, v, v, v, v}}
	}
	for i := 0; i < 5000; i++ {
		id := rng.IntN(300)
		old, exists := table[id]
		switch {
		case !exists:
			r := row{shop: rng.Int64N(3), t: base + rng.Int64N(20*60*sec), qty: rng.Int64N(50)}
			table[id] = r
			if err := p.Add(rec(r, 1)); err != nil {
				t.Fatal(err)
			}
		case rng.IntN(4) == 0:
			delete(table, id)
			if err := p.Add(rec(old, -1)); err != nil {
				t.Fatal(err)
			}
		default:
			r := old
			r.qty = rng.Int64N(50)
			if rng.IntN(3) == 0 {
				r.t = base + rng.Int64N(20*60*sec)
			}
			table[id] = r
			if err := p.Add(rec(old, -1)); err != nil {
				t.Fatal(err)
			}
			if err := p.Add(rec(r, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.AdvanceTo(base + 100*60*sec)
	res, late := p.TakeResults()
	if len(late) != 0 {
		t.Fatalf("%d late records although grace covers the whole input", len(late))
	}
	got := map[string]string{}
	for _, r := range res {
		if r.Events == 0 {
			continue // every row of the window was retracted
		}
		got[resultKey(r.Group, r.Start)] = valuesText(r.Aggs)
	}
	type agg struct {
		n, sum, hi, lo int64
		d              map[int64]bool
	}
	want := map[string]*agg{}
	for _, r := range table {
		k := resultKey([]Value{Long(r.shop)}, floorDiv(r.t, 60*sec)*60*sec)
		a := want[k]
		if a == nil {
			a = &agg{hi: -1, lo: 1 << 62, d: map[int64]bool{}}
			want[k] = a
		}
		a.n++
		a.sum += r.qty
		a.hi, a.lo = max(a.hi, r.qty), min(a.lo, r.qty)
		a.d[r.qty] = true
	}
	wantText := map[string]string{}
	for k, a := range want {
		wantText[k] = valuesText([]Value{Long(a.n), Long(a.sum), Long(a.hi), Long(a.lo), Long(int64(len(a.d)))})
	}
	compareResults(t, got, wantText)
}

func TestIdleAdvanceClosesWindows(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	p := NewProcessor(s)
	base := int64(1_700_000_020) * sec // 40 s into a minute
	if err := p.Add(Rec{Group: []Value{Long(1)}, T: base, Sign: 1, Vals: []Value{Null}}); err != nil {
		t.Fatal(err)
	}
	if res, _ := p.TakeResults(); len(res) != 0 {
		t.Fatalf("window closed before its end: %+v", res)
	}
	p.AdvanceTo(base + 25*sec) // end is base+20s, + grace 10 s: not yet
	if res, _ := p.TakeResults(); len(res) != 0 {
		t.Fatalf("window closed before end + grace: %+v", res)
	}
	p.AdvanceTo(base + 30*sec)
	res, _ := p.TakeResults()
	if len(res) != 1 || !res[0].Final || res[0].Aggs[0].I != 1 || p.OpenWindows() != 0 {
		t.Fatalf("want one final result and no open window, got %+v (open %d)", res, p.OpenWindows())
	}
}

func TestSpecValidate(t *testing.T) {
	ok := spec(WindowSpec{Type: Tumbling, Size: time.Minute})
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"no topics", func(s *Spec) { s.Topics = nil }, "input.topics"},
		{"bad op", func(s *Spec) { s.Ops = "cx" }, `"x" is not a change op`},
		{"hop advance", func(s *Spec) { s.Window = WindowSpec{Type: Hopping, Size: time.Minute, Advance: 2 * time.Minute} }, "larger than window.size"},
		{"hop multiple", func(s *Spec) { s.Window = WindowSpec{Type: Hopping, Size: time.Minute, Advance: 25 * time.Second} }, "multiple"},
		{"type", func(s *Spec) { s.Window.Type = "sliding" }, "choose tumbling"},
		{"table session", func(s *Spec) { s.Mode = ModeTable; s.Window = WindowSpec{Type: Session, Gap: time.Minute} }, "tumbling and hopping"},
		{"table time", func(s *Spec) { s.Mode = ModeTable }, "column of the row"},
		{"fn", func(s *Spec) { s.Aggs = []AggSpec{{Name: "x", Fn: "median", Field: Path{"after", "a"}}} }, `"median"`},
		{"field", func(s *Spec) { s.Aggs = []AggSpec{{Name: "x", Fn: FnSum}} }, "needs a field"},
		{"name clash", func(s *Spec) { s.Aggs = []AggSpec{{Name: "shop", Fn: FnCount}} }, "already taken"},
		{"output is input", func(s *Spec) { s.Output = "in" }, "both an input and an output"},
	} {
		s := spec(WindowSpec{Type: Tumbling, Size: time.Minute})
		c.mod(s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestParsePath(t *testing.T) {
	for in, want := range map[string]string{"after.total": "after.total", "source.ts_ms": "source.ts_ms", "ts_ms": "ts_ms"} {
		p, err := ParsePath(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePath(%q) = %v, %v", in, p, err)
		}
	}
	for _, in := range []string{"total", "row.total", "after.", "after.a.b"} {
		if _, err := ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q): no error", in)
		}
	}
}

// In table mode first and last follow rows: among rows of equal event time the one whose
// current image came first (last) wins, and retracting a row removes that row, not another
// with the same value and time. Rows carry their identity (Rec.Row, from the input's key).
func TestTableModeFirstLastFollowRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 7))
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "created_at"}, GroupBy: []Path{{"after", "shop"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour}, Mode: ModeTable, Output: "out",
		Aggs: []AggSpec{{Name: "first", Fn: FnFirst, Field: Path{"after", "v"}}, {Name: "last", Fn: FnLast, Field: Path{"after", "v"}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	type row struct {
		shop, t int64
		v       string
		seq     uint64 // of the change that wrote the current image
	}
	base := int64(1_700_000_000) * sec
	check := func(name string, p *Processor, table map[int]row) {
		t.Helper()
		p.AdvanceTo(base + 100*60*sec)
		res, _ := p.TakeResults()
		got := map[string]string{}
		for _, r := range res {
			if r.Events > 0 {
				got[resultKey(r.Group, r.Start)] = valuesText(r.Aggs)
			}
		}
		first, last := map[string]row{}, map[string]row{}
		for _, r := range table {
			k := resultKey([]Value{Long(r.shop)}, floorDiv(r.t, 60*sec)*60*sec)
			if f, ok := first[k]; !ok || r.t < f.t || r.t == f.t && r.seq < f.seq {
				first[k] = r
			}
			if l, ok := last[k]; !ok || r.t > l.t || r.t == l.t && r.seq > l.seq {
				last[k] = r
			}
		}
		want := map[string]string{}
		for k := range first {
			want[k] = valuesText([]Value{String(first[k].v), String(last[k].v)})
		}
		t.Run(name, func(t *testing.T) { compareResults(t, got, want) })
	}
	run := func(name string, ops func(add func(id int, r row), del func(id int))) {
		p := NewProcessor(s)
		table := map[int]row{}
		seq := uint64(0)
		rec := func(id int, r row, sign int64) {
			seq++
			if err := p.Add(Rec{Group: []Value{Long(r.shop)}, T: r.t, Sign: sign, Seq: seq, Row: uint64(id) + 1,
				Vals: []Value{String(r.v), String(r.v)}}); err != nil {
				t.Fatal(err)
			}
		}
		del := func(id int) {
			if old, ok := table[id]; ok {
				rec(id, old, -1)
				delete(table, id)
			}
		}
		add := func(id int, r row) { // insert, or update (retract the old image first)
			del(id)
			rec(id, r, 1)
			r.seq = seq
			table[id] = r
		}
		ops(add, del)
		check(name, p, table)
	}
	// Rows x, y, x of one time: last is the second x; without the first x, first is y.
	run("ties", func(add func(int, row), del func(int)) {
		for id, v := range []string{"x", "y", "x"} {
			add(id, row{shop: 1, t: base, v: v})
			add(10+id, row{shop: 2, t: base, v: v})
		}
		del(10)
	})
	// Random inserts, updates and deletes over few times and values: ties everywhere.
	run("random", func(add func(int, row), del func(int)) {
		for i := 0; i < 3000; i++ {
			id := rng.IntN(200)
			if rng.IntN(4) == 0 {
				del(id)
				continue
			}
			add(id, row{shop: rng.Int64N(3), t: base + rng.Int64N(6)*20*sec, v: string(rune('a' + rng.IntN(3)))})
		}
	})
}

// A session merge counts sessions that already closed: gap 10s, grace 5s, events at 0, 16,
// then 8. The session [0, 0] closed at stream time 16 (0 + 10 + 5 <= 16), and 8 lies within the
// gap of it: it would merge a closed session, so it is late; the finals are [0, 0] and
// [16, 16]. The same holds after a restore, and once the group went quiet.
func TestSessionMergeWithClosedSessionIsLate(t *testing.T) {
	s := spec(WindowSpec{Type: Session, Gap: 10 * time.Second, Grace: 5 * time.Second})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	for _, c := range []struct{ restore, other bool }{{false, false}, {false, true}, {true, true}} {
		restore := c.restore
		second := int64(1)
		if c.other {
			second = 2
		}
		p := NewProcessor(s)
		add := func(group, at int64) {
			t.Helper()
			if err := p.Add(Rec{Group: []Value{Long(group)}, T: at * sec, Sign: 1, Vals: []Value{Null}}); err != nil {
				t.Fatal(err)
			}
		}
		add(1, 0)
		add(second, 16) // [0, 0] closes (with another group: group 1 holds no session)
		res, _ := p.TakeResults()
		if restore {
			q := NewProcessor(s)
			for _, kv := range p.TakeChanges() {
				if err := q.Restore(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
			p = q
		}
		add(1, 8)
		p.AdvanceTo(100 * sec)
		more, late := p.TakeResults()
		res = append(res, more...)
		var got []string
		for _, r := range res {
			got = append(got, fmt.Sprintf("%d[%d,%d]", r.Group[0].I, r.Start/sec, r.End/sec))
		}
		if len(late) != 1 || late[0].Rec.T != 8*sec || len(res) != 2 {
			t.Errorf("%+v: finals %v, %d late; want 1[0,0] and %d[16,16], and the event at 8 late", c, got, len(late), second)
		}
	}
}
