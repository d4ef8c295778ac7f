package window

import "time"

// How a record finds its windows: time windows by arithmetic on its event time, count
// windows by the group's counter (sessions: sessions.go); and the close heap.

// lastWindow returns the start of the last (latest-starting) time window holding t, as a
// wall-clock time of the job's zone, and the windows' size and advance (µs): the windows
// holding t start at the multiples of advance in (t-size, t] of that wall clock.
func (p *Processor) lastWindow(t int64) (last, size, adv int64) {
	size = p.spec.Window.Size.Microseconds()
	adv = size
	if p.spec.Window.Type == Hopping {
		adv = p.spec.Window.Advance.Microseconds()
	}
	if zone := p.spec.TimeZone; zone != nil && zone != time.UTC {
		t = zoneToLocal(zone, t)
	}
	return floorDiv(t, adv) * adv, size, adv
}

// instant turns a wall-clock time of the job's zone (a window bound) into an instant.
func (p *Processor) instant(local int64) int64 {
	if zone := p.spec.TimeZone; zone != nil && zone != time.UTC {
		return zoneFromLocal(zone, local)
	}
	return local
}

func (p *Processor) addTimed(g *group, r Rec) error {
	grace := p.spec.Window.Grace.Microseconds()
	last, size, adv := p.lastWindow(r.T)
	var missed [][2]int64
	for lstart := last - size + adv; lstart <= last; lstart += adv {
		start, end := p.instant(lstart), p.instant(lstart+size)
		if end+grace <= p.streamTime {
			missed = append(missed, [2]int64{start, end})
			continue
		}
		w := g.find(start)
		if w == nil {
			if r.Sign < 0 {
				// A retraction of a row counted before this window's state began (the job
				// started after it was added, or its window was already purged): nothing to
				// take back here.
				continue
			}
			w = p.newWin(g, start, end, end+grace)
		}
		if err := p.apply(w, r); err != nil {
			return err
		}
	}
	if len(missed) > 0 {
		reason := "window closed"
		if r.Sign < 0 {
			reason = "retraction for a closed window"
		}
		p.addLate(LateRec{Rec: r, Reason: reason, Missed: missed})
	}
	return nil
}

func (p *Processor) addCount(g *group, r Rec) error {
	n := int64(p.spec.Window.Events)
	if g.hasClosed && p.closedExpiry(g.closedEnd) <= p.streamTime {
		g.count = 0 // quiet for countRetention: numbered afresh, whether or not purged yet
	}
	var w *win
	if len(g.wins) > 0 {
		w = g.wins[0]
	} else {
		w = p.newWin(g, r.T, r.T, neverClose)
		w.idx = g.count / n // the window's index within its group keys it
	}
	g.count++
	g.hasClosed = false // not quiet: see countClosed
	if p.counted == nil {
		p.counted = map[*group]struct{}{}
	}
	p.counted[g] = struct{}{}
	if err := p.apply(w, r); err != nil {
		return err
	}
	if w.events >= n {
		p.emit(w, true)
		p.drop(w)
		p.countClosed(g)
	}
	return nil
}

// neverClose is the close time of count windows, which close on their N-th event instead.
const neverClose = 1 << 62

// closeHeap orders open windows by close time.
type closeHeap []*win

func (h closeHeap) Len() int { return len(h) }
func (h closeHeap) Less(i, j int) bool {
	if h[i].closeAt != h[j].closeAt {
		return h[i].closeAt < h[j].closeAt
	}
	if h[i].g.key != h[j].g.key {
		return h[i].g.key < h[j].g.key // deterministic emit order
	}
	return h[i].start < h[j].start
}
func (h closeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *closeHeap) Push(x any) {
	w := x.(*win)
	w.heapIdx = len(*h)
	*h = append(*h, w)
}
func (h *closeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.heapIdx = -1
	*h = old[:len(old)-1]
	return w
}

// countRetention: a count-window group whose last window closed and that saw no record for
// this long in stream time is dropped (see sessions.go); its next record starts window_index 0.
const countRetention = 7 * 24 * time.Hour
