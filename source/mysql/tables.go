package mysql

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// errNoRowMetadata: a TABLE_MAP without column names, i.e. binlog_row_metadata is not FULL
// (now, or when that part of the binlog was written).
var errNoRowMetadata = errors.New("the binlog carries no column names for it: binlog_row_metadata was not FULL when this change was written; " +
	"fix: SET GLOBAL binlog_row_metadata = 'FULL' and set it in my.cnf; changes written before that cannot be decoded exactly, so re-snapshot the table after the change")

// tableVersion is one shape of a captured table, as a TABLE_MAP event described it.
type tableVersion struct {
	table *change.Table
	specs []ColumnSpec
	// err is set when the shape cannot be captured (no row metadata, an unsupported type):
	// every change of the table is then a poison record that names the cause.
	err error
	// meta is the TABLE_MAP body after the table id: equal bytes mean the same shape.
	meta []byte
	// datetimes: the indexes of the DATETIME columns (see binlogText).
	datetimes []int
}

// tables maps TABLE_MAP events to table versions. A table's shape is taken from the event
// alone, never from the catalog, so a change decodes with the columns it was written with
// however far cdcd lags behind later DDL. It outlives sessions (only the stream goroutine
// uses it), so a table version stays the same *change.Table across reconnects.
type tables struct {
	captured map[string]bool // "db.table"
	byName   map[string]*tableVersion
	versions map[string]int
	list     []string // captured tables, "db.table", in configuration order
	// detached: per table, the version snapshot rows used when the catalog's shape differed
	// from the stream's (see snapshotTable).
	detached map[string]*change.Table
	// onNewVersion, if set, is called for each new table version.
	onNewVersion func(*change.Table)
}

func newTables(list []string) (*tables, error) {
	t := &tables{captured: map[string]bool{}, byName: map[string]*tableVersion{}, versions: map[string]int{}}
	for _, name := range list {
		db, tbl, err := change.ParseTableName(name)
		if err != nil {
			return nil, fmt.Errorf("table %q: %w", name, err)
		}
		t.captured[db+"."+tbl] = true
		t.list = append(t.list, db+"."+tbl)
	}
	return t, nil
}

// isCaptured reports whether changes of db.table are captured.
func (t *tables) isCaptured(db, table []byte) bool {
	return t.captured[string(db)+"."+string(table)]
}

// version returns the table version a TABLE_MAP event describes (nil for tables not
// captured). body is the event's post-header and payload (for the shape comparison). A new
// version asks cat (if set) for what the binlog does not carry: the columns' defaults, and on
// MariaDB which BINARY(4)/BINARY(16) columns are UUID, INET4 or INET6 (exttypes.go); its error
// is the session's.
func (t *tables) version(ev *replication.TableMapEvent, body []byte, flavor string, cat func(db, table string) (map[string]catalogColumn, error)) (*tableVersion, error) {
	key := string(ev.Schema) + "." + string(ev.Table)
	if !t.captured[key] {
		return nil, nil
	}
	meta := body
	if len(meta) > 6 {
		meta = meta[6:] // skip the table id, which changes with each table open
	}
	if cur := t.byName[key]; cur != nil && bytes.Equal(cur.meta, meta) {
		return cur, nil
	}
	v := buildVersion(ev, flavor)
	if v.err == nil && cat != nil {
		cols, err := cat(string(ev.Schema), string(ev.Table))
		if err != nil {
			return nil, err
		}
		if err := v.applyCatalog(cols, flavor == gomysql.MariaDBFlavor); err != nil {
			v.err = fmt.Errorf("table %s: %w", key, err)
		}
	}
	v.meta = bytes.Clone(meta)
	t.versions[key]++
	v.table.Version = t.versions[key]
	if prev := t.byName[key]; prev != nil && prev.err == nil && v.err == nil && prev.table.SameShape(v.table) {
		v.table = prev.table // only metadata cdcd does not publish changed (e.g. a charset)
	} else if t.onNewVersion != nil && v.err == nil {
		t.onNewVersion(v.table)
	}
	t.byName[key] = v
	return v, nil
}

// buildVersion derives the table version of one TABLE_MAP event.
func buildVersion(ev *replication.TableMapEvent, flavor string) *tableVersion {
	db, name := string(ev.Schema), string(ev.Table)
	v := &tableVersion{table: &change.Table{Database: db, Schema: db, Name: name, FullIdentity: true}}
	specs, err := SpecsFromTableMap(ev, flavor)
	if err != nil {
		v.err = fmt.Errorf("table %s.%s: %w", db, name, err)
		return v
	}
	v.specs, v.datetimes = specs, datetimeColumns(specs)
	cols := make([]change.Column, len(specs))
	for i := range specs {
		if cols[i], err = specs[i].Column(); err != nil {
			v.err = fmt.Errorf("table %s.%s: %w", db, name, err)
			return v
		}
	}
	for _, k := range ev.PrimaryKey {
		if int(k) < len(cols) {
			cols[k].Key = true
			v.table.KeyColumns = append(v.table.KeyColumns, int(k))
		}
	}
	v.table.Columns = cols
	return v
}

