package postgres

// Column types and their text decoding.
//
// pgoutput sends every column in TEXT format: the output function's text of the value, plus
// the column's type OID and typmod in the Relation message. typeCatalog maps (OID, typmod) to
// a typeInfo (built-in types statically, user types with one pg_type query, cached), and
// decodeText turns the text into a change.Value of the type's Kind.
//
// The text forms depend on session settings of the connection that runs the output functions
// (the replication connection, which connectReplication fixes). decodeText requires
// DateStyle=ISO and IntervalStyle=iso_8601 (passed through verbatim) and accepts bytea_output
// hex or escape. Floats round-trip exactly only with extra_float_digits >= 1 (the default
// since PG 12). timestamptz text carries its own UTC offset, so TimeZone does not change a
// decoded timestamp; it does change the text of tstzrange and tstzmultirange values, which
// are carried as text, so it must stay fixed (UTC) for the same value to encode the same way.
// money's text follows the server's lc_monetary, which the connection does not fix.
//
// A type with no matching Kind is either carried as KindString holding its output text, when
// that text is the type's canonical, lossless representation (ranges, multiranges, geometric
// types, bit strings, tsvector, money, xml, extension base types such as citext), or rejected
// with errUnsupportedType (composite and pseudo types). A value the column's Kind cannot hold
// unchanged (a timestamp past int64 microseconds, an array with another lower bound than 1 or
// more than one dimension) is refused with errNotRepresentable: cdcd never changes a value
// silently.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/change"
)

// errUnsupportedType marks a column type or value shape cdcd cannot carry without changing
// the value. It is a schema problem: retrying does not help.
var errUnsupportedType = errors.New("unsupported type")

// errMalformedValue marks column text that is not what the type's output function prints
// under the session settings decodeText requires.
var errMalformedValue = errors.New("malformed value")

// errNotRepresentable marks a well-formed value that the column's Kind cannot hold without
// changing it (a timestamp past what int64 microseconds since 1970 can count, an array whose
// lower bound is not 1 or that has more than one dimension). The change is a poison record of
// class value_not_representable: errors.As finds NotRepresentable through any wrapping.
var errNotRepresentable error = notRepresentableError{}

type notRepresentableError struct{}

func (notRepresentableError) Error() string { return "value not representable" }

// NotRepresentable marks the error for the dead-letter classification (class
// value_not_representable, not undecodable_value): the text was understood, and no retry or
// cdcd upgrade changes the outcome; the value itself must change.
func (notRepresentableError) NotRepresentable() bool { return true }

// typeInfo describes a column type as decodeText needs it. A *typeInfo is shared and must not
// be modified once the catalog returned it.
type typeInfo struct {
	// OID is the column's declared type (for a domain, the domain's OID).
	OID uint32
	// Name is pg_type.typname of OID.
	Name string
	Kind change.Kind
	// Elem and ElemOID describe the elements when Kind is KindArray; ElemOID is the declared
	// element type (a domain or enum OID for arrays of those).
	Elem    change.Kind
	ElemOID uint32
	// Precision and Scale come from a numeric typmod (of the elements, for arrays of numeric);
	// Precision 0 means unconstrained. Scale may be negative (PG 15+ numeric(5,-2)).
	Precision, Scale int
	// SourceType is the type as format_type spells it: "numeric(10,2)", "integer[]",
	// "timestamp with time zone"; user types are schema-qualified: "public.mood".
	SourceType string
	// Typmod is the effective typmod after domain resolution (a domain keeps its base type's
	// typmod in pg_type.typtypmod); -1 when there is none.
	Typmod int32
	// BaseOID is the type whose text form is decoded: OID with domains resolved.
	BaseOID uint32

	elem  *typeInfo // element type when Kind is KindArray
	delim byte      // pg_type.typdelim: the separator when this type is an array element
}

// column is the change.Column for a column of this type; the caller sets Nullable and Key.
func (t *typeInfo) column(name string) change.Column {
	return change.Column{Name: name, Kind: t.Kind, Elem: t.Elem, Precision: t.Precision,
		Scale: t.Scale, SourceType: t.SourceType}
}

// numericTypmod decodes a numeric typmod: ((precision << 16) | scale) + VARHDRSZ, where since
// PG 15 the scale is an 11-bit two's complement number (numeric(5,-2)). For scales 0..1000 this
// equals (typmod-4)&0xffff. typmod -1 is unconstrained (0, 0).
func numericTypmod(typmod int32) (precision, scale int) {
	if typmod < 4 {
		return 0, 0
	}
	t := typmod - 4
	return int(t>>16) & 0xffff, int(((t & 0x7ff) ^ 1024) - 1024)
}

// Built-in type OIDs decodeText treats specially, as pgtype spells them.
const (
	oidBytea       = 17
	oidBox         = 603
	oidBit         = 1560
	oidVarbit      = 1562
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidNumeric     = 1700
)

// builtinType is a type whose OID is fixed by initdb (OIDs below 10000 never change).
type builtinType struct {
	oid, arrayOID uint32
	name          string // pg_type.typname
	sql           string // format_type(oid, -1)
	kind          change.Kind
}

