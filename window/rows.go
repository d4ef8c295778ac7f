package window

import (
	"container/heap"
	"encoding/binary"
	"slices"
)

// Table mode keeps, per repartition partition, the image of every row counted in an open
// window (by Rec.Row): an addition of a row already counted — a snapshot read (op r) of a row
// the stream counted before, an on-demand `cdcd snapshot` re-reading every row — first
// retracts the counted image, so it replaces the row instead of adding to it, as an upsert
// into a table does. A retraction forgets the row. An image is kept until the last window it
// lies in closes (its expiry), and goes to the changelog like the windows do.

// rowImg is the counted image of one row.
type rowImg struct {
	id      uint64
	group   []Value
	t       int64
	seq     uint64
	vals    []Value
	expiry  int64 // stream time at which every window holding t has closed
	heapIdx int
	size    int // bytes of its changelog record
}

// rowKey is the changelog key of a row image.
func rowKey(id uint64) []byte {
	return binary.AppendUvarint([]byte{keyRow}, id)
}

// rowExpiry is the stream time at which the last window holding t closes.
func (p *Processor) rowExpiry(t int64) int64 {
	last, size, _ := p.lastWindow(t)
	return p.instant(last+size) + p.spec.Window.Grace.Microseconds()
}

// upsert retracts the counted image of r's row, if any, before r adds its new image.
func (p *Processor) upsert(r Rec) error {
	old := p.rows[r.Row]
	if old == nil {
		return nil
	}
	p.forgetRow(old)
	return p.addRec(Rec{Group: old.group, T: old.t, Sign: -1, Vals: old.vals, Seq: old.seq, Row: old.id})
}

// indexRow records r's image (an addition) or forgets its row (a retraction).
func (p *Processor) indexRow(r Rec) {
	if r.Sign < 0 {
		if old := p.rows[r.Row]; old != nil {
			p.forgetRow(old)
		}
		return
	}
	if r.T == noTime || p.rowExpiry(r.T) <= p.streamTime {
		return // its windows are closed: nothing to replace later
	}
	if p.rows == nil {
		p.rows = map[uint64]*rowImg{}
		p.rowsChanged = map[uint64]bool{}
	}
	// The image outlives the record: its values get their own copy (a record's Vals may be a
	// decoder's scratch).
	img := &rowImg{id: r.Row, group: r.Group, t: r.T, seq: r.Seq, vals: slices.Clone(r.Vals), expiry: p.rowExpiry(r.T), heapIdx: -1}
	p.rows[r.Row] = img
	heap.Push(&p.rowHeap, img)
	p.rowsChanged[r.Row] = true
}

func (p *Processor) forgetRow(img *rowImg) {
	delete(p.rows, img.id)
	if img.heapIdx >= 0 {
		heap.Remove(&p.rowHeap, img.heapIdx)
	}
	p.rowsChanged[img.id] = true
	p.bytes -= img.size
}

// expireRows forgets the images whose windows have all closed.
func (p *Processor) expireRows() {
	for len(p.rowHeap) > 0 && p.rowHeap[0].expiry <= p.streamTime {
		p.forgetRow(p.rowHeap[0])
	}
}

// rowChanges are the changelog records of the row images changed since the last call.
func (p *Processor) rowChanges(out []KV) []KV {
	for id := range p.rowsChanged {
		img := p.rows[id]
		if img == nil {
			out = append(out, KV{Key: rowKey(id)})
			continue
		}
		v := binary.AppendVarint([]byte{stateFormat}, img.t)
		v = binary.AppendUvarint(v, img.seq)
		v = appendValues(v, img.group)
		v = appendValues(v, img.vals)
		kv := KV{Key: rowKey(id), Value: v}
		p.bytes += len(kv.Key) + len(kv.Value) - img.size
		img.size = len(kv.Key) + len(kv.Value)
		out = append(out, kv)
	}
	clear(p.rowsChanged)
	return out
}

// restoreRow applies one changelog record of a row image.
func (p *Processor) restoreRow(key, value []byte) error {
	kr := &buf{b: key[1:]}
	id := kr.uvarint()
	if kr.err != nil {
		return kr.err
	}
	if old := p.rows[id]; old != nil {
		p.forgetRow(old)
		delete(p.rowsChanged, id)
	}
	if value == nil {
		return nil
	}
	r := &buf{b: value}
	if r.byte1() != stateFormat {
		return errNewerState
	}
	img := &rowImg{id: id, t: r.varint(), heapIdx: -1, size: len(key) + len(value)}
	img.seq = r.uvarint()
	img.group = r.values()
	img.vals = r.values()
	if r.err != nil {
		return r.err
	}
	img.expiry = p.rowExpiry(img.t)
	if p.rows == nil {
		p.rows = map[uint64]*rowImg{}
		p.rowsChanged = map[uint64]bool{}
	}
	p.rows[id] = img
	img.heapIdx = len(p.rowHeap)
	p.rowHeap = append(p.rowHeap, img) // ordered by settle, once
	p.heapStale = true
	p.bytes += img.size
	return nil
}

// rowHeap orders row images by expiry.
type rowHeap []*rowImg

func (h rowHeap) Len() int           { return len(h) }
func (h rowHeap) Less(i, j int) bool { return h[i].expiry < h[j].expiry }
func (h rowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *rowHeap) Push(x any) {
	img := x.(*rowImg)
	img.heapIdx = len(*h)
	*h = append(*h, img)
}
func (h *rowHeap) Pop() any {
	old := *h
	img := old[len(old)-1]
	old[len(old)-1] = nil
	img.heapIdx = -1
	*h = old[:len(old)-1]
	return img
}
