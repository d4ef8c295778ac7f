package postgres

// The type catalog: built-in types by their fixed OIDs, and user types (domains, enums, arrays,
// extension base types) from pg_type, with format_type's spelling for SourceType.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/change"
)

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
