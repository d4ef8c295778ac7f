package mysql

import (
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestUnsignedMapMariaDBCountsYear: MariaDB's signedness bitmap has a bit for YEAR columns
// (captured from MariaDB 10.11 for (bt BIT(3), a INT, y YEAR, c INT, u INT UNSIGNED):
// 0b01010000). Reading it as MySQL's shifted every later column: c came out unsigned.
func TestUnsignedMapMariaDBCountsYear(t *testing.T) {
	ev := &replication.TableMapEvent{ColumnCount: 5,
		ColumnType:       []byte{gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_YEAR, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONG},
		ColumnMeta:       make([]uint16, 5),
		SignednessBitmap: []byte{0b01010000}}
	got := unsignedMap(ev, gomysql.MariaDBFlavor)
	want := map[int]bool{1: false, 2: true, 3: false, 4: true}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("column %d: unsigned %v, want %v (map %v)", i, got[i], w, got)
		}
	}
}
