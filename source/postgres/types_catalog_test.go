package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdcd-dev/cdcd/change"
)

func TestNumericTypmod(t *testing.T) {
	for _, tc := range []struct {
		typmod      int32
		prec, scale int
		sourceType  string
	}{
		{-1, 0, 0, "numeric"},
		{655366, 10, 2, "numeric(10,2)"},      // from a PG 15 server
		{329730, 5, -2, "numeric(5,-2)"},      // PG 15 negative scale
		{196617, 3, 5, "numeric(3,5)"},        // scale > precision
		{(1 << 16) + 4, 1, 0, "numeric(1,0)"}, // numeric(1)
		{(1000<<16 | 1000) + 4, 1000, 1000, "numeric(1000,1000)"},
	} {
		ti := mustBuiltin(t, 1700, tc.typmod)
		if ti.Precision != tc.prec || ti.Scale != tc.scale || ti.SourceType != tc.sourceType || ti.Kind != change.KindDecimal {
			t.Errorf("typmod %d: got %d,%d %q; want %d,%d %q", tc.typmod, ti.Precision, ti.Scale, ti.SourceType, tc.prec, tc.scale, tc.sourceType)
		}
		at := mustBuiltin(t, 1231, tc.typmod)
		if at.Kind != change.KindArray || at.Elem != change.KindDecimal || at.Precision != tc.prec || at.Scale != tc.scale || at.SourceType != tc.sourceType+"[]" {
			t.Errorf("array typmod %d: got %+v", tc.typmod, at)
		}
	}
}

func TestBuiltinSourceTypes(t *testing.T) {
	for _, tc := range []struct {
		oid    uint32
		typmod int32
		want   string
		kind   change.Kind
	}{
		{16, -1, "boolean", change.KindBool},
		{20, -1, "bigint", change.KindInt64},
		{21, -1, "smallint", change.KindInt16},
		{23, -1, "integer", change.KindInt32},
		{26, -1, "oid", change.KindInt64},
		{700, -1, "real", change.KindFloat32},
		{701, -1, "double precision", change.KindFloat64},
		{1043, -1, "character varying", change.KindString},
		{1043, 24, "character varying(20)", change.KindString},
		{1042, -1, "bpchar", change.KindString},
		{1042, 8, "character(4)", change.KindString},
		{1083, 3, "time(3) without time zone", change.KindTime},
		{1266, 2, "time(2) with time zone", change.KindTimeTZ},
		{1114, -1, "timestamp without time zone", change.KindTimestamp},
		{1184, 0, "timestamp(0) with time zone", change.KindTimestampTZ},
		{1186, 458751, "interval year to month", change.KindInterval},
		{1186, 2147418115, "interval(3)", change.KindInterval},
		{1186, 470286338, "interval day to second(2)", change.KindInterval},
		{1560, 5, "bit(5)", change.KindString},
		{1562, 7, "bit varying(7)", change.KindString},
		{18, -1, `"char"`, change.KindString},
		{1007, -1, "integer[]", change.KindArray},
		{1015, 24, "character varying(20)[]", change.KindArray},
		{1185, -1, "timestamp with time zone[]", change.KindArray},
		{2951, -1, "uuid[]", change.KindArray},
		{3807, -1, "jsonb[]", change.KindArray},
	} {
		ti := mustBuiltin(t, tc.oid, tc.typmod)
		if ti.SourceType != tc.want || ti.Kind != tc.kind {
			t.Errorf("OID %d typmod %d: got %q %s; want %q %s", tc.oid, tc.typmod, ti.SourceType, ti.Kind, tc.want, tc.kind)
		}
	}
}