// builtinList holds every built-in type cdcd knows without asking the catalog. Types whose
// text output is their canonical representation but which have no Kind of their own (money,
// geometric types, bit strings, ranges, tsvector, ...) are KindString. The OIDs are checked
// against pgx's pgtype constants and against a live server by the tests.
var builtinList = []builtinType{
	{16, 1000, "bool", "boolean", change.KindBool},
	{17, 1001, "bytea", "bytea", change.KindBytes},
	{18, 1002, "char", `"char"`, change.KindString},
	{19, 1003, "name", "name", change.KindString},
	{20, 1016, "int8", "bigint", change.KindInt64},
	{21, 1005, "int2", "smallint", change.KindInt16},
	{22, 1006, "int2vector", "int2vector", change.KindString},
	{23, 1007, "int4", "integer", change.KindInt32},
	{24, 1008, "regproc", "regproc", change.KindString},
	{25, 1009, "text", "text", change.KindString},
	{26, 1028, "oid", "oid", change.KindInt64}, // unsigned 32-bit: Int32 would go negative
	{27, 1010, "tid", "tid", change.KindString},
	{28, 1011, "xid", "xid", change.KindInt64}, // unsigned 32-bit
	{29, 1012, "cid", "cid", change.KindInt64}, // unsigned 32-bit
	{30, 1013, "oidvector", "oidvector", change.KindString},
	{114, 199, "json", "json", change.KindJSON},
	{142, 143, "xml", "xml", change.KindString},
	{600, 1017, "point", "point", change.KindString},
	{601, 1018, "lseg", "lseg", change.KindString},
	{602, 1019, "path", "path", change.KindString},
	{603, 1020, "box", "box", change.KindString},
	{604, 1027, "polygon", "polygon", change.KindString},
	{628, 629, "line", "line", change.KindString},
	{650, 651, "cidr", "cidr", change.KindString},
	{700, 1021, "float4", "real", change.KindFloat32},
	{701, 1022, "float8", "double precision", change.KindFloat64},
	{718, 719, "circle", "circle", change.KindString},
	{774, 775, "macaddr8", "macaddr8", change.KindString},
	{790, 791, "money", "money", change.KindString}, // text depends on lc_monetary
	{829, 1040, "macaddr", "macaddr", change.KindString},
	{869, 1041, "inet", "inet", change.KindString},
	{1042, 1014, "bpchar", "bpchar", change.KindString},
	{1043, 1015, "varchar", "character varying", change.KindString},
	{1082, 1182, "date", "date", change.KindDate},
	{1083, 1183, "time", "time without time zone", change.KindTime},
	{1114, 1115, "timestamp", "timestamp without time zone", change.KindTimestamp},
	{1184, 1185, "timestamptz", "timestamp with time zone", change.KindTimestampTZ},
	{1186, 1187, "interval", "interval", change.KindInterval},
	{1266, 1270, "timetz", "time with time zone", change.KindTimeTZ},
	{1560, 1561, "bit", `"bit"`, change.KindString}, // format_type quotes it without a typmod
	{1562, 1563, "varbit", "bit varying", change.KindString},
	{1700, 1231, "numeric", "numeric", change.KindDecimal},
	{2205, 2210, "regclass", "regclass", change.KindString},
	{2206, 2211, "regtype", "regtype", change.KindString},
	{2950, 2951, "uuid", "uuid", change.KindUUID},
	{3220, 3221, "pg_lsn", "pg_lsn", change.KindString},
	{3614, 3643, "tsvector", "tsvector", change.KindString},
	{3615, 3645, "tsquery", "tsquery", change.KindString},
	{3802, 3807, "jsonb", "jsonb", change.KindJSON},
	{3904, 3905, "int4range", "int4range", change.KindString},
	{3906, 3907, "numrange", "numrange", change.KindString},
	{3908, 3909, "tsrange", "tsrange", change.KindString},
	{3910, 3911, "tstzrange", "tstzrange", change.KindString},
	{3912, 3913, "daterange", "daterange", change.KindString},
	{3926, 3927, "int8range", "int8range", change.KindString},
	{4072, 4073, "jsonpath", "jsonpath", change.KindString},
	{4451, 6150, "int4multirange", "int4multirange", change.KindString},
	{4532, 6151, "nummultirange", "nummultirange", change.KindString},
	{4533, 6152, "tsmultirange", "tsmultirange", change.KindString},
	{4534, 6153, "tstzmultirange", "tstzmultirange", change.KindString},
	{4535, 6155, "datemultirange", "datemultirange", change.KindString},
	{4536, 6157, "int8multirange", "int8multirange", change.KindString},
	{5069, 271, "xid8", "xid8", change.KindUint64},
}

// builtinTypes indexes builtinList by OID; array types map to their element's entry.
var builtinTypes, builtinArrays = func() (scalars map[uint32]*builtinType, arrays map[uint32]*builtinType) {
	scalars = make(map[uint32]*builtinType, len(builtinList))
	arrays = make(map[uint32]*builtinType, len(builtinList))
	for i := range builtinList {
		b := &builtinList[i]
		scalars[b.oid] = b
		arrays[b.arrayOID] = b
	}
	return scalars, arrays
}()

func builtinInfo(oid uint32, typmod int32) (*typeInfo, bool) {
	if b, ok := builtinTypes[oid]; ok {
		t := &typeInfo{OID: oid, Name: b.name, Kind: b.kind, SourceType: builtinSourceType(b, typmod),
			Typmod: typmod, BaseOID: oid, delim: ','}
		if oid == oidBox {
			t.delim = ';'
		}
		if b.kind == change.KindDecimal {
			t.Precision, t.Scale = numericTypmod(typmod)
		}
		return t, true
	}
	if b, ok := builtinArrays[oid]; ok {
		// An array column's typmod is its elements' typmod.
		e, _ := builtinInfo(b.oid, typmod)
		return arrayInfo(oid, "_"+b.name, typmod, e), true
	}
	return nil, false
}

func arrayInfo(oid uint32, name string, typmod int32, e *typeInfo) *typeInfo {
	return &typeInfo{OID: oid, Name: name, Kind: change.KindArray, Elem: e.Kind, ElemOID: e.OID,
		Precision: e.Precision, Scale: e.Scale, SourceType: e.SourceType + "[]", Typmod: typmod,
		BaseOID: oid, elem: e, delim: ','}
}

// builtinSourceType spells a built-in type with its typmod the way format_type does.
func builtinSourceType(b *builtinType, typmod int32) string {
	if typmod < 0 {
		return b.sql
	}
	switch b.oid {
	case oidNumeric:
		p, s := numericTypmod(typmod)
		return "numeric(" + strconv.Itoa(p) + "," + strconv.Itoa(s) + ")"
	case oidVarchar:
		return "character varying(" + strconv.Itoa(int(typmod-4)) + ")"
	case oidBPChar:
		return "character(" + strconv.Itoa(int(typmod-4)) + ")"
	case oidBit:
		return "bit(" + strconv.Itoa(int(typmod)) + ")"
	case oidVarbit:
		return "bit varying(" + strconv.Itoa(int(typmod)) + ")"
	case oidTime:
		return "time(" + strconv.Itoa(int(typmod)) + ") without time zone"
	case oidTimetz:
		return "time(" + strconv.Itoa(int(typmod)) + ") with time zone"
	case oidTimestamp:
		return "timestamp(" + strconv.Itoa(int(typmod)) + ") without time zone"
	case oidTimestamptz:
		return "timestamp(" + strconv.Itoa(int(typmod)) + ") with time zone"
	case oidInterval:
		return "interval" + intervalTypmod(typmod)
	}
	return b.sql
}

