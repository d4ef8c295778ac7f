package mysql

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// errNoTable: the catalog has no such table.
var errNoTable = errors.New("does not exist")

// TableFromCatalog reads a table's shape from information_schema, for reading its rows with
// SELECT (snapshots). It gives the same change.Table (columns, kinds, source types, key) and
// the same ColumnSpecs the binlog's TABLE_MAP gives for the table as it is now, so rows read
// with SELECT and decoded with DecodeText encode to the bytes the binlog's rows do. The
// stream never uses it: a change's shape comes from its own TABLE_MAP.
//
// Read rows on a session prepared with PrepareSnapshotSession, and select FLOAT columns as
// binary (e.g. with a prepared statement) or CAST(col AS DOUBLE): the text protocol prints a
// FLOAT with 6 significant digits, which is not always the stored value.
func TableFromCatalog(conn *client.Conn, db, table string) (*change.Table, []ColumnSpec, error) {
	t, specs, _, err := tableFromCatalog(conn, db, table, false)
	return t, specs, err
}

// unreadableFix is the fix for a column cdcd cannot decode.
const unreadableFix = "fix: change the column to a type and character set cdcd reads, or stop capturing the table; re-snapshot the table after the change"

// tableFromCatalog is TableFromCatalog; with tolerate, a column whose type or character set
// cdcd cannot decode does not fail the table: it gets a bytes column of its own type's name
// and its error in unreadable (by column index), so a snapshot can read the table's rows and
// make each a poison record naming the column, as the stream does with the table's changes.
func tableFromCatalog(conn *client.Conn, db, table string, tolerate bool) (*change.Table, []ColumnSpec, map[int]error, error) {
	r, err := conn.Execute(`SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, COALESCE(c.NUMERIC_PRECISION, 0), COALESCE(c.NUMERIC_SCALE, 0),
		COALESCE(c.DATETIME_PRECISION, 0), COALESCE(c.CHARACTER_OCTET_LENGTH, 0), COALESCE(co.ID, 0),
		COALESCE(c.COLUMN_DEFAULT, ''), c.COLUMN_DEFAULT IS NULL, c.EXTRA
		FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME
		WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the columns of %s.%s: %w", db, table, err)
	}
	if r.RowNumber() == 0 {
		return nil, nil, nil, fmt.Errorf("table %s.%s %w (or the user may not see it: GRANT SELECT)", db, table, errNoTable)
	}
	specs := make([]ColumnSpec, r.RowNumber())
	cols := make([]change.Column, len(specs))
	var unreadable map[int]error
	mariadb := isMariaDB(conn)
	for i := range specs {
		name, _ := r.GetString(i, 0)
		dataType, _ := r.GetString(i, 1)
		colType, _ := r.GetString(i, 2)
		nullable, _ := r.GetString(i, 3)
		prec, _ := r.GetUint(i, 4)
		scale, _ := r.GetUint(i, 5)
		fsp, _ := r.GetUint(i, 6)
		octets, _ := r.GetUint(i, 7)
		collation, _ := r.GetUint(i, 8)
		s, err := specFromCatalog(name, strings.ToLower(dataType), colType, prec, scale, fsp, octets, collation)
		def, _ := r.GetString(i, 9)
		defNull, _ := r.GetInt(i, 10)
		extra, _ := r.GetString(i, 11)
		s.Nullable = nullable == "YES"
		if err == nil {
			cols[i], err = s.Column()
			cols[i].Default = columnDefault(&s, &cols[i], mariadb, def, defNull != 0, extra)
		}
		if err != nil {
			if !tolerate {
				return nil, nil, nil, fmt.Errorf("table %s.%s: %w", db, table, err)
			}
			if unreadable == nil {
				unreadable = map[int]error{}
			}
			unreadable[i] = err
			s = ColumnSpec{Name: name, Type: gomysql.MYSQL_TYPE_BLOB, Meta: 4, Collation: collationBinary, Nullable: s.Nullable}
			cols[i] = change.Column{Name: name, Nullable: s.Nullable, Kind: change.KindBytes, SourceType: strings.ToLower(dataType)}
		}
		specs[i] = s
	}
	t := &change.Table{Database: db, Schema: db, Name: table, FullIdentity: true, Columns: cols}
	k, err := conn.Execute(`SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the primary key of %s.%s: %w", db, table, err)
	}
	for i := 0; i < k.RowNumber(); i++ {
		name, _ := k.GetString(i, 0)
		for j := range specs {
			if specs[j].Name == name {
				t.KeyColumns = append(t.KeyColumns, j)
				t.Columns[j].Key = true
			}
		}
	}
	return t, specs, unreadable, nil
}

