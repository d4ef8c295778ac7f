package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A hand-written pgoutput decoder (protocol versions 1 and 2): messages are parsed in place,
// tuple values are slices of the received buffer, and nothing is allocated per column.
// (pglogrepl's message parser allocates per column and copies byte by byte; it is used here
// only for the replication protocol.) A differential fuzz test holds this parser to
// pglogrepl's on every field, and benchmarks compare the two.
//
// Each parse function reads one whole message body (after the type byte) and sets r.err when
// the body is not exactly what the protocol lays out: truncated, with bytes left over, or
// with a tuple or submessage marker the protocol does not have. A partly parsed message is
// never used.

var (
	errShort = errors.New("pgoutput message truncated")
	// errTrailing: bytes after the last field. The versions cdcd asks for (1 and 2) have
	// fixed layouts, so leftovers mean the message was misread.
	errTrailing = errors.New("pgoutput message has bytes after its last field")
	// errUnterminated: a string field without its terminating NUL.
	errUnterminated = errors.New("pgoutput string is not NUL-terminated")
	// errTupleKind: a TupleData column that is not n, u, t or b.
	errTupleKind = errors.New("unknown pgoutput tuple column kind")
	// errSubmessage: an Insert, Update or Delete whose K/O/N marker is not where the protocol
	// puts one.
	errSubmessage = errors.New("unexpected pgoutput tuple marker")
	// errNoRelations: a Truncate of no relations, which pgoutput never sends.
	errNoRelations = errors.New("pgoutput truncate names no relation")
)

// pgEpoch is 2000-01-01 UTC, the zero of Postgres timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// pgTime converts microseconds since 2000-01-01 UTC to a time, exactly for every int64 (a
// time.Duration would overflow past 292 years).
func pgTime(micros int64) time.Time {
	return time.Unix(pgEpoch.Unix()+micros/1e6, micros%1e6*1e3).UTC()
}

// reader reads a message body; after the first error every read returns zero values and
// err keeps that first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.err = errUnterminated
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

// end marks a message with bytes left after its last field.
func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w (%d bytes)", errTrailing, len(r.b))
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.fail(errShort)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// tupleCol is one column of a TupleData: kind is 'n' (null), 'u' (unchanged TOAST),
// 't' (text) or 'b' (binary); data aliases the message buffer.
type tupleCol struct {
	kind byte
	data []byte
}

// readTuple decodes a TupleData into dst (reused), returning the columns.
func (r *reader) readTuple(dst []tupleCol) []tupleCol {
	n := int(r.u16())
	dst = dst[:0]
	for i := 0; i < n && r.err == nil; i++ {
		k := r.u8()
		c := tupleCol{kind: k}
		switch k {
		case 't', 'b':
			c.data = r.bytes(int(r.u32()))
		case 'n', 'u':
		default:
			if r.err == nil {
				r.err = fmt.Errorf("%w %q", errTupleKind, k)
			}
		}
		dst = append(dst, c)
	}
	return dst
}

type relationMsg struct {
	xid       uint32
	id        uint32
	namespace string
	name      string
	identity  byte // d (default), n (nothing), f (full), i (index)
	cols      []relationCol
}

type relationCol struct {
	key    bool
	flags  byte // bit 0 is key; the others are unused
	name   string
	typ    uint32
	typmod int32
}

func parseRelation(r *reader, streaming bool) relationMsg {
	var m relationMsg
	if streaming {
		m.xid = r.u32()
	}
	m.id = r.u32()
	m.namespace = r.str()
	m.name = r.str()
	m.identity = r.u8()
	n := int(r.u16())
	m.cols = make([]relationCol, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		flags := r.u8()
		m.cols = append(m.cols, relationCol{key: flags&1 != 0, flags: flags, name: r.str(), typ: r.u32(), typmod: int32(r.u32())})
	}
	r.end()
	return m
}

// rowMsg is an insert, update or delete. old is the 'K' (key) or 'O' (old row) tuple.
type rowMsg struct {
	op      byte // 'I', 'U', 'D'
	xid     uint32
	rel     uint32
	oldKind byte // 0, 'K' or 'O'
	old     []tupleCol
	new     []tupleCol
}