// intervalTypmod is PG's intervaltypmodout: typmod = (fields mask << 16) | precision.
func intervalTypmod(typmod int32) string {
	const (
		month, year, day, hour, minute, second = 1 << 1, 1 << 2, 1 << 3, 1 << 10, 1 << 11, 1 << 12
		fullRange, fullPrecision               = 0x7fff, 0xffff
	)
	var fields string
	switch (typmod >> 16) & 0x7fff {
	case year:
		fields = " year"
	case month:
		fields = " month"
	case day:
		fields = " day"
	case hour:
		fields = " hour"
	case minute:
		fields = " minute"
	case second:
		fields = " second"
	case year | month:
		fields = " year to month"
	case day | hour:
		fields = " day to hour"
	case day | hour | minute:
		fields = " day to minute"
	case day | hour | minute | second:
		fields = " day to second"
	case hour | minute:
		fields = " hour to minute"
	case hour | minute | second:
		fields = " hour to second"
	case minute | second:
		fields = " minute to second"
	case fullRange:
	}
	if p := typmod & 0xffff; p != fullPrecision {
		return fields + "(" + strconv.Itoa(int(p)) + ")"
	}
	return fields
}

// catalogQuerier is the one method the type catalog needs; *pgx.Conn has it. It must be a
// regular (not replication) connection to the captured database.
type catalogQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// typeCatalogQuery returns, as one JSON array, the pg_type row of $1 and of every type it
// leads to through domains (typbasetype) and arrays (typelem), so resolving a type takes one
// round trip however deep its domains nest.
const typeCatalogQuery = `WITH RECURSIVE deps(oid) AS (
    SELECT $1::oid
  UNION
    SELECT v.x FROM deps d
      JOIN pg_catalog.pg_type t ON t.oid = d.oid,
      LATERAL (VALUES (t.typbasetype), (t.typelem)) AS v(x)
    WHERE v.x <> 0
)
SELECT coalesce(json_agg(json_build_object(
    'oid', t.oid::int8, 'name', t.typname, 'nsp', n.nspname,
    'qname', quote_ident(n.nspname) || '.' || quote_ident(t.typname),
    'type', t.typtype, 'category', t.typcategory, 'len', t.typlen,
    'elem', t.typelem::int8, 'base', t.typbasetype::int8, 'typmod', t.typtypmod,
    'delim', t.typdelim))::text, '[]')
FROM deps d
JOIN pg_catalog.pg_type t ON t.oid = d.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace`

// pgTypeRow is the part of a pg_type row the catalog uses.
type pgTypeRow struct {
	OID      uint32 `json:"oid"`
	Name     string `json:"name"`
	Nsp      string `json:"nsp"`
	QName    string `json:"qname"`
	Type     string `json:"type"`     // typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange
	Category string `json:"category"` // typcategory: A for arrays
	Len      int    `json:"len"`
	Elem     uint32 `json:"elem"`
	Base     uint32 `json:"base"`
	Typmod   int32  `json:"typmod"`
	Delim    string `json:"delim"`
}

// sourceType spells the type as format_type does for a type not on the search path.
func (r *pgTypeRow) sourceType() string {
	if r.Nsp == "pg_catalog" {
		return r.Name
	}
	return r.QName
}

func (r *pgTypeRow) delim() byte {
	if len(r.Delim) == 1 {
		return r.Delim[0]
	}
	return ','
}

type typeKey struct {
	oid    uint32
	typmod int32
}

// typeCatalog resolves column types. Built-in types need no query; any other OID costs one
// query the first time, and pg_type rows and results are cached until reset. It is safe for
// concurrent use; the querier is used under the catalog's lock.
type typeCatalog struct {
	q catalogQuerier

	mu    sync.Mutex
	rows  map[uint32]*pgTypeRow
	infos map[typeKey]*typeInfo
}

// newTypeCatalog returns a catalog that asks q about non-built-in types; q may be nil when
// only built-in types are expected (the others then fail to resolve).
func newTypeCatalog(q catalogQuerier) *typeCatalog {
	return &typeCatalog{q: q, rows: make(map[uint32]*pgTypeRow), infos: make(map[typeKey]*typeInfo)}
}

// reset forgets every cached user type, e.g. after DDL that renamed or recreated types.
// Enum labels are not cached, so ALTER TYPE ... ADD VALUE needs no reset.
func (c *typeCatalog) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.rows)
	clear(c.infos)
}

// resolveColumn resolves the type of a Relation message column; errors name the column.
func (c *typeCatalog) resolveColumn(ctx context.Context, name string, oid uint32, typmod int32) (change.Column, *typeInfo, error) {
	t, err := c.resolve(ctx, oid, typmod)
	if err != nil {
		return change.Column{}, nil, fmt.Errorf("column %q: %w", name, err)
	}
	return t.column(name), t, nil
}

// resolve returns the typeInfo of a column of type oid with typmod (-1 for none). Errors
// wrap errUnsupportedType for types cdcd cannot carry; other errors come from the query.
func (c *typeCatalog) resolve(ctx context.Context, oid uint32, typmod int32) (*typeInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := typeKey{oid, typmod}
	if t, ok := c.infos[k]; ok {
		return t, nil
	}
	t, err := c.build(ctx, oid, typmod, 0)
	if err != nil {
		return nil, err
	}
	c.infos[k] = t
	return t, nil
}

// maxTypeDepth bounds domain-over-domain and array nesting; real schemas use a few levels.
const maxTypeDepth = 32

