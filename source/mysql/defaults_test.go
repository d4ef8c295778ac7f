package mysql

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// TestColumnDefault: COLUMN_DEFAULT as MariaDB 10.11 and MySQL 8 spell it (the MariaDB forms
// were read from the server) becomes the value a SELECT of it gives; expressions, NULL,
// nullable and binary columns give no default.
func TestColumnDefault(t *testing.T) {
	str := ColumnSpec{Name: "s", Type: gomysql.MYSQL_TYPE_VARCHAR, Collation: 45}
	for _, c := range []struct {
		name    string
		spec    ColumnSpec
		mariadb bool
		def     string
		defNull bool
		extra   string
		want    change.Default
	}{
		{"int", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG}, true, "7", false, "", change.Default{Set: true, Int: 7}},
		{"quoted", str, true, `'it''s \\ x\0'`, false, "", change.Default{Set: true, Str: "it's \\ x\x00"}},
		{"mysql string", str, false, `it's`, false, "", change.Default{Set: true, Str: "it's"}},
		{"decimal", ColumnSpec{Type: gomysql.MYSQL_TYPE_NEWDECIMAL, Meta: 5<<8 | 2}, true, "1.50", false, "", change.Default{Set: true, Str: "1.50"}},
		{"bit", ColumnSpec{Type: gomysql.MYSQL_TYPE_BIT, Meta: 3}, true, "b'101'", false, "", change.Default{Set: true, Bytes: "\x05"}},
		{"bit16", ColumnSpec{Type: gomysql.MYSQL_TYPE_BIT, Meta: 2 << 8}, false, "b'100000001'", false, "", change.Default{Set: true, Bytes: "\x01\x01"}},
		{"date", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE}, true, "'2024-02-29'", false, "", change.Default{Set: true, Int: 19782}},
		{"time", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIME2}, true, "'-01:02:03'", false, "", change.Default{Set: true, Int: -3723000000}},
		{"uuid", ColumnSpec{Type: gomysql.MYSQL_TYPE_STRING, Meta: 16, Collation: collationBinary, Ext: extUUID}, true,
			"'123e4567-e89b-12d3-a456-426614174000'", false, "", change.Default{Set: true, Str: "123e4567-e89b-12d3-a456-426614174000"}},
		{"current_timestamp", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIMESTAMP2}, true, "current_timestamp()", false, "", change.Default{}},
		{"mysql generated", ColumnSpec{Type: gomysql.MYSQL_TYPE_TIMESTAMP2}, false, "CURRENT_TIMESTAMP", false, "DEFAULT_GENERATED", change.Default{}},
		{"mysql expression", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG}, false, "(1 + 1)", false, "DEFAULT_GENERATED", change.Default{}},
		{"expression", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG}, true, "(1 + 1)", false, "", change.Default{}},
		{"uuid()", str, true, "uuid()", false, "", change.Default{}},
		{"none", ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG}, true, "", true, "", change.Default{}},
		{"binary", ColumnSpec{Type: gomysql.MYSQL_TYPE_STRING, Meta: 3, Collation: collationBinary}, true, `'\0?A'`, false, "", change.Default{}},
		{"zero date", ColumnSpec{Type: gomysql.MYSQL_TYPE_DATE}, true, "'0000-00-00'", false, "", change.Default{}},
	} {
		col, err := c.spec.Column()
		if err != nil {
			t.Fatal(err)
		}
		if got := columnDefault(&c.spec, &col, c.mariadb, c.def, c.defNull, c.extra); got != c.want {
			t.Errorf("%s: %q: got %+v, want %+v", c.name, c.def, got, c.want)
		}
	}
	nullable := ColumnSpec{Type: gomysql.MYSQL_TYPE_LONG, Nullable: true}
	col, _ := nullable.Column()
	if d := columnDefault(&nullable, &col, true, "7", false, ""); d.Set {
		t.Errorf("a nullable column: its field's default stays null, got %+v", d)
	}
}
