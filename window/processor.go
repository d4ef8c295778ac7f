package window

import (
	"container/heap"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Rec is one input of the aggregation: a change after field extraction (and, for table mode,
// split into the retraction of its before image and the addition of its after image).
type Rec struct {
	Group []Value // the group_by values, in order
	T     int64   // event time, µs since the epoch
	Sign  int64   // +1 adds the row, -1 retracts it (table mode)
	Vals  []Value // one per aggregate (Null for count)
	Seq   uint64  // arrival order within the partition
	// Row identifies the input row (a hash of its key; 0: unknown, a table without one): in
	// table mode first and last track rows, so a retraction removes its own row.
	Row uint64
	// Origin is the input change the record came from (for late records).
	Origin Origin
}

// Result is one window's aggregate.
type Result struct {
	Group      []Value
	Start, End int64 // µs; [Start, End) for time windows; the earliest and latest event time for session and count windows
	Aggs       []Value
	Index      int64 // count windows: the window's index within its group
	Events     int64 // records counted (in table mode: rows currently in the window)
	Final      bool  // the window closed: no more results for it
	// Tombstone: delete the result under this key (emit: updates; a session or count window
	// whose start moved, or a session merged into another). Only Group, Start, Index are set.
	Tombstone bool
}

// LateRec is an input that arrived after (some of) its windows closed.
type LateRec struct {
	Rec    Rec
	Reason string
	// Missed are the [start, end) of the closed windows it belonged to.
	Missed [][2]int64
}

// Processor aggregates the records of one partition. It is not safe for concurrent use: one
// goroutine owns each partition's processor.
//
// Invariants:
//   - streamTime is the watermark: the minimum over the input partitions feeding the job of
//     the largest event time each has reached (see watermark); it never goes back.
//   - A window is open until streamTime >= its end + grace (session windows: last event + gap
//   - grace); then it is emitted (emit final) and purged, and never reopened: a later record
//     for it is a LateRec.
type Processor struct {
	spec       *Spec
	table      bool
	streamTime int64
	hasTime    bool
	wm         watermark
	specSaved  bool  // the changelog holds the spec's fingerprint (see fingerprint.go)
	partitions int32 // the internal topics' partition count, if known (part of the fingerprint)
	specSize   int   // bytes of the fingerprint's changelog record
	// table mode: the counted image of each row in an open window (see rows.go)
	rows        map[uint64]*rowImg
	rowHeap     rowHeap
	rowsChanged map[uint64]bool
	// the stream time last written to the changelog
	savedTime int64
	savedHas  bool
	groups    map[string]*group
	closing   closeHeap
	// heapStale: Restore appended to closing without keeping the heap order (one heap.Init
	// afterwards is O(n), a push per window O(n log n)); settle restores it before use.
	heapStale bool
	keyBuf    []byte
	scratch   []byte

	// what changed since the last TakeResults
	dirty map[*win]struct{}
	out   []Result
	late  []LateRec
	// changed and purged windows since the last TakeChanges (for the changelog)
	changed map[*win]struct{}
	// count windows: groups whose counter changed since the last TakeChanges
	counted map[*group]struct{}
	// session windows: groups that keep their latest closed session's end; count windows:
	// quiet groups; a min-heap by expiry (see sessions.go); forgotten groups whose record the
	// changelog must drop
	closedQ   closedQueue
	forgotten []string
	purged    []WindowID
	nWins     int
	// bytes is the size of the changelog as compaction keeps it (keys and values), as of the
	// last TakeChanges; metaSize is the meta record's share of it.
	bytes    int
	metaSize int
}

// WindowID identifies a window within a partition.
type WindowID struct {
	Group string // canonical group key
	Start int64
}

type group struct {
	key   string
	vals  []Value
	wins  []*win // open windows, by start
	count int64  // count windows: events seen in the group so far
	csize int    // bytes of the group's counter record in the changelog (count, session windows)
	// session windows: the end of the group's latest closed session (valid if hasClosed). An
	// event within gap of it would merge a closed session: it is late. Count windows: the
	// stream time its last window closed at, while no record came since (see sessions.go).
	closedEnd int64
	hasClosed bool
	queued    bool // count windows: the group has an entry in closedQ
}

type win struct {
	g          *group
	start, end int64
	closeAt    int64
	idx        int64 // count windows: index within the group
	events     int64
	accs       []acc
	heapIdx    int
	// emit: updates: the start the window's last result was keyed by
	emitted    int64
	hasEmitted bool
	size       int // bytes of its changelog record (key and value) as last written; 0: none
}

// NewProcessor returns an empty processor for spec.
func NewProcessor(spec *Spec) *Processor {
	return &Processor{spec: spec, table: spec.Mode == ModeTable, groups: map[string]*group{},
		dirty: map[*win]struct{}{}, changed: map[*win]struct{}{}}
}

// StreamTime is the partition's stream time (µs) and whether any record set it.
func (p *Processor) StreamTime() (int64, bool) { return p.streamTime, p.hasTime }

// NextClose is the earliest close time (µs) of an open time window.
func (p *Processor) NextClose() (int64, bool) {
	p.settle()
	if len(p.closing) == 0 {
		return 0, false
	}
	return p.closing[0].closeAt, true
}

// OpenWindows is the number of windows held.
func (p *Processor) OpenWindows() int { return p.nWins }

// settle re-establishes the close heap after a restore.
func (p *Processor) settle() {
	if p.heapStale {
		heap.Init(&p.closing)
		heap.Init(&p.rowHeap)
		heap.Init(&p.closedQ)
		p.heapStale = false
	}
}

// Add processes one record.
func (p *Processor) Add(r Rec) error {
	p.settle()
	p.observe(r.Origin, r.T)
	if p.table && r.Row != 0 && r.Sign > 0 {
		if err := p.upsert(r); err != nil {
			return err
		}
	}
	if err := p.addRec(r); err != nil {
		return err
	}
	if p.table && r.Row != 0 {
		p.indexRow(r)
	}
	p.closeDue()
	return nil
}

// addRec adds (or retracts) one record in the windows of its group.
func (p *Processor) addRec(r Rec) error {
	p.keyBuf = p.keyBuf[:0]
	for _, v := range r.Group {
		p.keyBuf = appendKey(p.keyBuf, v)
	}
	g := p.groups[string(p.keyBuf)]
	if g == nil {
		g = &group{key: string(p.keyBuf), vals: r.Group}
		p.groups[g.key] = g
	} else if g.vals == nil {
		g.vals = r.Group // a group restored from its counter alone
	}
	var err error
	switch p.spec.Window.Type {
	case Tumbling, Hopping:
		err = p.addTimed(g, r)
	case Session:
		err = p.addSession(g, r)
	case Count:
		err = p.addCount(g, r)
	}
	if err != nil {
		return err
	}
	if len(g.wins) == 0 && g.count == 0 && !g.hasClosed {
		delete(p.groups, g.key)
	}
	return nil
}

// AdvanceTo moves stream time, and every input partition's, forward to t (µs) without a
// record, closing what is due: an idle partition's stream time follows the wall clock this way
// once the job has caught up with its input.
func (p *Processor) AdvanceTo(t int64) {
	p.settle()
	for _, e := range p.wm.all {
		if *e < t {
			*e = t
			p.wm.dirty = true
		}
	}
	if len(p.wm.waiting) > 0 {
		clear(p.wm.waiting)
		p.wm.dirty = true
	}
	if p.hasTime && t <= p.streamTime {
		return
	}
	p.streamTime, p.hasTime = t, true
	p.closeDue()
}

func (p *Processor) newWin(g *group, start, end, closeAt int64) *win {
	w := &win{g: g, start: start, end: end, closeAt: closeAt, accs: make([]acc, len(p.spec.Aggs)), heapIdx: -1}
	g.wins = append(g.wins, w)
	sortWins(g)
	if p.spec.Window.Type != Count {
		heap.Push(&p.closing, w)
	}
	p.nWins++
	return w
}

func (p *Processor) setClose(w *win, closeAt int64) {
	w.closeAt = closeAt
	if w.heapIdx >= 0 {
		heap.Fix(&p.closing, w.heapIdx)
	}
}

func (p *Processor) apply(w *win, r Rec) error {
	for i := range p.spec.Aggs {
		in := input{v: r.Vals[i], t: r.T, seq: r.Seq, row: r.Row, sign: r.Sign}
		if err := w.accs[i].add(p.spec.Aggs[i].Fn, in, p.table, &p.scratch); err != nil {
			return fmt.Errorf("aggregate %s: %w", p.spec.Aggs[i].Name, err)
		}
	}
	w.events += r.Sign
	if p.spec.Window.Type == Count {
		w.start, w.end = min(w.start, r.T), max(w.end, r.T)
	}
	p.dirty[w] = struct{}{}
	p.changed[w] = struct{}{}
	return nil
}

// closeDue emits and purges every window whose close time stream time has reached.
func (p *Processor) closeDue() {
	if len(p.rowHeap) > 0 {
		p.expireRows()
	}
	if len(p.closedQ) > 0 {
		p.forgetClosed()
	}
	for len(p.closing) > 0 && p.closing[0].closeAt <= p.streamTime {
		w := heap.Pop(&p.closing).(*win)
		if p.spec.Window.Type == Session {
			p.sessionClosed(w)
		}
		if !p.spec.EmitUpdates {
			p.emit(w, true)
		} else if _, ok := p.dirty[w]; ok {
			p.emit(w, false) // its last update
		}
		p.drop(w)
	}
}

func (p *Processor) emit(w *win, final bool) {
	aggs := make([]Value, len(w.accs))
	for i := range w.accs {
		aggs[i] = w.accs[i].result(p.spec.Aggs[i].Fn, p.table)
	}
	if p.spec.EmitUpdates && w.hasEmitted && w.emitted != w.start {
		p.tombstone(w) // a session or count window whose start moved: its old key goes
	}
	// Sessions and count windows report [first event, last event].
	p.out = append(p.out, Result{Group: w.g.vals, Start: w.start, End: w.end, Index: w.idx, Aggs: aggs, Events: w.events, Final: final})
	w.emitted, w.hasEmitted = w.start, true
	delete(p.dirty, w)
}

// tombstone deletes the result w was last emitted under (emit: updates; the key holds the
// window's start).
func (p *Processor) tombstone(w *win) {
	p.out = append(p.out, Result{Group: w.g.vals, Start: w.emitted, Index: w.idx, Tombstone: true})
	w.hasEmitted = false
}

// drop purges a window from its group and the close heap.
func (p *Processor) drop(w *win) {
	g := w.g
	for i, o := range g.wins {
		if o == w {
			g.wins = append(g.wins[:i], g.wins[i+1:]...)
			break
		}
	}
	if w.heapIdx >= 0 {
		heap.Remove(&p.closing, w.heapIdx)
	}
	delete(p.dirty, w)
	delete(p.changed, w)
	p.purged = append(p.purged, w.id())
	p.nWins--
	p.bytes -= w.size
	w.size = 0
	// A count window's group keeps its event count (it numbers the next window); other groups
	// go with their last window.
	if len(g.wins) == 0 && p.spec.Window.Type != Count && !g.hasClosed {
		delete(p.groups, g.key)
	}
}

// addLate keeps a late record until TakeResults, with its own copy of its values (a Rec's
// Vals may be a decoder's scratch, valid only while it is added).
func (p *Processor) addLate(l LateRec) {
	l.Rec.Vals = slices.Clone(l.Rec.Vals)
	p.late = append(p.late, l)
}

// TakeResults returns the results and late records produced since the last call. With emit
// updates, every window changed since the last call yields one (non-final) result.
func (p *Processor) TakeResults() ([]Result, []LateRec) {
	if p.spec.EmitUpdates {
		ws := make([]*win, 0, len(p.dirty))
		for w := range p.dirty {
			ws = append(ws, w)
		}
		sort.Slice(ws, func(i, j int) bool {
			if ws[i].g.key != ws[j].g.key {
				return ws[i].g.key < ws[j].g.key
			}
			return ws[i].start < ws[j].start
		})
		for _, w := range ws {
			p.emit(w, false)
		}
	}
	out, late := p.out, p.late
	p.out, p.late = nil, nil
	return out, late
}

func (w *win) id() WindowID {
	if w.closeAt == neverClose { // count window
		return WindowID{Group: w.g.key, Start: w.idx}
	}
	return WindowID{Group: w.g.key, Start: w.start}
}

func (g *group) find(start int64) *win {
	for _, w := range g.wins {
		if w.start == start {
			return w
		}
	}
	return nil
}

// sortWins restores the order of g.wins by start after one window was appended or moved:
// an insertion pass, without the allocations of sort.Slice (a restore calls it per window).
func sortWins(g *group) {
	ws := g.wins
	for i := 1; i < len(ws); i++ {
		for k := i; k > 0 && ws[k].start < ws[k-1].start; k-- {
			ws[k], ws[k-1] = ws[k-1], ws[k]
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// Micros converts a duration to µs (helper for callers building specs in code).
func Micros(d time.Duration) int64 { return d.Microseconds() }