func (c *typeCatalog) build(ctx context.Context, oid uint32, typmod int32, depth int) (*typeInfo, error) {
	if t, ok := builtinInfo(oid, typmod); ok {
		return t, nil
	}
	if depth > maxTypeDepth {
		return nil, fmt.Errorf("type OID %d: domains and arrays nest deeper than %d levels", oid, maxTypeDepth)
	}
	r, err := c.row(ctx, oid)
	if err != nil {
		return nil, err
	}
	switch r.Type {
	case "d":
		// A column of a domain type has typmod -1; the domain keeps its base's typmod.
		if typmod < 0 {
			typmod = r.Typmod
		}
		base, err := c.build(ctx, r.Base, typmod, depth+1)
		if err != nil {
			return nil, fmt.Errorf("domain %s: %w", r.sourceType(), err)
		}
		t := *base
		t.OID, t.Name, t.SourceType = oid, r.Name, r.sourceType()
		return &t, nil
	case "e":
		return &typeInfo{OID: oid, Name: r.Name, Kind: change.KindEnum, SourceType: r.sourceType(),
			Typmod: typmod, BaseOID: oid, delim: r.delim()}, nil
	case "c":
		return nil, fmt.Errorf("%w: %s (OID %d) is a composite type; exclude the column from the publication or store it as json",
			errUnsupportedType, r.sourceType(), oid)
	case "p":
		return nil, fmt.Errorf("%w: %s (OID %d) is a pseudo-type", errUnsupportedType, r.sourceType(), oid)
	case "r", "m":
		// Range and multirange text is canonical: lossless as a string.
		return &typeInfo{OID: oid, Name: r.Name, Kind: change.KindString, SourceType: r.sourceType(),
			Typmod: typmod, BaseOID: oid, delim: r.delim()}, nil
	case "b":
		if r.Category == "A" && r.Elem != 0 && r.Len == -1 {
			e, err := c.build(ctx, r.Elem, typmod, depth+1)
			if err != nil {
				return nil, fmt.Errorf("array %s: %w", r.sourceType(), err)
			}
			if e.Kind == change.KindArray {
				return nil, fmt.Errorf("%w: %s[] is an array of arrays", errUnsupportedType, e.SourceType)
			}
			return arrayInfo(oid, r.Name, typmod, e), nil
		}
		// A base type without a Kind (an extension's type such as citext or a PostGIS
		// geometry): its output text is its canonical representation, carried as a string.
		return &typeInfo{OID: oid, Name: r.Name, Kind: change.KindString, SourceType: r.sourceType(),
			Typmod: typmod, BaseOID: oid, delim: r.delim()}, nil
	}
	return nil, fmt.Errorf("%w: %s (OID %d) has typtype %q", errUnsupportedType, r.sourceType(), oid, r.Type)
}

// row returns the pg_type row of oid, querying it (with everything it depends on) once.
func (c *typeCatalog) row(ctx context.Context, oid uint32) (*pgTypeRow, error) {
	if r, ok := c.rows[oid]; ok {
		return r, nil
	}
	if c.q == nil {
		return nil, fmt.Errorf("type OID %d is not built in and no catalog connection is configured", oid)
	}
	var js string
	if err := c.q.QueryRow(ctx, typeCatalogQuery, oid).Scan(&js); err != nil {
		return nil, fmt.Errorf("querying pg_type for type OID %d: %w", oid, err)
	}
	var rows []pgTypeRow
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		return nil, fmt.Errorf("decoding pg_type rows for type OID %d: %w", oid, err)
	}
	for i := range rows {
		c.rows[rows[i].OID] = &rows[i]
	}
	r, ok := c.rows[oid]
	if !ok {
		return nil, fmt.Errorf("type OID %d is not in pg_type (dropped?)", oid)
	}
	return r, nil
}

// decodeColumn is decodeText with the column's name in the error.
func decodeColumn(name string, t *typeInfo, text []byte) (change.Value, error) {
	v, err := decodeText(t, text)
	if err != nil {
		return v, fmt.Errorf("column %q: %w", name, err)
	}
	return v, nil
}

// decodeText decodes a column's pgoutput text into a Present value of t.Kind. It allocates
// only the value's own string, bytes or element slice. Errors wrap errMalformedValue or, for
// multi-dimensional arrays, errUnsupportedType; they name the type, not the column.
func decodeText(t *typeInfo, text []byte) (change.Value, error) {
	switch t.Kind {
	case change.KindBool:
		if len(text) == 1 {
			switch text[0] {
			case 't':
				return change.Value{Int: 1}, nil
			case 'f':
				return change.Value{}, nil
			}
		}
		return change.Value{}, malformed(t, text, `want "t" or "f"`)
	case change.KindInt16, change.KindInt32, change.KindInt64:
		bits := 64
		switch t.Kind {
		case change.KindInt16:
			bits = 16
		case change.KindInt32:
			bits = 32
		}
		n, ok := parseInt(text, bits)
		if !ok {
			return change.Value{}, malformed(t, text, "not an integer in range")
		}
		return change.Value{Int: n}, nil
	case change.KindUint64:
		n, err := strconv.ParseUint(string(text), 10, 64)
		if err != nil {
			return change.Value{}, malformed(t, text, "not an unsigned integer in range")
		}
		return change.Value{Uint: n}, nil
	case change.KindFloat32, change.KindFloat64:
		bits := 64
		if t.Kind == change.KindFloat32 {
			bits = 32
		}
		// ParseFloat reads PG's "NaN", "Infinity" and "-Infinity" too.
		f, err := strconv.ParseFloat(string(text), bits)
		if err != nil {
			return change.Value{}, malformed(t, text, "not a float")
		}
		return change.Value{Float: f}, nil
	case change.KindDecimal:
		// numeric_out prints the canonical text for the column's scale already; NaN and
		// (PG 14+) ±Infinity pass through for the encoder to judge.
		if !validNumeric(text) {
			return change.Value{}, malformed(t, text, "not a numeric")
		}
		return change.Value{Str: string(text)}, nil
	case change.KindString, change.KindJSON, change.KindEnum:
		return change.Value{Str: string(text)}, nil
	case change.KindBytes:
		return decodeBytea(t, text)
	case change.KindDate:
		d, why := parseDate(text)
		if why != "" {
			return change.Value{}, malformed(t, text, why)
		}
		return change.Value{Int: d}, nil
	case change.KindTime:
		us, n, why := parseClock(text, 0, 24)
		if why == "" && n != len(text) {
			why = "unexpected text after the time"
		}
		if why != "" {
			return change.Value{}, malformed(t, text, why)
		}
		return change.Value{Int: us}, nil
	case change.KindTimeTZ:
		return decodeTimeTZ(t, text)
	case change.KindTimestamp, change.KindTimestampTZ:
		us, why, outOfRange := parseTimestamp(text, t.Kind == change.KindTimestampTZ)
		if outOfRange {
			return change.Value{}, timestampRangeError(t, text, us)
		}
		if why != "" {
			return change.Value{}, malformed(t, text, why)
		}
		return change.Value{Int: us}, nil
	case change.KindInterval:
		return decodeInterval(t, text)
	case change.KindUUID:
		return decodeUUID(t, text)
	case change.KindArray:
		return decodeArray(t, text)
	}
	return change.Value{}, fmt.Errorf("%w: %s has kind %s, which decodeText does not handle", errUnsupportedType, t.SourceType, t.Kind)
}