// TestBuiltinOIDsMatchPgx checks the static OIDs against pgx's pgtype constants.
func TestBuiltinOIDsMatchPgx(t *testing.T) {
	for oid, name := range map[uint32]string{
		pgtype.BoolOID: "bool", pgtype.ByteaOID: "bytea", pgtype.QCharOID: "char", pgtype.NameOID: "name",
		pgtype.Int8OID: "int8", pgtype.Int2OID: "int2", pgtype.Int4OID: "int4", pgtype.TextOID: "text",
		pgtype.OIDOID: "oid", pgtype.TIDOID: "tid", pgtype.XIDOID: "xid", pgtype.CIDOID: "cid",
		pgtype.JSONOID: "json", pgtype.XMLOID: "xml", pgtype.XMLArrayOID: "_xml", pgtype.JSONArrayOID: "_json",
		pgtype.XID8ArrayOID: "_xid8", pgtype.PointOID: "point", pgtype.LsegOID: "lseg", pgtype.PathOID: "path",
		pgtype.BoxOID: "box", pgtype.PolygonOID: "polygon", pgtype.LineOID: "line", pgtype.LineArrayOID: "_line",
		pgtype.CIDROID: "cidr", pgtype.CIDRArrayOID: "_cidr", pgtype.Float4OID: "float4", pgtype.Float8OID: "float8",
		pgtype.CircleOID: "circle", pgtype.CircleArrayOID: "_circle", pgtype.Macaddr8OID: "macaddr8",
		pgtype.MacaddrOID: "macaddr", pgtype.InetOID: "inet", pgtype.BoolArrayOID: "_bool",
		pgtype.QCharArrayOID: "_char", pgtype.NameArrayOID: "_name", pgtype.Int2ArrayOID: "_int2",
		pgtype.Int4ArrayOID: "_int4", pgtype.TextArrayOID: "_text", pgtype.TIDArrayOID: "_tid",
		pgtype.ByteaArrayOID: "_bytea", pgtype.XIDArrayOID: "_xid", pgtype.CIDArrayOID: "_cid",
		pgtype.BPCharArrayOID: "_bpchar", pgtype.VarcharArrayOID: "_varchar", pgtype.Int8ArrayOID: "_int8",
		pgtype.PointArrayOID: "_point", pgtype.LsegArrayOID: "_lseg", pgtype.PathArrayOID: "_path",
		pgtype.BoxArrayOID: "_box", pgtype.Float4ArrayOID: "_float4", pgtype.Float8ArrayOID: "_float8",
		pgtype.PolygonArrayOID: "_polygon", pgtype.OIDArrayOID: "_oid", pgtype.MacaddrArrayOID: "_macaddr",
		pgtype.InetArrayOID: "_inet", pgtype.BPCharOID: "bpchar", pgtype.VarcharOID: "varchar",
		pgtype.DateOID: "date", pgtype.TimeOID: "time", pgtype.TimestampOID: "timestamp",
		pgtype.TimestampArrayOID: "_timestamp", pgtype.DateArrayOID: "_date", pgtype.TimeArrayOID: "_time",
		pgtype.TimestamptzOID: "timestamptz", pgtype.TimestamptzArrayOID: "_timestamptz",
		pgtype.IntervalOID: "interval", pgtype.IntervalArrayOID: "_interval", pgtype.NumericArrayOID: "_numeric",
		pgtype.TimetzOID: "timetz", pgtype.TimetzArrayOID: "_timetz", pgtype.BitOID: "bit",
		pgtype.BitArrayOID: "_bit", pgtype.VarbitOID: "varbit", pgtype.VarbitArrayOID: "_varbit",
		pgtype.NumericOID: "numeric", pgtype.UUIDOID: "uuid", pgtype.UUIDArrayOID: "_uuid",
		pgtype.TSVectorOID: "tsvector", pgtype.TSVectorArrayOID: "_tsvector", pgtype.JSONBOID: "jsonb",
		pgtype.JSONBArrayOID: "_jsonb", pgtype.DaterangeOID: "daterange", pgtype.DaterangeArrayOID: "_daterange",
		pgtype.Int4rangeOID: "int4range", pgtype.Int4rangeArrayOID: "_int4range", pgtype.NumrangeOID: "numrange",
		pgtype.NumrangeArrayOID: "_numrange", pgtype.TsrangeOID: "tsrange", pgtype.TsrangeArrayOID: "_tsrange",
		pgtype.TstzrangeOID: "tstzrange", pgtype.TstzrangeArrayOID: "_tstzrange", pgtype.Int8rangeOID: "int8range",
		pgtype.Int8rangeArrayOID: "_int8range", pgtype.JSONPathOID: "jsonpath", pgtype.JSONPathArrayOID: "_jsonpath",
		pgtype.Int4multirangeOID: "int4multirange", pgtype.NummultirangeOID: "nummultirange",
		pgtype.TsmultirangeOID: "tsmultirange", pgtype.TstzmultirangeOID: "tstzmultirange",
		pgtype.DatemultirangeOID: "datemultirange", pgtype.Int8multirangeOID: "int8multirange",
		pgtype.XID8OID: "xid8", pgtype.Int4multirangeArrayOID: "_int4multirange",
		pgtype.NummultirangeArrayOID: "_nummultirange", pgtype.TsmultirangeArrayOID: "_tsmultirange",
		pgtype.TstzmultirangeArrayOID: "_tstzmultirange", pgtype.DatemultirangeArrayOID: "_datemultirange",
		pgtype.Int8multirangeArrayOID: "_int8multirange",
	} {
		ti, ok := builtinInfo(oid, -1)
		if !ok || ti.Name != name {
			t.Errorf("pgtype OID %d is %s; the static table has %+v", oid, name, ti)
		}
	}
	// The requested mapping of the common types.
	for oid, kind := range map[uint32]change.Kind{
		16: change.KindBool, 17: change.KindBytes, 18: change.KindString, 19: change.KindString,
		20: change.KindInt64, 21: change.KindInt16, 23: change.KindInt32, 25: change.KindString,
		26: change.KindInt64, 114: change.KindJSON, 142: change.KindString, 700: change.KindFloat32,
		701: change.KindFloat64, 869: change.KindString, 650: change.KindString, 829: change.KindString,
		774: change.KindString, 1042: change.KindString, 1043: change.KindString, 1082: change.KindDate,
		1083: change.KindTime, 1114: change.KindTimestamp, 1184: change.KindTimestampTZ,
		1186: change.KindInterval, 1266: change.KindTimeTZ, 1700: change.KindDecimal, 2950: change.KindUUID,
		3802: change.KindJSON,
	} {
		if ti := mustBuiltin(t, oid, -1); ti.Kind != kind {
			t.Errorf("OID %d maps to %s; want %s", oid, ti.Kind, kind)
		}
	}
}

