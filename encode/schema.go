package encode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/change"
)

// Names of the records every value schema shares.
const (
	sourceNamespace = "io.cdcd"
	jsonConnectName = "io.debezium.data.Json"
	// microTimeConnectName marks a duration in microseconds (Debezium's MicroTime).
	microTimeConnectName = "io.debezium.time.MicroTime"
	sourceTypeProp       = "cdcd.source_type"
)

// colPlan is what the hot path needs to know about one column (or array element).
type colPlan struct {
	name        string // source column name, for messages
	avroName    string // the field's name in the Avro records
	kind        change.Kind
	nullable    bool
	prec, scale int    // Avro decimal shape: KindUint64, and KindDecimal when prec > 0
	typeName    string // the type as users know it, for messages
	conv        uint8  // how a type mode other than ModeAvro converts the value (modes.go)
	elem        *colPlan
}

// textual reports whether the column's Avro type is string or bytes without a logical type
// that constrains the text.
func (c *colPlan) textual() bool {
	switch c.conv {
	case convNone:
	case convText:
		return true
	default:
		return false
	}
	switch c.kind {
	case change.KindString, change.KindJSON, change.KindBytes:
		return true
	case change.KindDecimal:
		return c.prec == 0
	}
	return false
}

// How an unchanged TOAST value of a column is written (see the package doc).
const (
	placeholderNone  = iota // null, and the column is Avro-nullable
	placeholderText         // UnchangedPlaceholder (its UTF-8 bytes for bytes)
	placeholderArray        // [UnchangedPlaceholder]
)

func (c *colPlan) unchangedForm() int {
	switch {
	case c.textual():
		return placeholderText
	case c.kind == change.KindArray && c.elem != nil && c.elem.textual():
		return placeholderArray
	}
	return placeholderNone
}

// maxInlineDecimal is the largest numeric precision whose values Postgres never stores out of
// line: the toaster moves a value out only when it is larger than a TOAST pointer (24 bytes
// aligned), and a numeric of up to 28 digits takes at most 4+2+2*8 = 22 bytes.
const maxInlineDecimal = 28

// mayBeUnchanged reports whether Postgres can leave a value of the column out of an update
// as unchanged TOAST (pgoutput does so only for values stored out of line). Only
// variable-length types can be: text, json, bytea, arrays, and numeric beyond
// maxInlineDecimal digits. Fixed-size types (integers, floats, dates and times, uuid, ...)
// never are.
func (c *colPlan) mayBeUnchanged() bool {
	switch c.kind {
	case change.KindString, change.KindJSON, change.KindBytes, change.KindArray:
		return true
	case change.KindDecimal:
		return c.prec == 0 || c.prec > maxInlineDecimal
	}
	return false
}

// tablePlan is everything derived from one *change.Table: names, schemas, and the encoding
// plan. It is immutable once built.
type tablePlan struct {
	qname       string // schema.table
	topic       string
	namespace   string
	cols        []colPlan
	key         []int // indexes into cols
	keySchema   string
	valueSchema string
}

// decimalShape maps a source decimal's precision and scale onto a valid Avro decimal
// (0 <= scale <= precision) that holds every value the column can.
func decimalShape(p, s int) (prec, scale int) {
	switch {
	case s < 0: // numeric(5,-2) holds up to 9999900
		return p - s, 0
	case s > p: // numeric(2,5) holds up to 0.00099
		return s, s
	}
	return p, s
}

// rawJSON is JSON text written as it is.
type rawJSON string

// avroDefault is the JSON form of a column's default for its Avro field of type typ: the
// value encoded as a record would carry it, read back as the Avro specification spells a
// default of the type's primitive (a number, a boolean, a string; bytes as a string of code
// points 0-255). No default when there is none, when it does not encode, when the type is
// not a primitive (an array), or when it has no JSON form (NaN, infinities).
func avroDefault(c *colPlan, typ any, d change.Default) (rawJSON, bool) {
	if !d.Set {
		return "", false
	}
	prim, ok := typ.(string)
	if o, isObj := typ.(jobj); isObj {
		for _, kv := range o {
			if kv.k == "type" {
				prim, ok = kv.v.(string)
			}
		}
	}
	if !ok {
		return "", false
	}
	v := d.Value()
	b, err := appendValue(nil, c, &v, &scratch{})
	if err != nil {
		return "", false
	}
	switch prim {
	case "boolean":
		if len(b) != 1 {
			return "", false
		}
		return rawJSON(strconv.FormatBool(b[0] != 0)), true
	case "int", "long":
		x, n := binary.Varint(b)
		if n != len(b) {
			return "", false
		}
		return rawJSON(strconv.FormatInt(x, 10)), true
	case "float", "double":
		var f float64
		switch {
		case prim == "float" && len(b) == 4:
			f = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case prim == "double" && len(b) == 8:
			f = math.Float64frombits(binary.LittleEndian.Uint64(b))
		default:
			return "", false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", false
		}
		bits := 64
		if prim == "float" {
			bits = 32
		}
		return rawJSON(strconv.FormatFloat(f, 'g', -1, bits)), true
	case "string", "bytes":
		n, m := binary.Varint(b)
		if m <= 0 || n < 0 || int64(len(b)-m) != n {
			return "", false
		}
		s := string(b[m:])
		if prim == "bytes" {
			r := make([]rune, len(s))
			for i := 0; i < len(s); i++ {
				r[i] = rune(s[i])
			}
			s = string(r)
		} else if !utf8.ValidString(s) {
			return "", false
		}
		q, _ := json.Marshal(s)
		return rawJSON(q), true
	}
	return "", false
}

