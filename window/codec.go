package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
)

// The job's internal topics carry values in a small binary form of their own: the repartition
// topic carries Recs, the changelog carries window state. Both are read only by cdcd, and
// both start with a format byte so a future layout can be told apart.

const (
	// recFormat 2 adds Rec.Row at the end; format 1 records (without it) are still read.
	recFormat   = 2
	stateFormat = 1
	// metaFormat 2 adds each input partition's largest event time to the meta record.
	metaFormat = 2
)

var errCorrupt = errors.New("truncated or corrupt internal record")

type buf struct {
	b   []byte
	err error
}

func (r *buf) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *buf) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *buf) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *buf) byte1() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *buf) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.Kind))
	switch v.Kind {
	case KindBool, KindLong, KindTime:
		dst = binary.AppendVarint(dst, v.I)
	case KindDouble:
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.F))
	case KindDecimal:
		dst = binary.AppendUvarint(dst, uint64(v.Scale))
		num, _ := v.R.Num().GobEncode()
		den, _ := v.R.Denom().GobEncode()
		dst = binary.AppendUvarint(dst, uint64(len(num)))
		dst = append(dst, num...)
		dst = binary.AppendUvarint(dst, uint64(len(den)))
		dst = append(dst, den...)
	case KindString:
		dst = binary.AppendUvarint(dst, uint64(len(v.S)))
		dst = append(dst, v.S...)
	}
	return dst
}

func (r *buf) value() Value {
	k := Kind(r.byte1())
	switch k {
	case KindNull:
		return Null
	case KindBool, KindLong, KindTime:
		return Value{Kind: k, I: r.varint()}
	case KindDouble:
		if len(r.b) < 8 {
			r.fail()
			return Null
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return Double(f)
	case KindDecimal:
		scale := int(r.uvarint())
		var num, den big.Int
		if err := num.GobDecode(r.bytes()); err != nil {
			r.fail()
			return Null
		}
		if err := den.GobDecode(r.bytes()); err != nil || den.Sign() == 0 {
			r.fail()
			return Null
		}
		return Decimal(new(big.Rat).SetFrac(&num, &den), scale)
	case KindString:
		return String(string(r.bytes()))
	}
	r.fail()
	return Null
}

func appendValues(dst []byte, vs []Value) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = appendValue(dst, v)
	}
	return dst
}

func (r *buf) values() []Value { return r.appendValues(nil) }

// appendValues appends the values read to dst.
func (r *buf) appendValues(dst []Value) []Value {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return dst
	}
	if dst == nil {
		dst = make([]Value, 0, n)
	}
	for range n {
		dst = append(dst, r.value())
	}
	return dst
}

// Origin locates the change a Rec came from (for late records).
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// marshalRec encodes a Rec with its origin for the repartition topic.
func marshalRec(dst []byte, r *Rec, o Origin) []byte {
	dst = append(dst, recFormat)
	dst = binary.AppendVarint(dst, r.T)
	dst = binary.AppendVarint(dst, r.Sign)
	dst = appendValues(dst, r.Group)
	dst = appendValues(dst, r.Vals)
	dst = binary.AppendUvarint(dst, uint64(len(o.Topic)))
	dst = append(dst, o.Topic...)
	dst = binary.AppendVarint(dst, int64(o.Partition))
	dst = binary.AppendVarint(dst, o.Offset)
	return binary.AppendUvarint(dst, r.Row)
}

func unmarshalRec(b []byte) (Rec, Origin, error) {
	var d recDecoder
	return d.unmarshal(b)
}

// recDecoder decodes repartition records for aggregation: the Vals of what it returns are
// valid until its next call (aggregates copy the values they keep), and it reuses the last
// origin topic's string.
type recDecoder struct {
	vals  []Value
	topic string
}

func (d *recDecoder) unmarshal(b []byte) (Rec, Origin, error) {
	r := &buf{b: b}
	f := r.byte1()
	if f != recFormat && f != 1 {
		return Rec{}, Origin{}, fmt.Errorf("repartition record of format %d: written by a newer cdcd; upgrade every instance of the job", f)
	}
	var rec Rec
	var o Origin
	rec.T = r.varint()
	rec.Sign = r.varint()
	rec.Group = r.values()
	d.vals = r.appendValues(d.vals[:0])
	rec.Vals = d.vals
	if t := r.bytes(); string(t) != d.topic {
		d.topic = string(t)
	}
	o.Topic = d.topic
	o.Partition = int32(r.varint())
	o.Offset = r.varint()
	if f >= 2 {
		rec.Row = r.uvarint()
	}
	return rec, o, r.err
}

