package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A hand-written pgoutput decoder: messages are parsed in place, tuple values are slices of the
// received buffer, and nothing is allocated per column. (pglogrepl's message parser allocates
// per column and copies byte by byte; it is used here only for the replication protocol.)

var errShort = errors.New("pgoutput message truncated")

// pgEpoch is 2000-01-01 UTC, the zero of Postgres timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(micros int64) time.Time { return pgEpoch.Add(time.Duration(micros) * time.Microsecond) }

type reader struct {
	b   []byte
	err error
}

func (r *reader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShort
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
	for i, c := range r.b {
		if c == 0 {
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s
		}
	}
	r.err = errShort
	return ""
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errShort
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
			r.err = fmt.Errorf("unknown tuple column kind %q", k)
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
		m.cols = append(m.cols, relationCol{key: flags&1 != 0, name: r.str(), typ: r.u32(), typmod: int32(r.u32())})
	}
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
			r.err = fmt.Errorf("insert: expected N, got %q", t)
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
			r.err = fmt.Errorf("update: expected N, got %q", t)
		}
		m.new = r.readTuple(m.new)
	case 'D':
		m.oldKind = r.u8()
		if m.oldKind != 'K' && m.oldKind != 'O' && r.err == nil {
			r.err = fmt.Errorf("delete: expected K or O, got %q", m.oldKind)
		}
		m.old = r.readTuple(m.old)
	}
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
	n := int(r.u32())
	m.options = r.u8()
	for i := 0; i < n && r.err == nil; i++ {
		m.rels = append(m.rels, r.u32())
	}
	return m
}

type beginMsg struct {
	finalLSN uint64
	time     time.Time
	xid      uint32
}

func parseBegin(r *reader) beginMsg {
	return beginMsg{finalLSN: r.u64(), time: pgTime(int64(r.u64())), xid: r.u32()}
}

type commitMsg struct {
	xid       uint32 // stream commits only
	commitLSN uint64
	endLSN    uint64
	time      time.Time
}

func parseCommit(r *reader) commitMsg {
	_ = r.u8() // flags
	return commitMsg{commitLSN: r.u64(), endLSN: r.u64(), time: pgTime(int64(r.u64()))}
}

func parseStreamCommit(r *reader) commitMsg {
	xid := r.u32()
	m := parseCommit(r)
	m.xid = xid
	return m
}

type logicalMsg struct {
	xid           uint32
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
	m.transactional = r.u8()&1 != 0
	m.lsn = r.u64()
	m.prefix = r.str()
	m.content = r.bytes(int(r.u32()))
	return m
}