// fakeCatalog answers typeCatalogQuery from in-memory pg_type rows, as the server would.
type fakeCatalog struct {
	rows    map[uint32]pgTypeRow
	queries int
	err     error
}

type fakeRow struct {
	js  string
	err error
}

func (r fakeRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*string) = r.js
	return nil
}

func (f *fakeCatalog) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	f.queries++
	if sql != typeCatalogQuery || len(args) != 1 {
		return fakeRow{err: fmt.Errorf("unexpected query %q %v", sql, args)}
	}
	if f.err != nil {
		return fakeRow{err: f.err}
	}
	var out []pgTypeRow
	seen := map[uint32]bool{}
	var walk func(uint32)
	walk = func(oid uint32) {
		r, ok := f.rows[oid]
		if oid == 0 || seen[oid] || !ok {
			return
		}
		seen[oid] = true
		out = append(out, r)
		walk(r.Base)
		walk(r.Elem)
	}
	walk(args[0].(uint32))
	js, _ := json.Marshal(out)
	return fakeRow{js: string(js)}
}

func newFakeCatalog() *fakeCatalog {
	rows := []pgTypeRow{
		{OID: 50001, Name: "mood", Nsp: "public", QName: "public.mood", Type: "e", Category: "E", Len: 4, Delim: ","},
		{OID: 50002, Name: "_mood", Nsp: "public", QName: "public._mood", Type: "b", Category: "A", Len: -1, Elem: 50001, Delim: ","},
		{OID: 50003, Name: "price", Nsp: "public", QName: "public.price", Type: "d", Category: "N", Len: -1, Base: 1700, Typmod: 655366, Delim: ","},
		{OID: 50004, Name: "price2", Nsp: "shop", QName: "shop.price2", Type: "d", Category: "N", Len: -1, Base: 50003, Typmod: -1, Delim: ","},
		{OID: 50005, Name: "_price2", Nsp: "shop", QName: "shop._price2", Type: "b", Category: "A", Len: -1, Elem: 50004, Delim: ","},
		{OID: 50006, Name: "addr", Nsp: "public", QName: "public.addr", Type: "c", Category: "C", Len: -1, Delim: ","},
		{OID: 50007, Name: "_addr", Nsp: "public", QName: "public._addr", Type: "b", Category: "A", Len: -1, Elem: 50006, Delim: ","},
		{OID: 50008, Name: "intlist", Nsp: "public", QName: "public.intlist", Type: "d", Category: "A", Len: -1, Base: 1007, Typmod: -1, Delim: ","},
		{OID: 50009, Name: "_intlist", Nsp: "public", QName: "public._intlist", Type: "b", Category: "A", Len: -1, Elem: 50008, Delim: ","},
		{OID: 50010, Name: "citext", Nsp: "public", QName: "public.citext", Type: "b", Category: "S", Len: -1, Delim: ","},
		{OID: 50011, Name: "floatrange", Nsp: "public", QName: "public.floatrange", Type: "r", Category: "R", Len: -1, Delim: ","},
		{OID: 50012, Name: "Mood", Nsp: "My Schema", QName: `"My Schema"."Mood"`, Type: "e", Category: "E", Len: 4, Delim: ","},
		{OID: 50013, Name: "pseudo", Nsp: "public", QName: "public.pseudo", Type: "p", Category: "P", Len: 4, Delim: ","},
		{OID: 50014, Name: "price_arr", Nsp: "public", QName: "public.price_arr", Type: "d", Category: "A", Len: -1, Base: 50005, Typmod: -1, Delim: ","},
		{OID: 50015, Name: "moodcol", Nsp: "public", QName: "public.moodcol", Type: "d", Category: "E", Len: 4, Base: 50001, Typmod: -1, Delim: ","},
		{OID: 50016, Name: "vchar", Nsp: "public", QName: "public.vchar", Type: "d", Category: "S", Len: -1, Base: 1043, Typmod: 14, Delim: ","},
	}
	f := &fakeCatalog{rows: map[uint32]pgTypeRow{}}
	for _, r := range rows {
		f.rows[r.OID] = r
	}
	return f
}

