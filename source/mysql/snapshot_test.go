package mysql

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Chunk bounds become literals of their column's type; a bound that is not a value of the
// type (a corrupt state) is an error, never SQL.
func TestChunkBoundLiterals(t *testing.T) {
	for _, c := range []struct {
		spec ColumnSpec
		raw  string
		want string // "" : an error
	}{
		{ColumnSpec{Name: "i", Type: gomysql.MYSQL_TYPE_LONG}, "-42", "-42"},
		{ColumnSpec{Name: "u", Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true}, "18446744073709551615", "18446744073709551615"},
		{ColumnSpec{Name: "i", Type: gomysql.MYSQL_TYPE_LONG}, "1 OR 1=1", ""},
		{ColumnSpec{Name: "b", Type: gomysql.MYSQL_TYPE_BIT}, "65535", "65535"},
		{ColumnSpec{Name: "b", Type: gomysql.MYSQL_TYPE_BIT}, "\x01\x02", ""},
		{ColumnSpec{Name: "f", Type: gomysql.MYSQL_TYPE_FLOAT}, "1.0000009536743164", "1.0000009536743164e+00"},
		{ColumnSpec{Name: "d", Type: gomysql.MYSQL_TYPE_DOUBLE}, "0.30000000000000004", "3.0000000000000004e-01"},
		{ColumnSpec{Name: "d", Type: gomysql.MYSQL_TYPE_DOUBLE}, "abc", ""},
		{ColumnSpec{Name: "n", Type: gomysql.MYSQL_TYPE_NEWDECIMAL}, "-12.50", "-12.50"},
		{ColumnSpec{Name: "n", Type: gomysql.MYSQL_TYPE_NEWDECIMAL}, "1e5", ""},
		{ColumnSpec{Name: "e", Type: gomysql.MYSQL_TYPE_ENUM}, "3", "3"},
		{ColumnSpec{Name: "v", Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: collationBinary}, "00FF", "X'00FF'"},
		{ColumnSpec{Name: "v", Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: collationBinary}, "\xff", ""},
		{ColumnSpec{Name: "s", Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: 45}, `it's \ ok`, `'it\'s \\ ok'`},
	} {
		got, err := literal(&c.spec, c.raw)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.spec.Name) {
				t.Errorf("literal(%s, %q) = %q, %v; want an error naming the column", c.spec.Name, c.raw, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("literal(%s, %q) = %q, %v; want %q", c.spec.Name, c.raw, got, err, c.want)
		}
	}
}

// A composite key's condition is the expanded form the optimizer serves from the index; an
// ENUM column compares through its labels.
func TestChunkKeyCondition(t *testing.T) {
	d := &myTable{
		table: &change.Table{KeyColumns: []int{0, 1, 2}},
		specs: []ColumnSpec{{Name: "e", Type: gomysql.MYSQL_TYPE_ENUM, Values: []string{"zz", "b", "y'y"}},
			{Name: "s", Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: 45}, {Name: "i", Type: gomysql.MYSQL_TYPE_LONG}},
		keyIdents: []string{"`e`", "`s`", "`i`"}, ident: "`db`.`t`",
	}
	w := &snapWorker{}
	got, err := w.keyCond(d, ">", []string{"2", "x", "7"})
	want := "(`e` IN ('b', 'y\\'y') AND (`e` IN ('y\\'y') OR (`e` IN ('b') AND (`s` > 'x' OR (`s` = 'x' AND (`i` > 7))))))"
	if err != nil || got != want {
		t.Fatalf("keyCond >\n got %s (%v)\nwant %s", got, err, want)
	}
	got, err = w.keyCond(d, "<=", []string{"1", "x", "7"})
	want = "(`e` IN ('', 'zz') AND (`e` IN ('') OR (`e` IN ('zz') AND (`s` < 'x' OR (`s` = 'x' AND (`i` <= 7))))))"
	if err != nil || got != want {
		t.Fatalf("keyCond <=\n got %s (%v)\nwant %s", got, err, want)
	}
	if _, err := w.keyCond(d, ">", []string{"2", "x"}); err == nil {
		t.Fatal("a bound with fewer values than the key's columns was accepted")
	}
}
