package mysql

import (
	"fmt"
	"strconv"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// ColumnSpec is what cdcd needs to know of a column to give it a change.Column and to decode
// its values: the binlog's own description of it (TABLE_MAP with binlog_row_metadata=FULL).
// A snapshot reading rows with SELECT builds the same ColumnSpec from the catalog
// (information_schema.columns: see SpecFromCatalog) so that both paths give the same
// change.Column and, through DecodeBinlog and DecodeText, the same change.Value.
type ColumnSpec struct {
	Name string
	// Type is the column's real type (mysql.MYSQL_TYPE_*): ENUM and SET, which TABLE_MAP
	// spells as STRING, are resolved; DATE is MYSQL_TYPE_DATE.
	Type byte
	// Meta is TABLE_MAP's type metadata: fractional digits of temporal types, (precision<<8 |
	// scale) of DECIMAL, the length in bytes of CHAR/BINARY, the pack length of BLOB/TEXT, the
	// (bytes<<8 | bits) of BIT.
	Meta     uint16
	Unsigned bool
	Nullable bool
	// Collation of a character column (63 is binary: the column holds bytes).
	Collation uint64
	// Values are the labels of an ENUM or SET, in definition order.
	Values []string
	// Ext is MariaDB's UUID, INET4 or INET6 (extUUID ...), which the binlog spells as BINARY(16)
	// or BINARY(4) and the catalog names (exttypes.go); "" for every other column.
	Ext string
}

// collationBinary is the "binary" pseudo charset: BINARY, VARBINARY and BLOB columns.
const collationBinary = 63

// Column derives the change.Column of s. The SourceType is spelled as
// information_schema.columns.DATA_TYPE, plus the fractional digits, precision, unsigned and
// bit width that the binlog carries (never string lengths, which it does not).
func (s *ColumnSpec) Column() (change.Column, error) {
	c := change.Column{Name: s.Name, Nullable: s.Nullable}
	switch s.Ext {
	case extUUID:
		c.Kind, c.SourceType = change.KindUUID, s.Ext
		return c, nil
	case extINET4, extINET6:
		c.Kind, c.SourceType = change.KindString, s.Ext
		return c, nil
	}
	unsigned := ""
	if s.Unsigned {
		unsigned = " unsigned"
	}
	switch s.Type {
	case gomysql.MYSQL_TYPE_TINY:
		c.Kind, c.SourceType = change.KindInt16, "tinyint"+unsigned
	case gomysql.MYSQL_TYPE_SHORT:
		c.Kind, c.SourceType = change.KindInt16, "smallint"+unsigned
		if s.Unsigned {
			c.Kind = change.KindInt32
		}
	case gomysql.MYSQL_TYPE_INT24:
		c.Kind, c.SourceType = change.KindInt32, "mediumint"+unsigned
	case gomysql.MYSQL_TYPE_LONG:
		c.Kind, c.SourceType = change.KindInt32, "int"+unsigned
		if s.Unsigned {
			c.Kind = change.KindInt64
		}
	case gomysql.MYSQL_TYPE_LONGLONG:
		c.Kind, c.SourceType = change.KindInt64, "bigint"+unsigned
		if s.Unsigned {
			c.Kind = change.KindUint64
		}
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		c.Kind, c.Precision, c.Scale = change.KindDecimal, int(s.Meta>>8), int(s.Meta&0xff)
		c.SourceType = fmt.Sprintf("decimal(%d,%d)%s", c.Precision, c.Scale, unsigned)
	case gomysql.MYSQL_TYPE_FLOAT:
		c.Kind, c.SourceType = change.KindFloat32, "float"+unsigned
	case gomysql.MYSQL_TYPE_DOUBLE:
		c.Kind, c.SourceType = change.KindFloat64, "double"+unsigned
	case gomysql.MYSQL_TYPE_BIT:
		n := s.bits()
		c.SourceType = "bit(" + strconv.Itoa(n) + ")"
		if n == 1 {
			c.Kind = change.KindBool
		} else {
			c.Kind = change.KindBytes
		}
	case gomysql.MYSQL_TYPE_YEAR:
		c.Kind, c.SourceType = change.KindInt32, "year"
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		c.Kind, c.SourceType = change.KindDate, "date"
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		c.Kind, c.SourceType = change.KindTimestamp, "datetime"+s.fsp()
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		c.Kind, c.SourceType = change.KindTimestampTZ, "timestamp"+s.fsp()
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		// Microseconds, possibly negative or beyond 24 h (MySQL TIME is a duration from
		// -838:59:59 to 838:59:59).
		c.Kind, c.SourceType = change.KindDuration, "time"+s.fsp()
	case gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		name := "char"
		if s.Type != gomysql.MYSQL_TYPE_STRING {
			name = "varchar"
		}
		switch charsetOf(s.Collation) {
		case charsetBinary:
			c.Kind, c.SourceType = change.KindBytes, map2binary(name)
		case charsetUnknown:
			return c, fmt.Errorf("column %s: character set of collation %d is not supported (cdcd decodes utf8mb4, utf8mb3, ascii, latin1, ucs2, utf16, utf16le, utf32 and binary); convert the column to utf8mb4", s.Name, s.Collation)
		default:
			c.Kind, c.SourceType = change.KindString, name
		}
	case gomysql.MYSQL_TYPE_BLOB:
		size := [5]string{"", "tiny", "", "medium", "long"}[min(int(s.Meta), 4)]
		switch charsetOf(s.Collation) {
		case charsetBinary:
			c.Kind, c.SourceType = change.KindBytes, size+"blob"
		case charsetUnknown:
			return c, fmt.Errorf("column %s: character set of collation %d is not supported (cdcd decodes utf8mb4, utf8mb3, ascii, latin1, ucs2, utf16, utf16le, utf32 and binary); convert the column to utf8mb4", s.Name, s.Collation)
		default:
			c.Kind, c.SourceType = change.KindString, size+"text"
		}
	case gomysql.MYSQL_TYPE_ENUM:
		c.Kind, c.SourceType = change.KindEnum, "enum"
	case gomysql.MYSQL_TYPE_SET:
		c.Kind, c.SourceType = change.KindString, "set"
	case gomysql.MYSQL_TYPE_JSON:
		c.Kind, c.SourceType = change.KindJSON, "json"
	case gomysql.MYSQL_TYPE_GEOMETRY:
		c.Kind, c.SourceType = change.KindBytes, "geometry"
	default:
		return c, fmt.Errorf("column %s: binlog type %d is not supported by cdcd", s.Name, s.Type)
	}
	return c, nil
}

func map2binary(name string) string {
	if name == "char" {
		return "binary"
	}
	return "varbinary"
}

func (s *ColumnSpec) fsp() string {
	if s.Meta == 0 || s.Type == gomysql.MYSQL_TYPE_DATETIME || s.Type == gomysql.MYSQL_TYPE_TIMESTAMP || s.Type == gomysql.MYSQL_TYPE_TIME {
		return ""
	}
	return "(" + strconv.Itoa(int(s.Meta)) + ")"
}

func (s *ColumnSpec) bits() int { return int(s.Meta>>8)*8 + int(s.Meta&0xff) }

// fixedBytes is the declared length of a BINARY(n) column, whose trailing zero bytes the
// binlog strips and SELECT returns; 0 for other columns.
func (s *ColumnSpec) fixedBytes() int {
	if s.Ext != "" || s.Type != gomysql.MYSQL_TYPE_STRING || charsetOf(s.Collation) != charsetBinary {
		return 0
	}
	return int(s.Meta)
}
