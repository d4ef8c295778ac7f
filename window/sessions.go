package window

import (
	"container/heap"
	"encoding/binary"
)

// Session windows remember, per group, the end of the latest session that closed: an event
// within gap of it would merge with a closed session (whose final result is out), so it is
// late, never the start of a session the closed one should have absorbed. A group keeps this
// until stream time passes that end + 2 gap + grace: from then on, an event near it is late by
// its own session's close time anyway. It goes to the changelog as the group's counter record.
//
// Count windows keep, per group, the number of events seen (it numbers the group's windows,
// window_index) and, once the group's last window closed, the stream time it closed at. A
// group that then sees no record for countRetention of stream time is dropped with its
// counter: its next record opens window_index 0 again (under a new window_start, so a new
// result key). A group with a window open is never dropped: that would lose its events. A
// count-window group is queued once (group.queued), however many windows it closes.

// closedGroup is a group that keeps a closed session's end or is a quiet count-window group,
// until expiry. Processor.closedQ is a min-heap of them by expiry.
type closedGroup struct {
	g      *group
	expiry int64
}

// closedExpiry is when a group whose latest window closed at end (a session's end; a count
// window's close in stream time) is forgotten if nothing arrives for it.
func (p *Processor) closedExpiry(end int64) int64 {
	if p.spec.Window.Type == Count {
		return end + countRetention.Microseconds()
	}
	return end + 2*p.spec.Window.Gap.Microseconds() + p.spec.Window.Grace.Microseconds()
}

// sessionClosed records that session w closed.
func (p *Processor) sessionClosed(w *win) {
	g := w.g
	if !g.hasClosed || w.end > g.closedEnd {
		g.closedEnd, g.hasClosed = w.end, true
		if p.counted == nil {
			p.counted = map[*group]struct{}{}
		}
		p.counted[g] = struct{}{}
	}
	p.pushClosed(closedGroup{g, p.closedExpiry(w.end)})
}

// countClosed records that a count window of g closed (at the current stream time): the group
// is quiet until its next record.
func (p *Processor) countClosed(g *group) {
	g.closedEnd, g.hasClosed = p.streamTime, true
	if !g.queued {
		g.queued = true
		p.pushClosed(closedGroup{g, p.closedExpiry(g.closedEnd)})
	}
}

// forgetClosed drops the closed-session ends and quiet count-window groups that have expired,
// and the groups left empty.
func (p *Processor) forgetClosed() {
	count := p.spec.Window.Type == Count
	for len(p.closedQ) > 0 && p.closedQ[0].expiry <= p.streamTime {
		g := p.popClosed().g
		if count && !g.hasClosed {
			g.queued = false // a record came: queued again when its window closes
			continue
		}
		if exp := p.closedExpiry(g.closedEnd); !g.hasClosed || exp > p.streamTime {
			if count {
				p.pushClosed(closedGroup{g, exp}) // it closed another window since
			}
			continue // sessions: a later session closed since, with an entry of its own
		}
		g.hasClosed, g.count, g.queued = false, 0, false
		delete(p.counted, g)
		if g.csize > 0 {
			p.bytes -= g.csize
			g.csize = 0
			p.forgotten = append(p.forgotten, g.key)
		}
		if len(g.wins) == 0 && p.groups[g.key] == g {
			delete(p.groups, g.key)
		}
	}
}

// closedQueue is a min-heap of closed groups by expiry (container/heap).
type closedQueue []closedGroup

func (q closedQueue) Len() int           { return len(q) }
func (q closedQueue) Less(i, j int) bool { return q[i].expiry < q[j].expiry }
func (q closedQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *closedQueue) Push(x any)        { *q = append(*q, x.(closedGroup)) }
func (q *closedQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = closedGroup{}
	*q = old[:len(old)-1]
	return e
}

// pushClosed adds e to the heap closedQ.
func (p *Processor) pushClosed(e closedGroup) { heap.Push(&p.closedQ, e) }

// popClosed removes and returns the entry of closedQ that expires first.
func (p *Processor) popClosed() closedGroup { return heap.Pop(&p.closedQ).(closedGroup) }

// groupRecord is the value of a group's counter record: the closed session's end (session
// windows), or the count and, once its last window closed, the stream time it closed at (count
// windows).
func (p *Processor) groupRecord(g *group) []byte {
	if p.spec.Window.Type == Session {
		return binary.AppendVarint([]byte{stateFormat}, g.closedEnd)
	}
	b := binary.AppendVarint([]byte{stateFormat}, g.count)
	if g.hasClosed {
		b = binary.AppendVarint(b, g.closedEnd)
	}
	return b
}

// restoreGroupRecord applies a group's counter record's value (after its format byte).
// A count-window record without the close time (written before groups were dropped) keeps
// its group until its next window closes.
func (p *Processor) restoreGroupRecord(g *group, r *buf) {
	v := r.varint()
	if p.spec.Window.Type != Session {
		g.count = v
		if len(r.b) == 0 {
			return
		}
		v = r.varint()
	}
	g.closedEnd, g.hasClosed, g.queued = v, true, true
	p.closedQ = append(p.closedQ, closedGroup{g, p.closedExpiry(v)}) // a heap once settle sorts it
	p.heapStale = true
}

func (p *Processor) addSession(g *group, r Rec) error {
	gap := p.spec.Window.Gap.Microseconds()
	grace := p.spec.Window.Grace.Microseconds()
	// Sessions within gap of t merge with the new event.
	var merge []*win
	for _, w := range g.wins {
		if w.start-gap <= r.T && r.T <= w.end+gap {
			merge = append(merge, w)
		}
	}
	if g.hasClosed && r.T-gap <= g.closedEnd {
		p.addLate(LateRec{Rec: r, Reason: "session closed", Missed: [][2]int64{{r.T, r.T}}})
		return nil
	}
	if len(merge) == 0 {
		if r.T+gap+grace <= p.streamTime {
			p.addLate(LateRec{Rec: r, Reason: "session closed", Missed: [][2]int64{{r.T, r.T}}})
			return nil
		}
		w := p.newWin(g, r.T, r.T, r.T+gap+grace)
		return p.apply(w, r)
	}
	w := merge[0]
	oldID := w.id()
	for _, o := range merge[1:] {
		if err := p.mergeInto(w, o); err != nil {
			return err
		}
	}
	w.start, w.end = min(w.start, r.T), max(w.end, r.T)
	if w.id() != oldID {
		p.purged = append(p.purged, oldID) // the changelog keys sessions by start
	}
	p.setClose(w, w.end+gap+grace)
	sortWins(g)
	return p.apply(w, r)
}

// mergeInto folds session o into w and drops o.
func (p *Processor) mergeInto(w, o *win) error {
	for i := range w.accs {
		if err := w.accs[i].merge(p.spec.Aggs[i].Fn, &o.accs[i]); err != nil {
			return err
		}
	}
	w.events += o.events
	w.start, w.end = min(w.start, o.start), max(w.end, o.end)
	if p.spec.EmitUpdates && o.hasEmitted {
		p.tombstone(o) // merged away: its result goes
	}
	p.drop(o)
	return nil
}
