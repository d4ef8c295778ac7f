package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// Benchmarks of the hand-written pgoutput parser against pglogrepl's on the messages a
// stream is made of: go test -run '^$' -bench BenchmarkParse -benchmem ./source/postgres/

// benchRow is a 10-column row as pgoutput sends it: an id, a few numbers and timestamps, a
// NULL, an unchanged TOAST value and a longer text.
func benchRow(b msgBuilder) msgBuilder {
	return b.u16(10).text("1234567").text("42").text("12345.67").text("2024-05-06 07:08:09.123456+00").
		text("f").u8('n').u8('u').text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").
		text("customer@example.com").text("a longer free-text note of about a hundred bytes, as an address or a comment column would hold")
}

// benchParse runs ours (given the body after the type byte) and pglogrepl.ParseV2 on data.
func benchParse(b *testing.B, data []byte, ours func(body []byte) error) {
	b.Run("cdcd", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := ours(data[1:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pglogrepl", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := pglogrepl.ParseV2(data, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseInsert(b *testing.B) {
	data := append([]byte{'I'}, benchRow(msgBuilder{}.u32(16384).u8('N'))...)
	var m rowMsg // reused, as the stream reuses it
	benchParse(b, data, func(body []byte) error { r := reader{b: body}; parseRow(&r, 'I', false, &m); return r.err })
}

func BenchmarkParseUpdate(b *testing.B) {
	data := append([]byte{'U'}, benchRow(benchRow(msgBuilder{}.u32(16384).u8('O')).u8('N'))...)
	var m rowMsg
	benchParse(b, data, func(body []byte) error { r := reader{b: body}; parseRow(&r, 'U', false, &m); return r.err })
}

func BenchmarkParseDelete(b *testing.B) {
	data := append([]byte{'D'}, msgBuilder{}.u32(16384).u8('K').u16(10).text("1234567").
		u8('n').u8('n').u8('n').u8('n').u8('n').u8('n').u8('n').u8('n').u8('n')...)
	var m rowMsg
	benchParse(b, data, func(body []byte) error { r := reader{b: body}; parseRow(&r, 'D', false, &m); return r.err })
}

func BenchmarkParseRelation(b *testing.B) {
	body := msgBuilder{}.u32(16384).str("public").str("orders").u8('d').u16(10)
	for i, name := range []string{"id", "qty", "total", "at", "paid", "gone", "doc", "uid", "email", "note"} {
		var flags byte
		if i == 0 {
			flags = 1 // the key
		}
		body = body.u8(flags).str(name).u32(25).u32(0xffffffff)
	}
	data := append([]byte{'R'}, body...)
	benchParse(b, data, func(body []byte) error { r := reader{b: body}; parseRelation(&r, false); return r.err })
}

func BenchmarkParseBeginCommit(b *testing.B) {
	ts := uint64(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC).Sub(pgEpoch) / time.Microsecond)
	begin := append([]byte{'B'}, msgBuilder{}.u64(0x16B3748).u64(ts).u32(742)...)
	commit := append([]byte{'C'}, msgBuilder{}.u8(0).u64(0x16B3748).u64(0x16B3790).u64(ts)...)
	b.Run("begin", func(b *testing.B) {
		benchParse(b, begin, func(body []byte) error { r := reader{b: body}; parseBegin(&r); return r.err })
	})
	b.Run("commit", func(b *testing.B) {
		benchParse(b, commit, func(body []byte) error { r := reader{b: body}; parseCommit(&r); return r.err })
	})
}