func malformed(t *typeInfo, text []byte, why string) error {
	return fmt.Errorf("%w: %s %s: %s", errMalformedValue, t.SourceType, excerpt(text), why)
}

// excerpt quotes the start of a value for an error message.
func excerpt(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return strconv.Quote(string(b[:limit])) + "... (" + strconv.Itoa(len(b)) + " bytes)"
	}
	return strconv.Quote(string(b))
}

func isDigit(c byte) bool { return c-'0' < 10 }

// parseInt parses a decimal integer that fits in a signed integer of the given bits.
func parseInt(b []byte, bits int) (int64, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	if i == len(b) {
		return 0, false
	}
	if len(b)-i > 19 { // 19 digits cannot overflow a uint64; int64 needs at most 19
		return 0, false
	}
	var n uint64
	for _, c := range b[i:] {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	if neg {
		if n > limit {
			return 0, false
		}
		return int64(-n), true
	}
	if n >= limit {
		return 0, false
	}
	return int64(n), true
}

// validNumeric accepts numeric_out's text: -?digits(.digits)?, NaN, Infinity, -Infinity.
func validNumeric(b []byte) bool {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i == start {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start = i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeBytea reads bytea_output=hex (`\x0102`) and, for robustness, the escape format.
func decodeBytea(t *typeInfo, text []byte) (change.Value, error) {
	if len(text) >= 2 && text[0] == '\\' && text[1] == 'x' {
		h := text[2:]
		if len(h)%2 != 0 {
			return change.Value{}, malformed(t, text, "odd number of hex digits")
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, lo := unhex[h[2*i]], unhex[h[2*i+1]]
			if hi > 15 || lo > 15 {
				return change.Value{}, malformed(t, text, "invalid hex digit")
			}
			out[i] = hi<<4 | lo
		}
		return change.Value{Bytes: out}, nil
	}
	// Escape format: `\\` is a backslash, `\ooo` an octal byte, anything else itself. A
	// backslash is always escaped, so escape text never starts with `\x`.
	n := 0
	for i := 0; i < len(text); i++ {
		if text[i] == '\\' {
			switch {
			case i+1 < len(text) && text[i+1] == '\\':
				i++
			case i+3 < len(text) && isOctal3(text[i+1:i+4]):
				i += 3
			default:
				return change.Value{}, malformed(t, text, "invalid escape (bytea_output must be hex or escape)")
			}
		}
		n++
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\\' {
			if text[i+1] == '\\' {
				i++
			} else {
				c = (text[i+1]-'0')<<6 | (text[i+2]-'0')<<3 | (text[i+3] - '0')
				i += 3
			}
		}
		out = append(out, c)
	}
	return change.Value{Bytes: out}, nil
}

func isOctal3(b []byte) bool {
	return b[0] >= '0' && b[0] <= '3' && b[1] >= '0' && b[1] <= '7' && b[2] >= '0' && b[2] <= '7'
}

func decodeUUID(t *typeInfo, text []byte) (change.Value, error) {
	if len(text) != 36 {
		return change.Value{}, malformed(t, text, "not a uuid")
	}
	upper := false
	for i, c := range text {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return change.Value{}, malformed(t, text, "not a uuid")
			}
			continue
		}
		switch {
		case isDigit(c) || (c >= 'a' && c <= 'f'):
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return change.Value{}, malformed(t, text, "not a uuid")
		}
	}
	if !upper { // uuid_out prints lowercase
		return change.Value{Str: string(text)}, nil
	}
	var buf [36]byte
	for i, c := range text {
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return change.Value{Str: string(buf[:])}, nil
}

// Dates and times. Postgres's calendar is the proleptic Gregorian one, with year 1 BC
// printed as "0001 BC" (astronomical year 0), so the arithmetic below needs no special cases
// once BC years are converted to astronomical ones.

const (
	usPerSec = 1_000_000
	usPerDay = 86_400 * usPerSec
	// maxAbsDays bounds days so that days*usPerDay fits in int64; the time of day and the UTC
	// offset are then added with an overflow check.
	maxAbsDays = math.MaxInt64 / usPerDay
	// A finite timestamp is an int64 count of microseconds since 1970 strictly between the
	// infinity sentinels change.TimestampNegInfinity (math.MinInt64) and
	// change.TimestampInfinity (math.MaxInt64): from about 290308 BC (PG stops at 4714 BC) to
	// 294247-01-10 04:00:54.775806 UTC (PG goes on to 294276 AD: those values are refused as not
	// representable).
	minTimestamp = change.TimestampNegInfinity + 1
	maxTimestamp = change.TimestampInfinity - 1
)

// daysFromCivil returns days since 1970-01-01 of an astronomical year, month and day
// (H. Hinnant's algorithm).
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func daysInMonth(y int64, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseYMD reads "YYYY-MM-DD" (four or more year digits, as DateStyle=ISO prints them) from
// the start of b and returns the index after it.
func parseYMD(b []byte) (y int64, m, d, i int, why string) {
	for i < len(b) && isDigit(b[i]) {
		if i == 9 {
			return 0, 0, 0, 0, "year out of range"
		}
		y = y*10 + int64(b[i]-'0')
		i++
	}
	if i < 4 || i+6 > len(b) || b[i] != '-' || b[i+3] != '-' {
		return 0, 0, 0, 0, "not an ISO date (DateStyle must be ISO)"
	}
	var ok1, ok2 bool
	m, ok1 = twoDigits(b, i+1)
	d, ok2 = twoDigits(b, i+4)
	if !ok1 || !ok2 {
		return 0, 0, 0, 0, "not an ISO date (DateStyle must be ISO)"
	}
	return y, m, d, i + 6, ""
}

func twoDigits(b []byte, i int) (int, bool) {
	if i+2 > len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) {
		return 0, false
	}
	return int(b[i]-'0')*10 + int(b[i+1]-'0'), true
}

// civilDays validates a printed date and returns its days since 1970-01-01; bc marks a
// " BC" suffix (year N BC is astronomical year 1-N).
func civilDays(y int64, m, d int, bc bool) (int64, string) {
	if y == 0 {
		return 0, "year 0 does not exist"
	}
	if bc {
		y = 1 - y
	}
	if m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return 0, "no such date"
	}
	return daysFromCivil(y, m, d), ""
}

// hasBC reports whether b[i:] is exactly " BC"; ok is false if b[i:] is anything else but empty.
func hasBC(b []byte, i int) (bc, ok bool) {
	switch {
	case i == len(b):
		return false, true
	case len(b)-i == 3 && b[i] == ' ' && b[i+1] == 'B' && b[i+2] == 'C':
		return true, true
	}
	return false, false
}

