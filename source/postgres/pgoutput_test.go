package postgres

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

type msgBuilder []byte

func (b msgBuilder) u8(v byte) msgBuilder     { return append(b, v) }
func (b msgBuilder) u16(v uint16) msgBuilder  { return binary.BigEndian.AppendUint16(b, v) }
func (b msgBuilder) u32(v uint32) msgBuilder  { return binary.BigEndian.AppendUint32(b, v) }
func (b msgBuilder) u64(v uint64) msgBuilder  { return binary.BigEndian.AppendUint64(b, v) }
func (b msgBuilder) str(s string) msgBuilder  { return append(append(b, s...), 0) }
func (b msgBuilder) text(s string) msgBuilder { return b.u8('t').u32(uint32(len(s))).bytesOf(s) }
func (b msgBuilder) bytesOf(s string) msgBuilder {
	return append(b, s...)
}

func TestParseRelation(t *testing.T) {
	for _, streaming := range []bool{false, true} {
		b := msgBuilder{}
		if streaming {
			b = b.u32(77)
		}
		b = b.u32(16384).str("public").str("orders").u8('d').u16(2).
			u8(1).str("id").u32(20).u32(0xffffffff).
			u8(0).str("total").u32(1700).u32(655366)
		r := &reader{b: b}
		m := parseRelation(r, streaming)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if m.id != 16384 || m.namespace != "public" || m.name != "orders" || m.identity != 'd' || len(m.cols) != 2 {
			t.Fatalf("%+v", m)
		}
		if !m.cols[0].key || m.cols[1].key || m.cols[1].typ != 1700 || m.cols[1].typmod != 655366 || m.cols[0].typmod != -1 {
			t.Fatalf("columns %+v", m.cols)
		}
		if streaming && m.xid != 77 {
			t.Fatalf("xid %d", m.xid)
		}
	}
}

func TestParseRows(t *testing.T) {
	// update with an old key tuple, new tuple with null, unchanged TOAST and text
	b := msgBuilder{}.u32(16384).u8('K').u16(3).text("1").u8('n').u8('n').
		u8('N').u16(3).text("2").u8('n').u8('u')
	var m rowMsg
	r := &reader{b: b}
	parseRow(r, 'U', false, &m)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m.oldKind != 'K' || len(m.old) != 3 || string(m.old[0].data) != "1" || m.new[1].kind != 'n' || m.new[2].kind != 'u' || string(m.new[0].data) != "2" {
		t.Fatalf("%+v", m)
	}
	// delete with a full old row
	b = msgBuilder{}.u32(9).u32(16384).u8('O').u16(1).text("x")
	r = &reader{b: b}
	parseRow(r, 'D', true, &m)
	if r.err != nil || m.xid != 9 || m.oldKind != 'O' || string(m.old[0].data) != "x" {
		t.Fatalf("%+v %v", m, r.err)
	}
}

func TestParseBeginCommitTruncateMessage(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	micros := uint64(ts.Sub(pgEpoch) / time.Microsecond)
	r := &reader{b: msgBuilder{}.u64(0x16B3748).u64(micros).u32(42)}
	bm := parseBegin(r)
	if r.err != nil || bm.finalLSN != 0x16B3748 || bm.xid != 42 || !bm.time.Equal(ts) {
		t.Fatalf("%+v %v", bm, r.err)
	}
	r = &reader{b: msgBuilder{}.u8(0).u64(10).u64(20).u64(micros)}
	cm := parseCommit(r)
	if r.err != nil || cm.commitLSN != 10 || cm.endLSN != 20 {
		t.Fatalf("%+v", cm)
	}
	r = &reader{b: msgBuilder{}.u32(2).u8(1).u32(5).u32(6)}
	tm := parseTruncate(r, false)
	if r.err != nil || len(tm.rels) != 2 || tm.rels[1] != 6 || tm.options != 1 {
		t.Fatalf("%+v", tm)
	}
	r = &reader{b: msgBuilder{}.u8(1).u64(99).str(HeartbeatPrefix).u32(3).bytesOf("abc")}
	lm := parseMessage(r, false)
	if r.err != nil || !lm.transactional || lm.prefix != HeartbeatPrefix || string(lm.content) != "abc" {
		t.Fatalf("%+v", lm)
	}
}

func TestTruncatedTupleIsAnError(t *testing.T) {
	b := msgBuilder{}.u32(1).u8('N').u16(2).text("1") // says 2 columns, has 1
	r := &reader{b: b}
	var m rowMsg
	parseRow(r, 'I', false, &m)
	if r.err == nil {
		t.Fatal("want an error for a truncated tuple")
	}
}

// Messages no server sends are refused with the reason, never half-read.
func TestParseRefusesMalformedMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncate of nothing", append([]byte{'T'}, msgBuilder{}.u32(0).u8(0)...), errNoRelations},
		{"truncate with a missing relation", append([]byte{'T'}, msgBuilder{}.u32(2).u8(0).u32(5)...), errShort},
		{"truncate of 4G relations", append([]byte{'T'}, msgBuilder{}.u32(0xffffffff).u8(0).u32(5)...), errShort},
		{"unknown tuple kind", append([]byte{'I'}, msgBuilder{}.u32(1).u8('N').u16(1).u8('x')...), errTupleKind},
		{"update without N", append([]byte{'U'}, msgBuilder{}.u32(1).u8('K').u16(1).text("1").u8('X').u16(1).text("2")...), errSubmessage},
		{"delete without K or O", append([]byte{'D'}, msgBuilder{}.u32(1).u8('N').u16(1).text("1")...), errSubmessage},
		{"unterminated prefix", append([]byte{'M'}, msgBuilder{}.u8(1).u64(1).bytesOf("cdcd")...), errUnterminated},
		{"begin with a trailing byte", append([]byte{'B'}, msgBuilder{}.u64(1).u64(2).u32(3).u8(0)...), errTrailing},
		{"stream stop with a body", []byte{'E', 0}, errTrailing},
		{"stream start without its flag", append([]byte{'S'}, msgBuilder{}.u32(7)...), errShort},
	} {
		if _, err := parseWireOurs(tc.data, false); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
}

// pgTime is exact for every int64, where a time.Duration overflows after 292 years.
func TestPgTime(t *testing.T) {
	for _, tc := range []struct {
		micros int64
		want   time.Time
	}{
		{0, pgEpoch},
		{-1, pgEpoch.Add(-time.Microsecond)},
		{time.Date(2399, 7, 8, 0, 0, 0, 7000, time.UTC).UnixMicro() - pgEpoch.UnixMicro(), time.Date(2399, 7, 8, 0, 0, 0, 7000, time.UTC)},
		{math.MaxInt64, time.UnixMicro(math.MaxInt64).Add(time.Duration(pgEpoch.UnixMicro()) * time.Microsecond)},
		{math.MinInt64, time.UnixMicro(math.MinInt64).Add(time.Duration(pgEpoch.UnixMicro()) * time.Microsecond)},
	} {
		if got := pgTime(tc.micros); !got.Equal(tc.want) {
			t.Errorf("pgTime(%d) = %v; want %v", tc.micros, got, tc.want)
		}
	}
}
