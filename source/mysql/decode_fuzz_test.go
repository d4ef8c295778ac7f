package mysql

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// FuzzDecodeText: no column type and no text a server could send makes the snapshot decoder
// panic; a value it cannot read is an error with the value kept as Undecodable.
func FuzzDecodeText(f *testing.F) {
	for _, c := range []struct {
		typ  byte
		meta uint16
		raw  string
	}{
		{gomysql.MYSQL_TYPE_TIME2, 6, "-838:59:59.000000"}, {gomysql.MYSQL_TYPE_DATETIME2, 3, "2024-02-29 23:59:59.123"},
		{gomysql.MYSQL_TYPE_DATE, 0, "0000-00-00"}, {gomysql.MYSQL_TYPE_BIT, 1<<8 | 4, "\x0a\xaa"},
		{gomysql.MYSQL_TYPE_LONGLONG, 0, "18446744073709551615"}, {gomysql.MYSQL_TYPE_GEOMETRY, 4, "\x00\x00"},
		{gomysql.MYSQL_TYPE_TIME2, 0, ":"}, {gomysql.MYSQL_TYPE_DATETIME2, 6, "9999-12-31 23:59:59."},
	} {
		f.Add(c.typ, c.meta, false, true, []byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, typ byte, meta uint16, unsigned, nullable bool, raw []byte) {
		s := ColumnSpec{Name: "c", Type: typ, Meta: meta, Unsigned: unsigned, Nullable: nullable, Collation: 45, Values: []string{"a", "b"}}
		col, err := s.Column()
		if err != nil {
			return
		}
		v, err := DecodeText(&s, col.Kind, raw)
		if err != nil && v.State != change.Undecodable {
			t.Fatalf("error %v with value state %d, want Undecodable", err, v.State)
		}
	})
}

// FuzzParseToken: a stored resume token never makes the parser panic, and what it accepts
// encodes back to the same token.
func FuzzParseToken(f *testing.F) {
	f.Add("binlog1;mariadb;mariadb-bin.000042;1234;0-1-100,1-2-5")
	f.Add("binlog1;mysql;binlog.000001;4;3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	f.Add("binlog2;mariadb;mariadb-bin.000042;1234;7;0;0-7-101;0-1-100,1-2-5")
	f.Add("binlog2;mysql;binlog.000001;4;3e11fa47-71ca-11e1-9e33-c80aa9429562;4294967296;3e11fa47-71ca-11e1-9e33-c80aa9429562:6;3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		if back, err := ParseToken(tok.String()); err != nil || back != tok {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, tok, tok.String(), back, err)
		}
	})
}