func parseRow(r *reader, op byte, streaming bool, m *rowMsg) {
	m.op, m.oldKind = op, 0
	m.old, m.new = m.old[:0], m.new[:0]
	if streaming {
		m.xid = r.u32()
	}
	m.rel = r.u32()
	switch op {
	case 'I':
		if t := r.u8(); t != 'N' && r.err == nil {
			r.err = fmt.Errorf("%w: insert: expected N, got %q", errSubmessage, t)
		}
		m.new = r.readTuple(m.new)
	case 'U':
		t := r.u8()
		if t == 'K' || t == 'O' {
			m.oldKind = t
			m.old = r.readTuple(m.old)
			t = r.u8()
		}
		if t != 'N' && r.err == nil {
			r.err = fmt.Errorf("%w: update: expected N, got %q", errSubmessage, t)
		}
		m.new = r.readTuple(m.new)
	case 'D':
		m.oldKind = r.u8()
		if m.oldKind != 'K' && m.oldKind != 'O' && r.err == nil {
			r.err = fmt.Errorf("%w: delete: expected K or O, got %q", errSubmessage, m.oldKind)
		}
		m.old = r.readTuple(m.old)
	}
	r.end()
}

type truncateMsg struct {
	xid     uint32
	options byte // 1 = CASCADE, 2 = RESTART IDENTITY
	rels    []uint32
}

func parseTruncate(r *reader, streaming bool) truncateMsg {
	var m truncateMsg
	if streaming {
		m.xid = r.u32()
	}
	n := r.u32()
	m.options = r.u8()
	if n == 0 && r.err == nil {
		r.err = errNoRelations
	}
	if r.err == nil && uint64(n)*4 != uint64(len(r.b)) {
		// Checked before allocating: n comes from the wire.
		r.err = errShort
		if uint64(n)*4 < uint64(len(r.b)) {
			r.err = fmt.Errorf("%w (%d bytes)", errTrailing, uint64(len(r.b))-uint64(n)*4)
		}
	}
	if r.err != nil {
		return m
	}
	m.rels = make([]uint32, n)
	for i := range m.rels {
		m.rels[i] = r.u32()
	}
	return m
}

type beginMsg struct {
	finalLSN uint64
	time     time.Time
	xid      uint32
}

func parseBegin(r *reader) beginMsg {
	m := beginMsg{finalLSN: r.u64(), time: pgTime(int64(r.u64())), xid: r.u32()}
	r.end()
	return m
}

type commitMsg struct {
	xid       uint32 // stream commits only
	flags     byte   // unused by protocol versions 1 and 2
	commitLSN uint64
	endLSN    uint64
	time      time.Time
}

func parseCommit(r *reader) commitMsg {
	m := commitMsg{flags: r.u8(), commitLSN: r.u64(), endLSN: r.u64(), time: pgTime(int64(r.u64()))}
	r.end()
	return m
}

func parseStreamCommit(r *reader) commitMsg {
	xid := r.u32()
	m := parseCommit(r)
	m.xid = xid
	return m
}

// streamStartMsg opens a block of a streamed (in-progress) transaction's messages.
type streamStartMsg struct {
	xid          uint32
	firstSegment bool // the transaction's first block
}

func parseStreamStart(r *reader) streamStartMsg {
	m := streamStartMsg{xid: r.u32(), firstSegment: r.u8() == 1}
	r.end()
	return m
}

// parseStreamStop checks the empty body of a Stream Stop.
func parseStreamStop(r *reader) { r.end() }

// streamAbortMsg aborts a streamed transaction (subXid == xid) or one of its
// subtransactions. (Protocol version 4's abort LSN and time are not asked for.)
type streamAbortMsg struct {
	xid, subXid uint32
}

func parseStreamAbort(r *reader) streamAbortMsg {
	m := streamAbortMsg{xid: r.u32(), subXid: r.u32()}
	r.end()
	return m
}

type logicalMsg struct {
	xid           uint32
	flags         byte // bit 0 is transactional; the others are unused
	transactional bool
	lsn           uint64
	prefix        string
	content       []byte
}

func parseMessage(r *reader, streaming bool) logicalMsg {
	var m logicalMsg
	if streaming {
		m.xid = r.u32()
	}
	m.flags = r.u8()
	m.transactional = m.flags&1 != 0
	m.lsn = r.u64()
	m.prefix = r.str()
	m.content = r.bytes(int(r.u32()))
	r.end()
	return m
}