// Changelog keys: a window is keyed by kindWindow + group key + window id; a partition's
// meta state (stream time, arrival counter) by kindMeta; a count window group's counter by
// kindCounter + group key.
const (
	keyMeta    byte = 0
	keyWindow  byte = 1
	keyCounter byte = 2
	keyRow     byte = 3 // table mode: a row's counted image, by Rec.Row
	keySpec    byte = 4 // the fingerprint of the spec that wrote the partition's state
)

func windowKey(id WindowID) []byte {
	k := make([]byte, 0, 1+len(id.Group)+10)
	k = append(k, keyWindow)
	k = binary.AppendUvarint(k, uint64(len(id.Group)))
	k = append(k, id.Group...)
	return binary.AppendVarint(k, id.Start)
}

func counterKey(group string) []byte {
	return append([]byte{keyCounter}, group...)
}

func marshalWindow(w *win) []byte {
	dst := []byte{stateFormat}
	dst = appendValues(dst, w.g.vals)
	for _, n := range []int64{w.start, w.end, w.closeAt, w.idx, w.events} {
		dst = binary.AppendVarint(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(w.accs)))
	for i := range w.accs {
		dst = appendAcc(dst, &w.accs[i])
	}
	return dst
}

func appendAcc(dst []byte, a *acc) []byte {
	dst = binary.AppendVarint(dst, a.n)
	dst = binary.AppendVarint(dst, a.sumI)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.sumF))
	sum := Null
	if a.sumR != nil {
		sum = Decimal(a.sumR, a.scale)
	}
	dst = appendValue(dst, sum)
	dst = binary.AppendUvarint(dst, uint64(a.scale))
	dst = append(dst, byte(a.kind))
	best := Null
	if a.hasBest {
		best = a.best
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = appendValue(dst, best)
	dst = binary.AppendVarint(dst, a.bestT)
	dst = binary.AppendUvarint(dst, a.bestSeq)
	dst = binary.AppendUvarint(dst, uint64(len(a.multiset)))
	for k, e := range a.multiset {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = appendValue(dst, e.v)
		dst = binary.AppendVarint(dst, e.t)
		dst = binary.AppendUvarint(dst, e.seq)
		dst = binary.AppendVarint(dst, e.c)
	}
	return dst
}

func (r *buf) acc() acc {
	var a acc
	a.n = r.varint()
	a.sumI = r.varint()
	if len(r.b) < 8 {
		r.fail()
		return a
	}
	a.sumF = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	if s := r.value(); s.Kind == KindDecimal {
		a.sumR = s.R
	}
	a.scale = int(r.uvarint())
	a.kind = Kind(r.byte1())
	a.hasBest = r.byte1() == 1
	a.best = r.value()
	a.bestT = r.varint()
	a.bestSeq = r.uvarint()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return a
	}
	if n > 0 {
		a.multiset = make(map[string]*mEntry, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.bytes())
		e := &mEntry{v: r.value(), t: r.varint(), seq: r.uvarint(), c: r.varint()}
		a.multiset[k] = e
	}
	return a
}

func marshalMeta(streamTime int64, hasTime bool, reached map[inputPart]*int64) []byte {
	dst := []byte{metaFormat}
	if hasTime {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendVarint(dst, streamTime)
	ks := make([]inputPart, 0, len(reached))
	for k := range reached {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(a, b int) bool {
		if ks[a].topic != ks[b].topic {
			return ks[a].topic < ks[b].topic
		}
		return ks[a].partition < ks[b].partition
	})
	dst = binary.AppendUvarint(dst, uint64(len(ks)))
	for _, k := range ks {
		dst = binary.AppendUvarint(dst, uint64(len(k.topic)))
		dst = append(dst, k.topic...)
		dst = binary.AppendVarint(dst, int64(k.partition))
		dst = binary.AppendVarint(dst, *reached[k])
	}
	return dst
}
