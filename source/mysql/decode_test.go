package mysql

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// TestDecodeBinlogAndTextAgree: a value that go-mysql decodes from a rows event and the same
// value read with SELECT (text protocol, utf8mb4, time_zone UTC) give the same change.Value,
// so a snapshot and the binlog publish the same bytes.
func TestDecodeBinlogAndTextAgree(t *testing.T) {
	cases := []struct {
		name   string
		spec   ColumnSpec
		binlog any
		text   string
		want   change.Value
	}{
		{"tinyint", ColumnSpec{Type: gomysql.MYSQL_TYPE_TINY}, int8(-128), "-128", change.Value{Int: -128}},
		{"tinyint unsigned", ColumnSpec{Type: gomysql.MYSQL_TYPE_TINY, Unsigned: true}, int8(-1), "255", change.Value{Int: 255}},
		{"smallint unsigned", ColumnSpec{Type: gomysql.MYSQL_TYPE_SHORT, Unsigned: true}, int16(-1), "65535", change.Value{Int: 65535}},
		{"mediumint unsigned", ColumnSpec{Type: gomysql.MYSQL_TYPE_INT24, Unsigned: true}, int32(-1), "16777215", change.Value{Int: 16777215}},
		{"mediumint", ColumnSpec{Type: gomysql.MYSQL_TYPE_INT24}, int32(-8388608), "-8388608", change.Value{Int: -8388608}},
		{"int unsigned", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG, Unsigned: true}, int32(-1), "4294967295", change.Value{Int: 4294967295}},
		{"bigint unsigned max", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true}, int64(-1), "18446744073709551615", change.Value{Uint: 18446744073709551615}},
		{"bigint min", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONGLONG}, int64(-9223372036854775808), "-9223372036854775808", change.Value{Int: -9223372036854775808}},
		{"decimal", ColumnSpec{Type: gomysql.MYSQL_TYPE_NEWDECIMAL, Meta: 5<<8 | 2}, "-999.99", "-999.99", change.Value{Str: "-999.99"}},
		{"float", ColumnSpec{Type: gomysql.MYSQL_TYPE_FLOAT}, float32(1.5), "1.5", change.Value{Float: 1.5}},
		{"double", ColumnSpec{Type: gomysql.MYSQL_TYPE_DOUBLE}, -2.25e300, "-2.25e300", change.Value{Float: -2.25e300}},
		{"bit(1)", ColumnSpec{Type: gomysql.MYSQL_TYPE_BIT, Meta: 1}, int64(1), "\x01", change.Value{Int: 1}},
		{"bit(12)", ColumnSpec{Type: gomysql.MYSQL_TYPE_BIT, Meta: 1<<8 | 4}, int64(0xaaa), "\x0a\xaa", change.Value{Bytes: []byte{0x0a, 0xaa}}},
		{"year", ColumnSpec{Type: gomysql.MYSQL_TYPE_YEAR}, 2155, "2155", change.Value{Int: 2155}},
		{"date", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE}, "9999-12-31", "9999-12-31", change.Value{Int: 2932896}},
		{"date before 1970", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE}, "1000-01-01", "1000-01-01", change.Value{Int: -354285}},
		{"datetime(6)", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATETIME2, Meta: 6}, "1970-01-01 00:00:00.000001", "1970-01-01 00:00:00.000001", change.Value{Int: 1}},
		{"datetime(3)", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATETIME2, Meta: 3}, "2024-02-29 23:59:59.123", "2024-02-29 23:59:59.123", change.Value{Int: 1709251199123000}},
		{"timestamp", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIMESTAMP2}, "2038-01-19 03:14:07", "2038-01-19 03:14:07", change.Value{Int: 2147483647000000}},
		{"time negative", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIME2}, "-838:59:59", "-838:59:59", change.Value{Int: -3020399000000}},
		{"time over 24h", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIME2, Meta: 6}, "100:00:00.000001", "100:00:00.000001", change.Value{Int: 360000000001}},
		{"zero date nullable", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE, Nullable: true}, "0000-00-00", "0000-00-00", change.NullValue},
		{"invalid date nullable", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE, Nullable: true}, "2021-02-30", "2021-02-30", change.NullValue},
		{"varchar utf8mb4", ColumnSpec{Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: 45}, "héllo 😀", "héllo 😀", change.Value{Str: "héllo 😀"}},
		{"binary(4)", ColumnSpec{Type: gomysql.MYSQL_TYPE_STRING, Meta: 4, Collation: 63}, "\x01\x02", "\x01\x02\x00\x00", change.Value{Bytes: []byte{1, 2, 0, 0}}},
		{"blob", ColumnSpec{Type: gomysql.MYSQL_TYPE_BLOB, Meta: 2, Collation: 63}, []byte{0xde, 0xad}, "\xde\xad", change.Value{Bytes: []byte{0xde, 0xad}}},
		{"text", ColumnSpec{Type: gomysql.MYSQL_TYPE_BLOB, Meta: 2, Collation: 45}, []byte("long text"), "long text", change.Value{Str: "long text"}},
		{"enum", ColumnSpec{Type: gomysql.MYSQL_TYPE_ENUM, Values: []string{"small", "medium"}}, int64(2), "medium", change.Value{Str: "medium"}},
		{"set", ColumnSpec{Type: gomysql.MYSQL_TYPE_SET, Values: []string{"a", "b", "c"}}, int64(5), "a,c", change.Value{Str: "a,c"}},
		{"geometry", ColumnSpec{Type: gomysql.MYSQL_TYPE_GEOMETRY, Meta: 4}, []byte{0, 0, 0, 0, 1, 1, 0, 0, 0}, "\x00\x00\x00\x00\x01\x01\x00\x00\x00", change.Value{Bytes: []byte{1, 1, 0, 0, 0}}},
		{"json", ColumnSpec{Type: gomysql.MYSQL_TYPE_JSON}, `{"k":1}`, `{"k":1}`, change.Value{Str: `{"k":1}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			col, err := c.spec.Column()
			if err != nil {
				t.Fatal(err)
			}
			b, err := DecodeBinlog(&c.spec, col.Kind, c.binlog)
			if err != nil {
				t.Fatalf("binlog: %v", err)
			}
			x, err := DecodeText(&c.spec, col.Kind, []byte(c.text))
			if err != nil {
				t.Fatalf("text: %v", err)
			}
			if !equalValue(b, c.want) {
				t.Errorf("binlog %v gives %+v, want %+v", c.binlog, b, c.want)
			}
			if !equalValue(x, c.want) {
				t.Errorf("text %q gives %+v, want %+v", c.text, x, c.want)
			}
		})
	}
}

// TestDecodeLatin1: latin1 (Windows-1252) bytes from the binlog become UTF-8.
func TestDecodeLatin1(t *testing.T) {
	s := ColumnSpec{Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: 8}
	v, err := DecodeBinlog(&s, change.KindString, "caf\xe9 \x80")
	if err != nil || v.Str != "café €" {
		t.Fatalf("got %q, %v", v.Str, err)
	}
}

// TestZeroDateNotNullIsPoison: a zero date in a NOT NULL column is never a made-up date.
func TestZeroDateNotNullIsPoison(t *testing.T) {
	s := ColumnSpec{Name: "d", Type: gomysql.MYSQL_TYPE_DATETIME2}
	v, err := DecodeBinlog(&s, change.KindTimestamp, "0000-00-00 00:00:00")
	if err == nil || v.State != change.Undecodable || v.Str != "0000-00-00 00:00:00" {
		t.Fatalf("got %+v, %v; want an undecodable value keeping the raw text", v, err)
	}
}

func equalValue(a, b change.Value) bool {
	return a.State == b.State && a.Int == b.Int && a.Uint == b.Uint && a.Float == b.Float && a.Str == b.Str && string(a.Bytes) == string(b.Bytes)
}

func TestTokenRoundTrip(t *testing.T) {
	tok := Token{Flavor: "mariadb", File: "mariadb-bin.000042", Pos: 1234, GTIDs: "0-1-100,1-2-5"}
	got, err := ParseToken(tok.String())
	if err != nil || got != tok {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseToken(""); err == nil {
		t.Fatal("empty token accepted")
	}
	if seq, err := fileSeq("mariadb-bin.000042"); err != nil || seq != 42 {
		t.Fatalf("fileSeq: %d, %v", seq, err)
	}
}
