package window

import (
	"errors"
	"fmt"
)

// KV is one changelog record: Value nil deletes the key.
type KV struct {
	Key, Value []byte
}

// TakeChanges returns the changelog records that bring a restored copy of the processor up to
// its current state: every window changed since the last call, a tombstone for every window
// purged, the counters of count-window groups, and the partition's stream time. Written in the
// same Kafka transaction as the input offsets they account for, they make the state exactly
// as durable as the progress.
func (p *Processor) TakeChanges() []KV {
	var out []KV
	if !p.specSaved {
		kv := KV{Key: []byte{keySpec}, Value: p.spec.specRecord(p.partitions)}
		out = append(out, kv)
		p.specSaved = true
		p.bytes += len(kv.Key) + len(kv.Value) - p.specSize
		p.specSize = len(kv.Key) + len(kv.Value)
	}
	for _, id := range p.purged {
		out = append(out, KV{Key: windowKey(id)})
	}
	p.purged = p.purged[:0]
	for w := range p.changed {
		kv := KV{Key: windowKey(w.id()), Value: marshalWindow(w)}
		out = append(out, kv)
		p.bytes += len(kv.Key) + len(kv.Value) - w.size
		w.size = len(kv.Key) + len(kv.Value)
	}
	clear(p.changed)
	// Count windows: the counter of every group that counted, whether its window is still
	// open or closed (it numbers the group's next window).
	for _, k := range p.forgotten {
		out = append(out, KV{Key: counterKey(k)})
	}
	p.forgotten = p.forgotten[:0]
	for g := range p.counted {
		kv := KV{Key: counterKey(g.key), Value: p.groupRecord(g)}
		out = append(out, kv)
		p.bytes += len(kv.Key) + len(kv.Value) - g.csize
		g.csize = len(kv.Key) + len(kv.Value)
	}
	clear(p.counted)
	if len(p.rowsChanged) > 0 {
		out = p.rowChanges(out)
	}
	if p.metaDirty() {
		kv := KV{Key: []byte{keyMeta}, Value: marshalMeta(p.streamTime, p.hasTime, p.wm.reached)}
		out = append(out, kv)
		p.savedTime, p.savedHas = p.streamTime, p.hasTime
		p.wm.dirty = false
		p.bytes += len(kv.Key) + len(kv.Value) - p.metaSize
		p.metaSize = len(kv.Key) + len(kv.Value)
	}
	return out
}

func (p *Processor) metaDirty() bool {
	return p.streamTime != p.savedTime || p.hasTime != p.savedHas || p.wm.dirty
}

// Restore applies one changelog record (the latest per key, in any order; a nil value
// deletes). Call it only on a processor that has processed nothing yet.
func (p *Processor) Restore(key, value []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("changelog record without a key: %w", errCorrupt)
	}
	switch key[0] {
	case keyMeta:
		return p.restoreMeta(key, value)
	case keyCounter:
		return p.restoreCounter(key, value)
	case keyRow:
		return p.restoreRow(key, value)
	case keySpec:
		if value == nil {
			return nil
		}
		return p.checkSpec(value)
	case keyWindow:
		return p.restoreWindow(key, value)
	}
	return fmt.Errorf("changelog key of unknown kind %d: %w", key[0], errNewerState)
}

var errNewerState = errors.New("changelog state written by a newer cdcd; upgrade every instance of the job")

func (p *Processor) restoreMeta(key, value []byte) error {
	if value == nil {
		return nil
	}
	r := &buf{b: value}
	f := r.byte1()
	if f != stateFormat && f != metaFormat {
		return errNewerState
	}
	p.hasTime = r.byte1() == 1
	p.streamTime = r.varint()
	if f == metaFormat {
		n := r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			o := Origin{Topic: string(r.bytes()), Partition: int32(r.varint())}
			t := r.varint()
			e, _ := p.wm.get(inputPart{o.Topic, o.Partition})
			*e = t
		}
	}
	p.savedTime, p.savedHas = p.streamTime, p.hasTime
	p.bytes += len(key) + len(value) - p.metaSize
	p.metaSize = len(key) + len(value)
	return r.err
}

func (p *Processor) restoreCounter(key, value []byte) error {
	g := p.restoreGroup(string(key[1:]), nil)
	p.bytes -= g.csize
	g.csize = 0
	if value == nil {
		g.count = 0
		return nil
	}
	r := &buf{b: value}
	if r.byte1() != stateFormat {
		return errNewerState
	}
	p.restoreGroupRecord(g, r)
	g.csize = len(key) + len(value)
	p.bytes += g.csize
	return r.err
}

func (p *Processor) restoreWindow(key, value []byte) error {
	kr := &buf{b: key[1:]}
	gk := string(kr.bytes())
	start := kr.varint()
	if kr.err != nil {
		return kr.err
	}
	if value == nil {
		if g := p.groups[gk]; g != nil {
			for _, w := range g.wins {
				if w.id().Start == start {
					p.drop(w)
					break
				}
			}
			p.purged = p.purged[:0]
		}
		return nil
	}
	r := &buf{b: value}
	if r.byte1() != stateFormat {
		return errNewerState
	}
	vals := r.values()
	w := &win{heapIdx: -1, size: len(key) + len(value)}
	ns := []*int64{&w.start, &w.end, &w.closeAt, &w.idx, &w.events}
	for _, n := range ns {
		*n = r.varint()
	}
	na := r.uvarint()
	if na != uint64(len(p.spec.Aggs)) {
		return fmt.Errorf("changelog window has %d aggregates, the job %d: the job's aggregates changed; give the changed job a new name (its state cannot carry over)", na, len(p.spec.Aggs))
	}
	w.accs = make([]acc, na)
	for i := range w.accs {
		w.accs[i] = r.acc()
	}
	if r.err != nil {
		return r.err
	}
	if p.spec.EmitUpdates {
		// Every change of a window was emitted in the transaction that wrote it: its result
		// is keyed by its start as restored.
		w.emitted, w.hasEmitted = w.start, true
	}
	g := p.restoreGroup(gk, vals)
	w.g = g
	g.wins = append(g.wins, w)
	sortWins(g)
	if w.closeAt != neverClose {
		w.heapIdx = len(p.closing)
		p.closing = append(p.closing, w) // ordered by settle, once
		p.heapStale = true
	}
	p.nWins++
	p.bytes += w.size
	return nil
}

func (p *Processor) restoreGroup(key string, vals []Value) *group {
	g := p.groups[key]
	if g == nil {
		g = &group{key: key}
		p.groups[key] = g
	}
	if vals != nil {
		g.vals = vals
	}
	return g
}

// StateBytes is the size of the processor's state in its changelog form (keys and values of
// the latest record per key, as compaction keeps them) as of the last TakeChanges or Restore.
// It is kept up to date as windows change: reading it costs nothing.
func (p *Processor) StateBytes() int { return p.bytes }