// jobj is a JSON object whose keys keep their order, so schemas are deterministic.
type jobj []jkv

type jkv struct {
	k string
	v any
}

// writeJSON writes v; defined holds the named types (namedType) already defined.
func writeJSON(b *bytes.Buffer, v any, defined map[string]bool) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		q, _ := json.Marshal(v) // cannot fail for a string
		b.Write(q)
	case int:
		b.WriteString(strconv.Itoa(v))
	case rawJSON:
		b.WriteString(string(v))
	case namedType:
		if defined[v.name] {
			writeJSON(b, v.name, defined)
			return
		}
		defined[v.name] = true
		writeJSON(b, v.def, defined)
	case jobj:
		b.WriteByte('{')
		for i, kv := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, kv.k, defined)
			b.WriteByte(':')
			writeJSON(b, kv.v, defined)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e, defined)
		}
		b.WriteByte(']')
	default:
		panic(fmt.Sprintf("encode: writeJSON: unexpected %T", v))
	}
}

func jsonString(v any) string {
	var b bytes.Buffer
	writeJSON(&b, v, map[string]bool{})
	return b.String()
}

// planColumn builds the plan and the Avro type (without the null union) of one column or
// array element of kind k.
func planColumn(c *change.Column, k change.Kind, elem bool, m typeModes) (colPlan, any, error) {
	p := colPlan{name: c.Name, kind: k, typeName: c.SourceType}
	if p.typeName == "" || elem {
		p.typeName = k.String()
	}
	if k != change.KindArray {
		if t, ok, err := modeType(c, k, m, &p); err != nil || ok {
			return p, t, err
		}
	}
	var t any
	switch k {
	case change.KindBool:
		t = "boolean"
	case change.KindInt16, change.KindInt32:
		t = "int"
	case change.KindInt64:
		t = "long"
	case change.KindUint64:
		p.prec, p.scale = 20, 0
		t = jobj{{"type", "bytes"}, {"logicalType", "decimal"}, {"precision", 20}, {"scale", 0}}
	case change.KindFloat32:
		t = "float"
	case change.KindFloat64:
		t = "double"
	case change.KindDecimal:
		switch {
		case c.Precision < 0:
			return p, nil, fmt.Errorf("decimal precision %d is negative; the source reported a bad type", c.Precision)
		case c.Precision == 0:
			t = "string" // unconstrained: NaN, ±Infinity and any scale, exactly
		default:
			p.prec, p.scale = decimalShape(c.Precision, c.Scale)
			if elem {
				p.typeName = fmt.Sprintf("decimal(%d,%d)", c.Precision, c.Scale)
			}
			t = jobj{{"type", "bytes"}, {"logicalType", "decimal"}, {"precision", p.prec}, {"scale", p.scale}}
		}
	case change.KindString, change.KindEnum, change.KindTimeTZ, change.KindInterval:
		t = "string"
	case change.KindUUID:
		t = jobj{{"type", "string"}, {"logicalType", "uuid"}}
	case change.KindJSON:
		t = jobj{{"type", "string"}, {"connect.name", jsonConnectName}}
	case change.KindBytes:
		t = "bytes"
	case change.KindDate:
		t = jobj{{"type", "int"}, {"logicalType", "date"}}
	case change.KindTime:
		t = jobj{{"type", "long"}, {"logicalType", "time-micros"}}
	case change.KindDuration:
		// Debezium's MicroTime: time-micros is a time of day, which MySQL's TIME is not
		// (standard readers refuse a time-micros beyond 24 h or below zero).
		t = jobj{{"type", "long"}, {"connect.name", microTimeConnectName}}
	case change.KindTimestamp:
		t = jobj{{"type", "long"}, {"logicalType", "local-timestamp-micros"}}
	case change.KindTimestampTZ:
		t = jobj{{"type", "long"}, {"logicalType", "timestamp-micros"}}
	case change.KindArray:
		if elem {
			return p, nil, fmt.Errorf("nested arrays are not supported")
		}
		ep, et, err := planColumn(c, c.Elem, true, m)
		if err != nil {
			return p, nil, fmt.Errorf("array element: %w", err)
		}
		p.elem = &ep
		t = jobj{{"type", "array"}, {"items", []any{"null", et}}}
	default:
		return p, nil, fmt.Errorf("kind %v has no Avro mapping; the source must map the type to a supported kind", k)
	}
	return p, t, nil
}