func TestTypeCatalogResolve(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		oid        uint32
		typmod     int32
		kind, elem change.Kind
		prec, sc   int
		sourceType string
		elemOID    uint32
	}{
		{"enum", 50001, -1, change.KindEnum, 0, 0, 0, "public.mood", 0},
		{"quoted enum", 50012, -1, change.KindEnum, 0, 0, 0, `"My Schema"."Mood"`, 0},
		{"array of enum", 50002, -1, change.KindArray, change.KindEnum, 0, 0, "public.mood[]", 50001},
		{"domain over numeric(10,2)", 50003, -1, change.KindDecimal, 0, 10, 2, "public.price", 0},
		{"domain over domain", 50004, -1, change.KindDecimal, 0, 10, 2, "shop.price2", 0},
		{"array of domain over domain", 50005, -1, change.KindArray, change.KindDecimal, 10, 2, "shop.price2[]", 50004},
		{"domain over array of domain", 50014, -1, change.KindArray, change.KindDecimal, 10, 2, "public.price_arr", 50004},
		{"domain over array", 50008, -1, change.KindArray, change.KindInt32, 0, 0, "public.intlist", 23},
		{"domain over enum", 50015, -1, change.KindEnum, 0, 0, 0, "public.moodcol", 0},
		{"domain over varchar(10)", 50016, -1, change.KindString, 0, 0, 0, "public.vchar", 0},
		{"extension base type", 50010, -1, change.KindString, 0, 0, 0, "public.citext", 0},
		{"range", 50011, -1, change.KindString, 0, 0, 0, "public.floatrange", 0},
		{"builtin", 1700, 655366, change.KindDecimal, 0, 10, 2, "numeric(10,2)", 0},
		{"builtin array", 1231, 655366, change.KindArray, change.KindDecimal, 10, 2, "numeric(10,2)[]", 1700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCatalog()
			c := newTypeCatalog(f)
			ti, err := c.resolve(ctx, tc.oid, tc.typmod)
			if err != nil {
				t.Fatal(err)
			}
			if ti.Kind != tc.kind || ti.Elem != tc.elem || ti.Precision != tc.prec || ti.Scale != tc.sc ||
				ti.SourceType != tc.sourceType || ti.ElemOID != tc.elemOID || ti.OID != tc.oid {
				t.Fatalf("got %+v", ti)
			}
			if (ti.Kind == change.KindArray) != (ti.elem != nil) {
				t.Fatalf("element info %v for kind %s", ti.elem, ti.Kind)
			}
			if want := 1; tc.oid < 10000 {
				if f.queries != 0 {
					t.Fatalf("built-in type cost %d queries", f.queries)
				}
			} else if f.queries != want {
				t.Fatalf("resolving cost %d queries; want %d", f.queries, want)
			}
			again, err := c.resolve(ctx, tc.oid, tc.typmod)
			if err != nil || again != ti || f.queries > 1 {
				t.Fatalf("second resolve: %p %v, %d queries", again, err, f.queries)
			}
		})
	}
}