func parseDate(b []byte) (int64, string) {
	switch string(b) {
	case "infinity":
		return change.DateInfinity, ""
	case "-infinity":
		return change.DateNegInfinity, ""
	}
	y, m, d, i, why := parseYMD(b)
	if why != "" {
		return 0, why
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, "unexpected text after the date"
	}
	return civilDays(y, m, d, bc)
}

// parseClock reads "HH:MM:SS[.f{1,6}]" at b[i:] and returns microseconds since midnight and
// the index after it. maxHour is 24 for time and timetz ("24:00:00" is valid), 23 otherwise.
func parseClock(b []byte, i, maxHour int) (us int64, next int, why string) {
	h, ok1 := twoDigits(b, i)
	m, ok2 := twoDigits(b, i+3)
	s, ok3 := twoDigits(b, i+6)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, "not an ISO time"
	}
	i += 8
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for i < len(b) && isDigit(b[i]) {
			if n == 6 {
				return 0, 0, "more than 6 fractional digits"
			}
			frac = frac*10 + int64(b[i]-'0')
			i++
			n++
		}
		if n == 0 {
			return 0, 0, "not an ISO time"
		}
		for ; n < 6; n++ {
			frac *= 10
		}
	}
	if h > maxHour || m > 59 || s > 59 || (h == 24 && (m|s != 0 || frac != 0)) {
		return 0, 0, "time of day out of range"
	}
	return (int64(h)*3600+int64(m)*60+int64(s))*usPerSec + frac, i, ""
}

// parseOffset reads a UTC offset "+HH", "+HH:MM" or "+HH:MM:SS" (EncodeTimezone's forms) at
// b[i:] and returns it in seconds east of UTC.
func parseOffset(b []byte, i int) (secs int64, next int, why string) {
	if i >= len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, "missing UTC offset"
	}
	neg := b[i] == '-'
	h, ok := twoDigits(b, i+1)
	if !ok {
		return 0, 0, "invalid UTC offset"
	}
	i += 3
	var m, s int
	if i < len(b) && b[i] == ':' {
		if m, ok = twoDigits(b, i+1); !ok || m > 59 {
			return 0, 0, "invalid UTC offset"
		}
		i += 3
		if i < len(b) && b[i] == ':' {
			if s, ok = twoDigits(b, i+1); !ok || s > 59 {
				return 0, 0, "invalid UTC offset"
			}
			i += 3
		}
	}
	secs = int64(h)*3600 + int64(m)*60 + int64(s)
	if neg {
		secs = -secs
	}
	return secs, i, ""
}

// parseTimestamp reads timestamp (tz false) or timestamptz (tz true) text as printed with
// DateStyle=ISO: "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]", or ±infinity. It returns
// microseconds since 1970-01-01 00:00:00 (UTC for timestamptz). A well-formed timestamp
// outside minTimestamp..maxTimestamp sets outOfRange (us then only tells its side by its sign).
func parseTimestamp(b []byte, tz bool) (us int64, why string, outOfRange bool) {
	switch string(b) {
	case "infinity":
		return change.TimestampInfinity, "", false
	case "-infinity":
		return change.TimestampNegInfinity, "", false
	}
	y, m, d, i, why := parseYMD(b)
	if why != "" {
		return 0, why, false
	}
	if i >= len(b) || b[i] != ' ' {
		return 0, "not an ISO timestamp (DateStyle must be ISO)", false
	}
	clock, i, why := parseClock(b, i+1, 23)
	if why != "" {
		return 0, why, false
	}
	var off int64
	if tz {
		if off, i, why = parseOffset(b, i); why != "" {
			return 0, why, false
		}
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, "unexpected text after the timestamp", false
	}
	days, why := civilDays(y, m, d, bc)
	if why != "" {
		return 0, why, false
	}
	if days > maxAbsDays || days < -maxAbsDays {
		return days, "", true
	}
	// |clock - off| is below two days: only the sum with the day's start can overflow.
	base, rest := days*usPerDay, clock-off*usPerSec
	if (rest > 0 && base > maxTimestamp-rest) || (rest < 0 && base < minTimestamp-rest) {
		return days, "", true
	}
	return base + rest, "", false
}

// timestampRangeError refuses a valid timestamp that int64 microseconds since 1970 cannot
// count (or that would read as ±infinity); side is the sign of the value.
func timestampRangeError(t *typeInfo, text []byte, side int64) error {
	edge := "after " + time.UnixMicro(maxTimestamp).UTC().Format("2006-01-02 15:04:05.000000") + " UTC, the last"
	if side < 0 {
		edge = "before " + time.UnixMicro(minTimestamp).UTC().Format("2006-01-02 15:04:05.000000") + " UTC, the first"
	}
	return fmt.Errorf("%w: %s %s is %s instant a timestamp can carry (Avro timestamp-micros: int64 microseconds since 1970, whose extremes stand for ±infinity); fix: correct the value, or store 'infinity' if it means \"never\"",
		errNotRepresentable, t.SourceType, excerpt(text), edge)
}

// decodeTimeTZ checks timetz text and writes its offset as "+HH:MM" (PG prints "+HH" when the
// minutes are zero); an offset with seconds keeps them ("+01:02:03"), as ISO-8601 has no
// other way to say it.
func decodeTimeTZ(t *typeInfo, text []byte) (change.Value, error) {
	_, i, why := parseClock(text, 0, 24)
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	_, j, why := parseOffset(text, i)
	if why == "" && j != len(text) {
		why = "unexpected text after the offset"
	}
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	if j-i != 3 {
		return change.Value{Str: string(text)}, nil
	}
	var buf [32]byte
	return change.Value{Str: string(append(append(buf[:0], text...), ":00"...))}, nil
}

// Intervals. Value.Str is ISO-8601 as IntervalStyle=iso_8601 prints it ("P1Y2M3DT4H5M6.5S",
// "P-1Y-2M3DT-4H-5M-6.5S", "PT0S"): the replication connection sets that style (conn.go), so
// the text passes through verbatim, and any other style's text is refused as malformed.
func decodeInterval(t *typeInfo, text []byte) (change.Value, error) {
	if !(len(text) > 0 && text[0] == 'P' || len(text) > 1 && text[0] == '-' && text[1] == 'P') || !validISODuration(text) {
		return change.Value{}, malformed(t, text, "not an ISO-8601 interval (the replication connection must set IntervalStyle=iso_8601)")
	}
	return change.Value{Str: string(text)}, nil
}