// buildPlan derives names, schemas and the encoding plan of one table version. With
// unchangedTOAST (Postgres sources), a non-key column that may arrive as unchanged TOAST and
// has no placeholder form is nullable even when the database declares it NOT NULL: null,
// listed in unchanged_toast, is then how such a value is written.
func buildPlan(t *change.Table, topic string, unchangedTOAST bool, m typeModes) (*tablePlan, error) {
	p := &tablePlan{
		qname:     t.QualifiedName(),
		topic:     topic,
		namespace: avroNamespace(topic),
		cols:      make([]colPlan, len(t.Columns)),
		key:       t.KeyColumns,
	}
	fields := make([]any, len(t.Columns))
	seen := make(map[string]int, len(t.Columns))
	for i := range t.Columns {
		c := &t.Columns[i]
		name := AvroName(c.Name)
		if j, dup := seen[name]; dup {
			return nil, &Error{Class: ClassSchemaRejected, Table: p.qname, Column: c.Name,
				Err: fmt.Errorf("columns %q and %q both become Avro field %q; rename one of them", t.Columns[j].Name, c.Name, name)}
		}
		seen[name] = i
		cp, typ, err := planColumn(c, c.Kind, false, m)
		if err != nil {
			return nil, &Error{Class: ClassUndecodable, Table: p.qname, Column: c.Name, Err: err}
		}
		cp.avroName = name
		cp.nullable = c.Nullable || unchangedTOAST && !isKey(t, i) && cp.mayBeUnchanged() && cp.unchangedForm() == placeholderNone
		p.cols[i] = cp
		f := jobj{{"name", name}}
		if cp.nullable {
			f = append(f, jkv{"type", []any{"null", typ}}, jkv{"default", nil})
		} else {
			f = append(f, jkv{"type", typ})
			// A NOT NULL column's default is the field's (as Debezium does): a column added
			// with one is then a compatible change under BACKWARD. Not on key fields, which the
			// key schema shares: a key's bytes must not change with a default.
			if d, ok := avroDefault(&cp, typ, c.Default); ok && !isKey(t, i) {
				f = append(f, jkv{"default", d})
			}
		}
		if c.SourceType != "" {
			f = append(f, jkv{sourceTypeProp, c.SourceType})
		}
		fields[i] = f
	}
	for _, k := range t.KeyColumns {
		if k < 0 || k >= len(t.Columns) {
			return nil, &Error{Class: ClassUndecodable, Table: p.qname,
				Err: fmt.Errorf("key column index %d is out of range (%d columns); the source reported a bad key", k, len(t.Columns))}
		}
	}
	if len(t.KeyColumns) > 0 {
		kf := make([]any, len(t.KeyColumns))
		for i, k := range t.KeyColumns {
			kf[i] = fields[k]
		}
		p.keySchema = jsonString(jobj{{"type", "record"}, {"name", "Key"}, {"namespace", p.namespace}, {"fields", kf}})
	}
	value := jobj{{"type", "record"}, {"name", "Value"}, {"namespace", p.namespace}, {"fields", fields}}
	p.valueSchema = jsonString(jobj{
		{"type", "record"}, {"name", "Envelope"}, {"namespace", p.namespace},
		{"fields", []any{
			jobj{{"name", "before"}, {"type", []any{"null", value}}, {"default", nil}},
			jobj{{"name", "after"}, {"type", []any{"null", p.namespace + ".Value"}}, {"default", nil}},
			jobj{{"name", "source"}, {"type", sourceSchemaFor(m)}},
			jobj{{"name", "op"}, {"type", "string"}},
			jobj{{"name", "ts_ms"}, {"type", []any{"null", "long"}}, {"default", nil}},
			jobj{{"name", "transaction"}, {"type", []any{"null", transactionSchema}}, {"default", nil}},
			jobj{{"name", "unchanged_toast"}, {"type", []any{"null", jobj{{"type", "array"}, {"items", "string"}}}}, {"default", nil}},
		}},
	})
	return p, nil
}

func isKey(t *change.Table, col int) bool {
	for _, k := range t.KeyColumns {
		if k == col {
			return true
		}
	}
	return false
}

func optional(name, typ string) jobj {
	return jobj{{"name", name}, {"type", []any{"null", typ}}, {"default", nil}}
}

func required(name, typ string) jobj { return jobj{{"name", name}, {"type", typ}} }

// sourceSchema is the envelope's source block. Field order is the wire order: keep
// appendSource in step.
var sourceSchema = jobj{
	{"type", "record"}, {"name", "Source"}, {"namespace", sourceNamespace},
	{"fields", []any{
		required("version", "string"),
		required("connector", "string"),
		required("name", "string"),
		required("ts_ms", "long"),
		required("snapshot", "string"),
		required("db", "string"),
		required("schema", "string"),
		required("table", "string"),
		optional("txId", "long"),
		optional("lsn", "long"),
		optional("gtid", "string"),
		optional("sequence", "string"),
	}},
}

var transactionSchema = jobj{
	{"type", "record"}, {"name", "Transaction"}, {"namespace", sourceNamespace},
	{"fields", []any{
		required("id", "string"),
		required("total_order", "long"),
		required("data_collection_order", "long"),
	}},
}
