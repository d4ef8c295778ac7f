package mysql

import (
	"context"
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
	rows, err := catalogColumns(conn, db, table)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, nil, fmt.Errorf("table %s.%s %w (or the user may not see it: GRANT SELECT)", db, table, errNoTable)
	}
	specs := make([]ColumnSpec, len(rows))
	cols := make([]change.Column, len(specs))
	var unreadable map[int]error
	mariadb := handshakeMariaDB(conn) // per table described: no round trip
	for i, c := range rows {
		s, err := specFromCatalog(c.name, c.dataType, c.colType, c.prec, c.scale, c.fsp, c.octets, c.collation)
		s.Nullable = c.nullable
		if err == nil {
			cols[i], err = s.Column()
			cols[i].Default = columnDefault(&s, &cols[i], mariadb, c.def, c.defNull, c.extra)
		}
		if err != nil {
			if !tolerate {
				return nil, nil, nil, fmt.Errorf("table %s.%s: %w", db, table, err)
			}
			if unreadable == nil {
				unreadable = map[int]error{}
			}
			unreadable[i] = err
			s = ColumnSpec{Name: c.name, Type: gomysql.MYSQL_TYPE_BLOB, Meta: 4, Collation: collationBinary, Nullable: s.Nullable}
			cols[i] = change.Column{Name: c.name, Nullable: s.Nullable, Kind: change.KindBytes, SourceType: c.dataType}
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

// catalogColumn is a column as information_schema.COLUMNS describes it (dataType lowercased;
// def is COLUMN_DEFAULT, defNull when it is SQL NULL).
type catalogColumn struct {
	name, dataType, colType, def, extra string
	nullable, defNull                   bool
	prec, scale, fsp, octets, collation uint64
}

// catalogColumns reads db.table's columns from the catalog, in order (none: no such table, or
// the user may not see it). Read on a session in UTC (PrepareSnapshotSession): a TIMESTAMP
// default is shown in the session's time zone.
func catalogColumns(conn *client.Conn, db, table string) ([]catalogColumn, error) {
	r, err := conn.Execute(`SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, COALESCE(c.NUMERIC_PRECISION, 0), COALESCE(c.NUMERIC_SCALE, 0),
		COALESCE(c.DATETIME_PRECISION, 0), COALESCE(c.CHARACTER_OCTET_LENGTH, 0), COALESCE(co.ID, 0),
		COALESCE(c.COLUMN_DEFAULT, ''), c.COLUMN_DEFAULT IS NULL, c.EXTRA
		FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME
		WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s.%s: %w", db, table, err)
	}
	out := make([]catalogColumn, r.RowNumber())
	for i := range out {
		c := &out[i]
		c.name, _ = r.GetString(i, 0)
		c.dataType, _ = r.GetString(i, 1)
		c.dataType = strings.ToLower(c.dataType)
		c.colType, _ = r.GetString(i, 2)
		nullable, _ := r.GetString(i, 3)
		c.nullable = nullable == "YES"
		c.prec, _ = r.GetUint(i, 4)
		c.scale, _ = r.GetUint(i, 5)
		c.fsp, _ = r.GetUint(i, 6)
		c.octets, _ = r.GetUint(i, 7)
		c.collation, _ = r.GetUint(i, 8)
		c.def, _ = r.GetString(i, 9)
		defNull, _ := r.GetInt(i, 10)
		c.defNull = defNull != 0
		c.extra, _ = r.GetString(i, 11)
	}
	return out, nil
}

// catalogConn is a stream session's connection for catalog lookups (a new table version's
// defaults and MariaDB types, the shape of a table a TRUNCATE names): opened at first use,
// prepared as a snapshot session (UTC), and kept for the session. A kept connection that
// fails without a server's answer (e.g. closed by wait_timeout) is opened again, once.
type catalogConn struct {
	dsn  string
	conn *client.Conn
}

func (c *catalogConn) do(ctx context.Context, f func(*client.Conn) error) error {
	for {
		fresh := c.conn == nil
		if fresh {
			conn, err := Connect(ctx, c.dsn)
			if err != nil {
				return err
			}
			if err := PrepareSnapshotSession(conn); err != nil {
				_ = conn.Close()
				return err
			}
			c.conn = conn
		}
		err := f(c.conn)
		var me *gomysql.MyError
		if err == nil || errors.Is(err, errNoTable) || errors.As(err, &me) {
			return err
		}
		c.close()
		if fresh {
			return err
		}
	}
}

func (c *catalogConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// table is db.table's shape in the catalog (TableFromCatalog).
func (c *catalogConn) table(ctx context.Context, db, table string) (t *change.Table, err error) {
	err = c.do(ctx, func(conn *client.Conn) error {
		t, _, err = TableFromCatalog(conn, db, table)
		return err
	})
	return t, err
}

// columns is db.table's catalog columns by name (empty: the table is gone).
func (c *catalogConn) columns(ctx context.Context, db, table string) (map[string]catalogColumn, error) {
	var cols []catalogColumn
	err := c.do(ctx, func(conn *client.Conn) (err error) {
		cols, err = catalogColumns(conn, db, table)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]catalogColumn, len(cols))
	for _, col := range cols {
		out[col.name] = col
	}
	return out, nil
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
