package mysql

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// TestExtTextSpellsAsMariaDB: the bytes of UUID, INET4 and INET6 values are spelled as
// MariaDB 10.11's SELECT spells them (the cases were read from the server), from the binlog
// (trailing zero bytes stripped) and from the server's text alike.
func TestExtTextSpellsAsMariaDB(t *testing.T) {
	for _, c := range []struct{ ext, hex, text string }{
		{extUUID, "123E4567E89B12D3A456426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{extUUID, "00000000000000000000000000000000", "00000000-0000-0000-0000-000000000000"},
		{extINET4, "C0000201", "192.0.2.1"},
		{extINET4, "00000000", "0.0.0.0"},
		{extINET6, "20010DB8000000000000000000000001", "2001:db8::1"},
		{extINET6, "00000000000000000000000000000000", "::"},
		{extINET6, "00000000000000000000000000000001", "::1"},
		{extINET6, "00000000000000000000FFFFC0000201", "::ffff:192.0.2.1"},
		{extINET6, "000000000000000000000000C0000201", "::192.0.2.1"},
		{extINET6, "00000000000000000000000000000002", "::2"},
		{extINET6, "20010DB8000000000001000000000001", "2001:db8::1:0:0:1"},
		{extINET6, "00010000000000020000000000000003", "1:0:0:2::3"},
		{extINET6, "00000000000000000000FFFF00000000", "::ffff:0.0.0.0"},
		{extINET6, "00010000000200030004000500060007", "1::2:3:4:5:6:7"},
		{extINET6, "00000000000000000000000000010000", "::0.1.0.0"},
		{extINET6, "00000000000000000000000100000000", "::1:0:0"},
		{extINET6, "00000000000100000000000000000000", "0:0:1::"},
		{extINET6, "ABCD00EF000000000000000000000000", "abcd:ef::"},
	} {
		b, _ := hex.DecodeString(c.hex)
		s := &ColumnSpec{Name: "c", Ext: c.ext}
		v, err := DecodeBinlog(s, change.KindString, string(stripZeros(b)))
		if err != nil || v.Str != c.text {
			t.Errorf("binlog %s %s: got %q, %v; want %q", c.ext, c.hex, v.Str, err, c.text)
		}
		v, err = DecodeText(s, change.KindString, []byte(c.text))
		if err != nil || v.Str != c.text {
			t.Errorf("text %s %q: got %q, %v", c.ext, c.text, v.Str, err)
		}
	}
	if _, err := DecodeText(&ColumnSpec{Name: "c", Ext: extINET4}, change.KindString, []byte("::1")); err == nil {
		t.Error("an IPv6 address read as INET4: want an error")
	}
}

func stripZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// TestExtTextAgainstServer: random INET6 values with runs of zero groups, and UUIDs, spelled
// by cdcd from their bytes equal the server's own text for them.
func TestExtTextAgainstServer(t *testing.T) {
	_, _, admin, _ := serverDB(t, 1, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var hexes []string
	for i := 0; i < 400; i++ {
		var b [16]byte
		for g := 0; g < 8; g++ {
			if r.IntN(2) == 0 {
				b[2*g], b[2*g+1] = byte(r.IntN(3)*r.IntN(256)), byte(r.IntN(256))
			}
		}
		if i%7 == 0 {
			copy(b[:10], make([]byte, 10))
			b[10], b[11] = 0xff, 0xff
		}
		hexes = append(hexes, hex.EncodeToString(b[:]))
	}
	for _, ext := range []string{extINET6, extUUID} {
		var sel []string
		for _, h := range hexes {
			sel = append(sel, fmt.Sprintf("CAST(X'%s' AS %s)", h, ext))
		}
		res, err := admin.Execute("SELECT " + strings.Join(sel, ", "))
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range hexes {
			want, _ := res.GetString(0, i)
			b, _ := hex.DecodeString(h)
			if got := extText(ext, b); got != want {
				t.Errorf("%s %s: cdcd spells %q, the server %q", ext, h, got, want)
			}
		}
	}
}

// TestApplyCatalog: a MariaDB table version's BINARY(16)/BINARY(4) columns become UUID, INET6
// and INET4 where the catalog names them so (a real BINARY(16) stays bytes, a column the
// catalog no longer has keeps the binlog's view), key flags survive, and defaults are set; a
// MySQL version is never taken for MariaDB's types.
func TestApplyCatalog(t *testing.T) {
	bin := func(name string, n uint16) ColumnSpec {
		return ColumnSpec{Name: name, Type: gomysql.MYSQL_TYPE_STRING, Meta: n, Collation: collationBinary}
	}
	build := func() *tableVersion {
		specs := []ColumnSpec{bin("u", 16), bin("a", 4), bin("b", 16), bin("raw", 16), bin("gone", 16), {Name: "n", Type: gomysql.MYSQL_TYPE_LONG}}
		v := &tableVersion{specs: specs, table: &change.Table{Columns: make([]change.Column, len(specs)), KeyColumns: []int{0}}}
		for i := range specs {
			v.table.Columns[i], _ = specs[i].Column()
		}
		v.table.Columns[0].Key = true
		return v
	}
	cat := map[string]catalogColumn{"u": {dataType: "uuid"}, "a": {dataType: "inet4"}, "b": {dataType: "inet6"},
		"raw": {dataType: "binary"}, "n": {dataType: "int", def: "7"}}
	v := build()
	if err := v.applyCatalog(cat, true); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind change.Kind
		typ  string
	}{{change.KindUUID, "uuid"}, {change.KindString, "inet4"}, {change.KindString, "inet6"}, {change.KindBytes, "binary"}, {change.KindBytes, "binary"}, {change.KindInt32, "int"}}
	for i, w := range want {
		if c := v.table.Columns[i]; c.Kind != w.kind || c.SourceType != w.typ {
			t.Errorf("column %s: %v %s, want %v %s", c.Name, c.Kind, c.SourceType, w.kind, w.typ)
		}
	}
	if !v.table.Columns[0].Key {
		t.Error("the key flag of u was lost")
	}
	if d := v.table.Columns[5].Default; !d.Set || d.Int != 7 {
		t.Errorf("column n: default %+v, want 7", d)
	}
	v = build()
	if err := v.applyCatalog(cat, false); err != nil {
		t.Fatal(err)
	}
	if c := v.table.Columns[0]; c.Kind != change.KindBytes {
		t.Errorf("MySQL: column u became %v", c.Kind)
	}
}

// TestSnapshotExtKeys: tables keyed by UUID (version 1 ones, which MariaDB orders by their
// time fields, and random ones), INET6 and INET4 are read in small chunks, every row once.
func TestSnapshotExtKeys(t *testing.T) {
	for _, c := range []struct{ typ, fill string }{
		{"UUID", "INSERT INTO t SELECT CONCAT(LPAD(HEX(seq * 7919), 8, '0'), '-e89b-12d3-a456-', LPAD(HEX(seq), 12, '0')) FROM seq_1_to_150"},
		{"UUID", "INSERT INTO t SELECT UUID() FROM seq_1_to_50"},
		{"UUID", "INSERT INTO t SELECT CONCAT(SUBSTR(MD5(seq), 1, 12), '4', SUBSTR(MD5(seq), 14, 3), 'a', SUBSTR(MD5(seq), 18, 15)) FROM seq_1_to_100"},
		{"INET6", "INSERT INTO t SELECT CONCAT('2001:db8::', HEX(seq * 97), ':', HEX(seq)) FROM seq_1_to_150"},
		{"INET4", "INSERT INTO t SELECT CONCAT('10.0.', seq DIV 256, '.', seq MOD 256) FROM seq_1_to_300"},
	} {
		ctx, src, admin, db := serverDB(t, 7, 1<<20, "CREATE TABLE t (k "+c.typ+" PRIMARY KEY)", c.fill)
		r, err := admin.Execute("SELECT COUNT(*) FROM t")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := r.GetInt(0, 0)
		keys, _ := snapshotAll(t, ctx, src, db+".t", 7, int(n))
		if len(keys) != int(n) || distinct(keys) != int(n) {
			t.Errorf("%s (%s): %d rows read, %d distinct, want %d", c.typ, c.fill, len(keys), distinct(keys), n)
		}
	}
}