func TestTypeCatalogCachesRows(t *testing.T) {
	ctx := context.Background()
	f := newFakeCatalog()
	c := newTypeCatalog(f)
	if _, err := c.resolve(ctx, 50005, -1); err != nil { // _price2 -> price2 -> price -> numeric
		t.Fatal(err)
	}
	for _, oid := range []uint32{50004, 50003} { // rows fetched with the array's query
		if _, err := c.resolve(ctx, oid, -1); err != nil {
			t.Fatal(err)
		}
	}
	if f.queries != 1 {
		t.Fatalf("%d queries; want 1", f.queries)
	}
	c.reset()
	if _, err := c.resolve(ctx, 50003, -1); err != nil || f.queries != 2 {
		t.Fatalf("after reset: %v, %d queries", err, f.queries)
	}
}

func TestTypeCatalogErrors(t *testing.T) {
	ctx := context.Background()
	c := newTypeCatalog(newFakeCatalog())
	_, _, err := c.resolveColumn(ctx, "home", 50006, -1)
	if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), `column "home"`) ||
		!strings.Contains(err.Error(), "public.addr") || !strings.Contains(err.Error(), "composite") {
		t.Fatalf("composite: %v", err)
	}
	_, _, err = c.resolveColumn(ctx, "homes", 50007, -1)
	if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), `column "homes"`) || !strings.Contains(err.Error(), "public.addr") {
		t.Fatalf("array of composite: %v", err)
	}
	if _, err := c.resolve(ctx, 50009, -1); !errors.Is(err, errUnsupportedType) {
		t.Fatalf("array of domain over array: %v", err)
	}
	if _, err := c.resolve(ctx, 50013, -1); !errors.Is(err, errUnsupportedType) {
		t.Fatalf("pseudo-type: %v", err)
	}
	if _, err := c.resolve(ctx, 59999, -1); err == nil || errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), "59999") {
		t.Fatalf("missing OID: %v", err)
	}

	boom := errors.New("connection reset")
	f := newFakeCatalog()
	f.err = boom
	c = newTypeCatalog(f)
	if _, err := c.resolve(ctx, 50001, -1); !errors.Is(err, boom) {
		t.Fatalf("query error: %v", err)
	}
	f.err = nil // a failed query is not cached
	if _, err := c.resolve(ctx, 50001, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := newTypeCatalog(nil).resolve(ctx, 50001, -1); err == nil {
		t.Fatal("no querier: want an error")
	}
	col, _, err := newTypeCatalog(nil).resolveColumn(ctx, "total", 1700, 655366)
	if err != nil || col != (change.Column{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}) {
		t.Fatalf("resolveColumn: %+v %v", col, err)
	}
}
