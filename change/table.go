package change

import (
	"fmt"
	"strings"
)

// Kind is the source-neutral logical type of a column. Each source maps its native types onto
// these; the encoder maps these onto Avro. A source type that maps to no Kind is an error the
// source reports, not a silent conversion.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindBool
	KindInt16
	KindInt32
	KindInt64
	KindUint64 // MySQL BIGINT UNSIGNED; encoded as a decimal(20,0) so no value goes negative
	KindFloat32
	KindFloat64
	// KindDecimal is a fixed-precision decimal (Precision/Scale set); Value.Str holds its
	// canonical text (e.g. "-12.50"). Unconstrained numerics (Precision 0) are carried as text.
	KindDecimal
	KindString
	KindBytes
	KindDate        // Value.Int: days since 1970-01-01
	KindTime        // Value.Int: microseconds since midnight
	KindTimeTZ      // Value.Str: ISO-8601 time with offset, e.g. "10:11:12.5+02:00"
	KindTimestamp   // Value.Int: microseconds since 1970-01-01T00:00:00, no zone
	KindTimestampTZ // Value.Int: microseconds since 1970-01-01T00:00:00Z
	KindInterval    // Value.Str: ISO-8601 duration, e.g. "P1Y2M3DT4H5M6.5S"
	KindUUID        // Value.Str: canonical lowercase text
	KindJSON        // Value.Str: JSON text
	KindEnum        // Value.Str: the label
	KindArray       // Value.Arr: elements of Column.Elem
	// KindDuration is a signed length of time (MySQL TIME, -838:59:59 to 838:59:59, not a
	// time of day); Value.Int: microseconds.
	KindDuration
)

var kindNames = [...]string{"invalid", "bool", "int16", "int32", "int64", "uint64", "float32",
	"float64", "decimal", "string", "bytes", "date", "time", "timetz", "timestamp", "timestamptz",
	"interval", "uuid", "json", "enum", "array", "duration"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Special temporal values. Postgres stores ±infinity as the extreme int64 (timestamps) and
// int32 (dates) values; cdcd carries them through unchanged so no value is silently altered.
const (
	TimestampInfinity    int64 = 1<<63 - 1
	TimestampNegInfinity int64 = -1 << 63
	DateInfinity         int64 = 1<<31 - 1
	DateNegInfinity      int64 = -1 << 31
)

// Column describes one column of a table version.
type Column struct {
	Name     string
	Kind     Kind
	Elem     Kind // element kind when Kind == KindArray
	Nullable bool
	Key      bool // part of the record key (primary key / replica identity)
	// Precision and Scale of a KindDecimal column; Precision 0 means unconstrained.
	Precision, Scale int
	// SourceType is the database's own spelling of the type, e.g. "numeric(10,2)".
	SourceType string
	// Default is the column's constant default value, which a schema may carry (an Avro
	// field's default); unset when the column has none, or an expression (CURRENT_TIMESTAMP).
	Default Default
}

// Default is a column's default value in Value's scalar fields (comparable, so Columns are).
type Default struct {
	Set   bool
	Int   int64
	Uint  uint64
	Float float64
	Str   string
	Bytes string
}

// DefaultOf is the Default of a present scalar value (unset for another).
func DefaultOf(v Value) Default {
	if v.State != Present || v.Arr != nil {
		return Default{}
	}
	return Default{Set: true, Int: v.Int, Uint: v.Uint, Float: v.Float, Str: v.Str, Bytes: string(v.Bytes)}
}

// Value is the default as a present Value (its Bytes are a copy).
func (d Default) Value() Value {
	v := Value{Int: d.Int, Uint: d.Uint, Float: d.Float, Str: d.Str}
	if d.Bytes != "" {
		v.Bytes = []byte(d.Bytes)
	}
	return v
}

// Table is one version of a captured table's shape. It is immutable once emitted.
type Table struct {
	Database string // Postgres database or MySQL schema the table lives in
	Schema   string // Postgres schema; for MySQL the database name again
	Name     string
	Columns  []Column
	// KeyColumns are indexes into Columns of the key, in key order. Empty when the table has
	// no key: its records then have a null key.
	KeyColumns []int
	// Version increases each time the source sees a changed shape of this table.
	Version int
	// FullIdentity reports that the source sends every old column on update and delete
	// (Postgres REPLICA IDENTITY FULL, MySQL binlog_row_image=FULL).
	FullIdentity bool
}

// QualifiedName is "schema.table".
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// SameShape reports whether two table versions have the same columns and key.
func (t *Table) SameShape(u *Table) bool {
	if t == nil || u == nil || len(t.Columns) != len(u.Columns) || len(t.KeyColumns) != len(u.KeyColumns) {
		return false
	}
	for i := range t.Columns {
		if t.Columns[i] != u.Columns[i] {
			return false
		}
	}
	for i := range t.KeyColumns {
		if t.KeyColumns[i] != u.KeyColumns[i] {
			return false
		}
	}
	return true
}

// ParseTableName splits "schema.table". Quoted parts ("My.Schema"."t") may contain dots.
func ParseTableName(s string) (schema, table string, err error) {
	parts, err := splitQualified(s)
	if err != nil {
		return "", "", err
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("%q is not schema-qualified: write it as schema.table, e.g. public.%s", s, strings.Trim(s, `"`))
	}
	return parts[0], parts[1], nil
}

func splitQualified(s string) ([]string, error) {
	var parts []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && inQuote && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '.' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("%q has an unterminated quote", s)
	}
	return append(parts, cur.String()), nil
}