// validISODuration loosely checks ISO-8601 duration text: P, then signed decimal numbers
// with designators Y M W D, and after T, H M S.
func validISODuration(b []byte) bool {
	i := 0
	if b[0] == '-' {
		i++
	}
	i++ // 'P'
	inTime, parts := false, 0
	for i < len(b) {
		if b[i] == 'T' && !inTime {
			inTime = true
			i++
			continue
		}
		if b[i] == '-' || b[i] == '+' {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return false
		}
		if i < len(b) && (b[i] == '.' || b[i] == ',') {
			i++
			for i < len(b) && isDigit(b[i]) {
				i++
			}
		}
		if i == len(b) {
			return false
		}
		designators := "YMWD"
		if inTime {
			designators = "HMS"
		}
		if strings.IndexByte(designators, b[i]) < 0 {
			return false
		}
		i++
		parts++
	}
	return parts > 0
}

// Arrays. array_out prints "{e1,e2,...}", preceded by "[lb:ub]=" when the lower bound is not
// 1; an element is double-quoted (with \" and \\ escaped) when it is empty, NULL in any case,
// or contains the delimiter, a quote, a backslash, a brace or white space. Unquoted NULL is
// SQL NULL. An Avro array has one level of elements numbered from 1, so a value with another
// lower bound ("[0:2]={7,8,9}") or more than one dimension ("{{1,2},{3,4}}",
// "[0:1][5:6]={{7,7},{7,7}}") is refused with errNotRepresentable, never renumbered or
// flattened.

type arrayElem struct {
	s, e    int // the element's text (inside the quotes if quoted)
	quoted  bool
	escaped bool // contains backslash escapes
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// scanArrayElem reads the element starting at text[i] and its terminator (the delimiter or
// '}'); it returns the index after the terminator and whether it was '}'.
func scanArrayElem(text []byte, i int, delim byte) (el arrayElem, next int, last bool, why string) {
	for i < len(text) && isArraySpace(text[i]) {
		i++
	}
	if i == len(text) {
		return el, 0, false, "unterminated array"
	}
	switch text[i] {
	case '{':
		return el, 0, false, "sub-arrays nest unevenly"
	case '"':
		el.quoted = true
		i++
		el.s = i
		for {
			if i >= len(text) {
				return el, 0, false, "unterminated quoted element"
			}
			c := text[i]
			if c == '"' {
				break
			}
			if c == '\\' {
				el.escaped = true
				i++
			}
			i++
		}
		el.e = i
		i++
		for i < len(text) && isArraySpace(text[i]) {
			i++
		}
	default:
		el.s = i
		end := i // just past the last character that is not unescaped white space
		for i < len(text) && text[i] != delim && text[i] != '}' {
			switch c := text[i]; {
			case c == '\\':
				el.escaped = true
				i++
				if i == len(text) {
					return el, 0, false, "unterminated array"
				}
				end = i + 1
			case c == '"' || c == '{':
				return el, 0, false, "unexpected character in element"
			case !isArraySpace(c):
				end = i + 1
			}
			i++
		}
		el.e = end
		if el.e == el.s {
			return el, 0, false, "empty unquoted element"
		}
	}
	if i == len(text) {
		return el, 0, false, "unterminated array"
	}
	switch text[i] {
	case delim:
		return el, i + 1, false, ""
	case '}':
		return el, i + 1, true, ""
	}
	return el, 0, false, "expected a delimiter or '}'"
}

func (el arrayElem) isNull(text []byte) bool {
	if el.quoted || el.escaped || el.e-el.s != 4 {
		return false
	}
	b := text[el.s:el.e]
	return (b[0]|0x20) == 'n' && (b[1]|0x20) == 'u' && (b[2]|0x20) == 'l' && (b[3]|0x20) == 'l'
}

// appendUnescaped appends the element's text with backslash escapes removed.
func (el arrayElem) appendUnescaped(dst []byte, text []byte) []byte {
	b := text[el.s:el.e]
	if !el.escaped {
		return append(dst, b...)
	}
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' {
			i++
		}
		dst = append(dst, b[i])
	}
	return dst
}

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

// arrayBound is one "[lb:ub]" of an array's dimension decoration.
type arrayBound struct{ lb, ub int64 }

func (b arrayBound) count() int64 { return b.ub - b.lb + 1 }

// parseArrayBounds reads the dimension decoration "[lb:ub]...=" at the start of text, one
// bound per dimension, and returns the index after the '='.
func parseArrayBounds(text []byte) (bounds []arrayBound, next int, why string) {
	i := 0
	for i < len(text) && text[i] == '[' {
		if len(bounds) == maxArrayDims {
			return nil, 0, "more than 6 dimensions"
		}
		j := i + 1
		for j < len(text) && text[j] != ':' && text[j] != ']' {
			j++
		}
		lb, ok1 := parseInt(text[i+1:j], 32)
		if !ok1 || j == len(text) || text[j] != ':' {
			return nil, 0, "invalid array bounds"
		}
		k := j + 1
		for j = k; j < len(text) && text[j] != ']'; j++ {
		}
		ub, ok2 := parseInt(text[k:j], 32)
		if !ok2 || j == len(text) || ub < lb-1 {
			return nil, 0, "invalid array bounds"
		}
		bounds = append(bounds, arrayBound{lb, ub})
		i = j + 1
	}
	if i == len(text) || text[i] != '=' {
		return nil, 0, "invalid array bounds"
	}
	return bounds, i + 1, ""
}

// appendBounds spells bounds as array_out does: "[0:2]", "[1:2][1:3]".
func appendBounds(buf []byte, bounds []arrayBound) []byte {
	for _, b := range bounds {
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, b.lb, 10)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, b.ub, 10)
		buf = append(buf, ']')
	}
	return buf
}

func skipArraySpace(text []byte, i int) int {
	for i < len(text) && isArraySpace(text[i]) {
		i++
	}
	return i
}

// arrayDims counts the opening braces at text[i:], the number of dimensions array_out
// prints for a non-empty value.
func arrayDims(text []byte, i int) int {
	n := 0
	for i = skipArraySpace(text, i); i < len(text) && text[i] == '{'; i = skipArraySpace(text, i+1) {
		n++
	}
	return n
}