// SpecsFromTableMap reads the column specs of a TABLE_MAP event written with
// binlog_row_metadata=FULL by a server of the flavor ("mysql" or "mariadb").
func SpecsFromTableMap(ev *replication.TableMapEvent, flavor string) ([]ColumnSpec, error) {
	names := ev.ColumnNameString()
	if len(names) != int(ev.ColumnCount) {
		return nil, errNoRowMetadata
	}
	unsigned := unsignedMap(ev, flavor)
	collations := ev.CollationMap()
	enums := ev.EnumStrValueMap()
	sets := ev.SetStrValueMap()
	var enumSetCollations map[int]uint64
	if len(enums)+len(sets) > 0 {
		enumSetCollations = ev.EnumSetCollationMap()
	}
	specs := make([]ColumnSpec, ev.ColumnCount)
	for i := range specs {
		s := &specs[i]
		s.Name = names[i]
		s.Type, s.Meta = realType(ev.ColumnType[i], ev.ColumnMeta[i])
		s.Unsigned = unsigned[i]
		_, s.Nullable = ev.Nullable(i)
		s.Collation = collations[i]
		switch s.Type {
		case gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET:
			// The labels are bytes in the column's character set, as its values would be.
			labels := enums[i]
			if s.Type == gomysql.MYSQL_TYPE_SET {
				labels = sets[i]
			}
			cs := charsetUTF8
			if c, ok := enumSetCollations[i]; ok {
				cs = charsetOf(c)
			}
			s.Values = make([]string, len(labels))
			for j, l := range labels {
				if cs == charsetBinary {
					s.Values[j] = l
					continue
				}
				v, err := decodeCharset(cs, l)
				if err != nil {
					return nil, fmt.Errorf("column %s: label %q: %w", s.Name, l, err)
				}
				s.Values[j] = v
			}
		case gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_BLOB:
			if _, ok := collations[i]; !ok {
				return nil, fmt.Errorf("column %s: the binlog carries no character set for it (binlog_row_metadata is not FULL)", s.Name)
			}
		}
	}
	return specs, nil
}

// realType resolves TABLE_MAP's STRING encoding: ENUM and SET hide behind it, and CHAR
// lengths over 255 borrow bits of the type byte (see Field_string::do_save_field_metadata).
func realType(typ byte, meta uint16) (byte, uint16) {
	if typ != gomysql.MYSQL_TYPE_STRING || meta < 256 {
		return typ, meta
	}
	b0, b1 := byte(meta>>8), byte(meta&0xff)
	if b0&0x30 != 0x30 {
		return b0 | 0x30, uint16(b1) | uint16((b0&0x30)^0x30)<<4
	}
	switch b0 {
	case gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET:
		return b0, uint16(b1)
	}
	return b0, uint16(b1)
}

// qualified is db.table for messages.
func qualified(db, table []byte) string {
	var b strings.Builder
	b.Write(db)
	b.WriteByte('.')
	b.Write(table)
	return b.String()
}

// unsignedMap reads TABLE_MAP's signedness bitmap: one bit per numeric column, most
// significant first. MariaDB counts YEAR among the numeric columns (it is UNSIGNED there),
// MySQL does not; go-mysql's UnsignedMap follows MySQL, which shifts every later column's
// bit on MariaDB.
func unsignedMap(ev *replication.TableMapEvent, flavor string) map[int]bool {
	out := map[int]bool{}
	bit := 0
	for i := 0; i < int(ev.ColumnCount); i++ {
		numeric := ev.IsNumericColumn(i) || flavor == gomysql.MariaDBFlavor && ev.ColumnType[i] == gomysql.MYSQL_TYPE_YEAR
		if !numeric {
			continue
		}
		if bit/8 < len(ev.SignednessBitmap) {
			out[i] = ev.SignednessBitmap[bit/8]&(0x80>>(bit%8)) != 0
		}
		bit++
	}
	return out
}

// snapshotTable is the table version a snapshot chunk's rows are emitted with: the stream's
// latest when the catalog's shape (what the chunk read) equals it, else a version of the
// catalog's shape kept apart from the stream's (the stream has not reached the DDL yet, or has
// not seen the table in this session).
func (t *tables) snapshotTable(cat *change.Table) *change.Table {
	key := cat.Schema + "." + cat.Name
	if cur := t.byName[key]; cur != nil && cur.err == nil && cur.table.SameShape(cat) {
		return cur.table
	}
	if d := t.detached[key]; d != nil && d.SameShape(cat) {
		return d
	}
	if t.detached == nil {
		t.detached = map[string]*change.Table{}
	}
	c := *cat
	t.versions[key]++
	c.Version = t.versions[key]
	t.detached[key] = &c
	if t.onNewVersion != nil {
		t.onNewVersion(&c)
	}
	return &c
}
