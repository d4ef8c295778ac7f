package window

import "encoding/binary"

// Session windows remember, per group, the end of the latest session that closed: an event
// within gap of it would merge with a closed session (whose final result is out), so it is
// late, never the start of a session the closed one should have absorbed. A group keeps this
// until stream time passes that end + 2 gap + grace: from then on, an event near it is late by
// its own session's close time anyway. It goes to the changelog as the group's counter record.

// closedGroup is a group that keeps a closed session's end, until expiry.
type closedGroup struct {
	g      *group
	expiry int64
}

func (p *Processor) sessionExpiry(end int64) int64 {
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
	// Sessions close in the order of their close time, so expiries come in order.
	p.closedQ = append(p.closedQ, closedGroup{g, p.sessionExpiry(w.end)})
}

// forgetClosed drops the closed-session ends that have expired, and the groups left empty.
func (p *Processor) forgetClosed() {
	n := 0
	for n < len(p.closedQ) && p.closedQ[n].expiry <= p.streamTime {
		g := p.closedQ[n].g
		n++
		if !g.hasClosed || p.sessionExpiry(g.closedEnd) > p.streamTime {
			continue // a later session closed since: its own entry comes later
		}
		g.hasClosed = false
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
	p.closedQ = append(p.closedQ[:0], p.closedQ[n:]...)
}

// groupRecord is the value of a group's counter record: the count (count windows) or the
// closed session's end.
func (p *Processor) groupRecord(g *group) []byte {
	v := g.count
	if p.spec.Window.Type == Session {
		v = g.closedEnd
	}
	return binary.AppendVarint([]byte{stateFormat}, v)
}

// restoreGroupRecord applies a group's counter record's value.
func (p *Processor) restoreGroupRecord(g *group, v int64) {
	if p.spec.Window.Type != Session {
		g.count = v
		return
	}
	g.closedEnd, g.hasClosed = v, true
	p.closedQ = append(p.closedQ, closedGroup{g, p.sessionExpiry(v)}) // ordered by settle
	p.heapStale = true
}