// scanSubarray checks the sub-array at text[i] at nesting depth d of len(lens) dimensions and
// records each dimension's length in lens (every sub-array of a level must have the same
// length); it returns the index after its closing '}'.
func scanSubarray(text []byte, i, d int, lens []int64, delim byte) (next int, why string) {
	i = skipArraySpace(text, i)
	if i == len(text) || text[i] != '{' {
		return 0, "sub-arrays nest unevenly"
	}
	i++
	var n int64
	if d == len(lens)-1 {
		for last := false; !last; n++ {
			if _, i, last, why = scanArrayElem(text, i, delim); why != "" {
				return 0, why
			}
		}
	} else {
		for {
			if i, why = scanSubarray(text, i, d+1, lens, delim); why != "" {
				return 0, why
			}
			n++
			i = skipArraySpace(text, i)
			if i == len(text) {
				return 0, "unterminated array"
			}
			if text[i] == '}' {
				i++
				break
			}
			if text[i] != delim {
				return 0, "expected a delimiter or '}'"
			}
			i++
		}
	}
	if lens[d] == 0 {
		lens[d] = n
	} else if lens[d] != n {
		return 0, "sub-arrays of different lengths"
	}
	return i, ""
}

// multiDimError checks a value of ndim > 1 dimensions whose body starts at text[i] and
// refuses it as not representable, or as malformed if it is not what array_out prints.
func multiDimError(t *typeInfo, text []byte, i, ndim int, bounds []arrayBound, delim byte) error {
	if ndim > maxArrayDims {
		return malformed(t, text, "more than 6 dimensions")
	}
	lens := make([]int64, ndim)
	next, why := scanSubarray(text, i, 0, lens, delim)
	if why != "" {
		return malformed(t, text, why)
	}
	if next = skipArraySpace(text, next); next != len(text) {
		return malformed(t, text, "unexpected text after the array")
	}
	if bounds == nil {
		for _, n := range lens {
			bounds = append(bounds, arrayBound{1, n})
		}
	}
	if len(bounds) != ndim {
		return malformed(t, text, "array bounds do not match the dimensions")
	}
	for d, b := range bounds {
		if b.count() != lens[d] {
			return malformed(t, text, "array bounds do not match the element count")
		}
	}
	return fmt.Errorf("%w: %s value %s has %d dimensions %s; an Avro array has one, and cdcd does not flatten values; fix: store a one-dimensional array, or change the column's type (for example to jsonb)",
		errNotRepresentable, t.SourceType, excerpt(text), ndim, appendBounds(nil, bounds))
}

// verbatimElem reports element kinds whose Value.Str is the unescaped element text itself;
// decodeArray gives them one shared string instead of one allocation per element.
func verbatimElem(k change.Kind) bool {
	return k == change.KindString || k == change.KindJSON || k == change.KindEnum || k == change.KindDecimal
}

func decodeArray(t *typeInfo, text []byte) (change.Value, error) {
	et := t.elem
	if et == nil {
		return change.Value{}, fmt.Errorf("%w: %s has no element type", errUnsupportedType, t.SourceType)
	}
	delim := et.delim
	if delim == 0 {
		delim = ','
	}
	i := 0
	var bounds []arrayBound // nil when array_out printed none: one dimension from 1
	if len(text) > 0 && text[0] == '[' {
		var why string
		if bounds, i, why = parseArrayBounds(text); why != "" {
			return change.Value{}, malformed(t, text, why)
		}
	}
	if i >= len(text) || text[i] != '{' {
		return change.Value{}, malformed(t, text, "not an array")
	}
	if ndim := arrayDims(text, i); ndim > 1 || len(bounds) > 1 {
		return change.Value{}, multiDimError(t, text, i, ndim, bounds, delim)
	}
	i++
	body := i
	// Pass 1: validate and count, so Arr is allocated once at its final size.
	n, empty := 0, false
	j := i
	for j < len(text) && isArraySpace(text[j]) {
		j++
	}
	if j < len(text) && text[j] == '}' {
		empty, i = true, j+1
	} else {
		for last := false; !last; n++ {
			var why string
			if _, i, last, why = scanArrayElem(text, i, delim); why != "" {
				return change.Value{}, malformed(t, text, why)
			}
		}
	}
	for ; i < len(text); i++ {
		if !isArraySpace(text[i]) {
			return change.Value{}, malformed(t, text, "unexpected text after the array")
		}
	}
	if bounds != nil {
		if bounds[0].count() != int64(n) {
			return change.Value{}, malformed(t, text, "array bounds do not match the element count")
		}
		if bounds[0].lb != 1 {
			return change.Value{}, fmt.Errorf("%w: %s value %s has bounds %s, and an Avro array numbers its elements from 1: cdcd does not renumber them; fix: store the array with lower bound 1 (a slice does that: SET col = col[:])",
				errNotRepresentable, t.SourceType, excerpt(text), appendBounds(nil, bounds))
		}
	}
	if empty {
		return change.Value{Arr: []change.Value{}}, nil
	}

	arr := make([]change.Value, n)
	verbatim := verbatimElem(et.Kind)
	var sb strings.Builder // verbatim elements' text, back to back
	var scratch []byte     // unescaped text of one non-verbatim element
	if verbatim {
		sb.Grow(len(text) - body)
	}
	i = body
	for k := range arr {
		el, next, _, _ := scanArrayElem(text, i, delim)
		i = next
		if el.isNull(text) {
			arr[k] = change.NullValue
			continue
		}
		raw := text[el.s:el.e]
		if el.escaped {
			scratch = el.appendUnescaped(scratch[:0], text)
			raw = scratch
		}
		if !verbatim {
			v, err := decodeText(et, raw)
			if err != nil {
				return change.Value{}, fmt.Errorf("element %d: %w", k+1, err)
			}
			arr[k] = v
			continue
		}
		if et.Kind == change.KindDecimal && !validNumeric(raw) {
			return change.Value{}, fmt.Errorf("element %d: %w", k+1, malformed(et, raw, "not a numeric"))
		}
		sb.Write(raw)
		arr[k].Int = int64(len(raw)) // the element's length, until the shared string exists
	}
	if verbatim {
		s, off := sb.String(), 0
		for k := range arr {
			if arr[k].State == change.Present {
				l := int(arr[k].Int)
				arr[k].Str, arr[k].Int = s[off:off+l], 0
				off += l
			}
		}
	}
	return change.Value{Arr: arr}, nil
}