// PrepareSnapshotSession sets what DecodeText expects of a session: results in utf8mb4,
// TIMESTAMP values in UTC, and an sql_mode of its own (a session inherits the global one:
// PAD_CHAR_TO_FULL_LENGTH would pad CHAR values the binlog does not, NO_BACKSLASH_ESCAPES and
// ANSI_QUOTES would change how cdcd's statements and key literals read).
func PrepareSnapshotSession(conn *client.Conn) error {
	for _, q := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'", "SET SESSION sql_mode = ''"} {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("preparing the snapshot session (%s): %w", q, err)
		}
	}
	return nil
}

func specFromCatalog(name, dataType, colType string, prec, scale, fsp, octets, collation uint64) (ColumnSpec, error) {
	s := ColumnSpec{Name: name, Unsigned: strings.Contains(strings.ToLower(colType), "unsigned"), Collation: collation}
	textSize := func() uint16 {
		switch {
		case strings.HasPrefix(dataType, "tiny"):
			return 1
		case strings.HasPrefix(dataType, "medium"):
			return 3
		case strings.HasPrefix(dataType, "long"):
			return 4
		}
		return 2
	}
	switch dataType {
	case "tinyint", "bool", "boolean":
		s.Type = gomysql.MYSQL_TYPE_TINY
	case "smallint":
		s.Type = gomysql.MYSQL_TYPE_SHORT
	case "mediumint":
		s.Type = gomysql.MYSQL_TYPE_INT24
	case "int", "integer":
		s.Type = gomysql.MYSQL_TYPE_LONG
	case "bigint":
		s.Type = gomysql.MYSQL_TYPE_LONGLONG
	case "decimal", "numeric":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_NEWDECIMAL, uint16(prec)<<8|uint16(scale)
	case "float":
		s.Type = gomysql.MYSQL_TYPE_FLOAT
	case "double", "real", "double precision":
		s.Type = gomysql.MYSQL_TYPE_DOUBLE
	case "bit":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_BIT, uint16(prec/8)<<8|uint16(prec%8)
	case "year":
		s.Type = gomysql.MYSQL_TYPE_YEAR
	case "date":
		s.Type = gomysql.MYSQL_TYPE_DATE
	case "datetime":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_DATETIME2, uint16(fsp)
	case "timestamp":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_TIMESTAMP2, uint16(fsp)
	case "time":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_TIME2, uint16(fsp)
	case "char":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_STRING, uint16(octets)
	case "varchar":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_VARCHAR, uint16(octets)
	case "binary":
		s.Type, s.Meta, s.Collation = gomysql.MYSQL_TYPE_STRING, uint16(octets), collationBinary
	case "varbinary":
		s.Type, s.Meta, s.Collation = gomysql.MYSQL_TYPE_VARCHAR, uint16(octets), collationBinary
	case "tinytext", "text", "mediumtext", "longtext":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_BLOB, textSize()
	case "tinyblob", "blob", "mediumblob", "longblob":
		s.Type, s.Meta, s.Collation = gomysql.MYSQL_TYPE_BLOB, textSize(), collationBinary
	case "enum", "set":
		s.Type = gomysql.MYSQL_TYPE_ENUM
		if dataType == "set" {
			s.Type = gomysql.MYSQL_TYPE_SET
		}
		vals, err := parseLabels(colType)
		if err != nil {
			return s, fmt.Errorf("column %s: %w", name, err)
		}
		s.Values = vals
	case extUUID, extINET4, extINET6:
		// As the binlog spells them (BINARY(n)), marked as what they are (exttypes.go).
		s.Type, s.Meta, s.Collation, s.Ext = gomysql.MYSQL_TYPE_STRING, uint16(extLen(dataType)), collationBinary, dataType
	case "json":
		s.Type = gomysql.MYSQL_TYPE_JSON
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		s.Type, s.Meta = gomysql.MYSQL_TYPE_GEOMETRY, 4
	default:
		return s, fmt.Errorf("column %s: type %s is not supported by cdcd's snapshot reads", name, colType)
	}
	return s, nil
}

// parseLabels reads the labels of an ENUM or SET column type such as enum('a','b'); a
// quote inside a label is doubled.
func parseLabels(colType string) ([]string, error) {
	open := strings.IndexByte(colType, '(')
	if open < 0 {
		return nil, fmt.Errorf("cannot read the labels of %s", colType)
	}
	var labels []string
	var cur strings.Builder
	in := false
	for i := open + 1; i < len(colType); i++ {
		c := colType[i]
		switch {
		case !in && c == '\'':
			in = true
			cur.Reset()
		case in && c == '\'' && i+1 < len(colType) && colType[i+1] == '\'':
			cur.WriteByte('\'')
			i++
		case in && c == '\'':
			in = false
			labels = append(labels, cur.String())
		case in && c == '\\' && i+1 < len(colType):
			cur.WriteByte(colType[i+1])
			i++
		case in:
			cur.WriteByte(c)
		}
	}
	if in {
		return nil, fmt.Errorf("cannot read the labels of %s", colType)
	}
	return labels, nil
}
