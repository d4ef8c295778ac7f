package mysql

import (
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Column defaults. A NOT NULL column's constant default goes into its Avro field's default
// (as Debezium does), so adding such a column is a compatible schema change under BACKWARD.
// The default is read from information_schema.COLUMNS (COLUMN_DEFAULT, EXTRA) by the snapshot's
// catalog read and, for the stream, when it meets a new shape of the table (the binlog does not
// carry defaults), and decoded as a SELECT of the value would be (DecodeText), so both paths
// give the same change.Column. No default is given for:
//   - an expression (CURRENT_TIMESTAMP, uuid(), (1 + 1); MySQL: EXTRA DEFAULT_GENERATED);
//   - a binary column (BINARY, VARBINARY, BLOB): information_schema shows its bytes converted
//     to text, which loses those that are not characters;
//   - a value that does not decode (a zero date in a NOT NULL column).

// columnDefault is the Default of a column from COLUMN_DEFAULT (def; defNull: SQL NULL) and
// EXTRA as a server of the flavor spells them: MariaDB (10.2.7+) writes an SQL literal
// ('text' quoted, numbers bare, b'101', NULL) or the expression; MySQL writes the bare value
// and marks expressions DEFAULT_GENERATED.
func columnDefault(s *ColumnSpec, c *change.Column, mariadb bool, def string, defNull bool, extra string) change.Default {
	if defNull || c.Nullable || s.Collation == collationBinary && s.Ext == "" || s.Type == gomysql.MYSQL_TYPE_GEOMETRY {
		return change.Default{}
	}
	lit, ok := def, true
	switch {
	case strings.Contains(strings.ToUpper(extra), "DEFAULT_GENERATED"):
		return change.Default{}
	case len(def) >= 3 && (def[0] == 'b' || def[0] == 'B') && def[1] == '\'' && def[len(def)-1] == '\'':
		lit, ok = bitLiteral(s, def[2:len(def)-1])
	case mariadb && len(def) >= 2 && def[0] == '\'' && def[len(def)-1] == '\'':
		lit, ok = unquoteDefault(def[1 : len(def)-1])
	case mariadb:
		// Bare: a number, NULL or an expression.
		if _, err := strconv.ParseFloat(def, 64); err != nil {
			return change.Default{}
		}
	case strings.HasPrefix(strings.ToUpper(def), "CURRENT_TIMESTAMP"):
		return change.Default{} // MySQL before 8.0.13 does not mark it
	}
	if !ok {
		return change.Default{}
	}
	v, err := DecodeText(s, c.Kind, []byte(lit))
	if err != nil {
		return change.Default{}
	}
	return change.DefaultOf(v)
}

// unquoteDefault undoes MariaDB's quoting of a default's text: doubled quotes and backslash
// escapes.
func unquoteDefault(q string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'' && i+1 < len(q) && q[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case ch == '\'':
			return "", false
		case ch == '\\' && i+1 < len(q):
			i++
			switch q[i] {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(26)
			case 'b':
				b.WriteByte('\b')
			default:
				b.WriteByte(q[i])
			}
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), true
}

// bitLiteral turns the digits of b'101' into what SELECT returns for a BIT column: its bytes,
// big-endian, as wide as the column.
func bitLiteral(s *ColumnSpec, digits string) (string, bool) {
	if s.Type != gomysql.MYSQL_TYPE_BIT {
		return "", false
	}
	u, err := strconv.ParseUint(digits, 2, 64)
	if err != nil {
		return "", false
	}
	n := (s.bits() + 7) / 8
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
	return string(b), true
}
