package window

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
)

// An outField is one field of a result record: its name, its Avro type (JSON), and how a
// Value is written in it.
type outField struct {
	name     string
	typ      any // Avro type as JSON-able value; nullable fields are ["null", T]
	nullable bool
	write    func(dst []byte, v Value) ([]byte, error)
}

// outSchema is the key or value schema of a job's results.
type outSchema struct {
	fields []outField
	json   string
}

func newOutSchema(name, namespace string, fields []outField) *outSchema {
	fs := make([]map[string]any, len(fields))
	for i, f := range fields {
		m := map[string]any{"name": f.name, "type": f.typ}
		if f.nullable {
			m["type"] = []any{"null", f.typ}
			m["default"] = nil
		}
		fs[i] = m
	}
	b, _ := json.Marshal(map[string]any{"type": "record", "name": name, "namespace": namespace, "fields": fs})
	return &outSchema{fields: fields, json: string(b)}
}

// append writes vals (one per field) as an Avro record.
func (s *outSchema) append(dst []byte, vals []Value) ([]byte, error) {
	for i, f := range s.fields {
		v := vals[i]
		if f.nullable {
			if v.IsNull() {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 2)
		} else if v.IsNull() {
			return dst, fmt.Errorf("field %s: null in a field that cannot be null", f.name)
		}
		var err error
		if dst, err = f.write(dst, v); err != nil {
			return dst, fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	return dst, nil
}

func writeLong(dst []byte, v Value) ([]byte, error) {
	if v.Kind != KindLong && v.Kind != KindTime && v.Kind != KindBool {
		return dst, fmt.Errorf("a %s value in a long field", v.Kind)
	}
	return encode.AppendLong(dst, v.I), nil
}

func writeDouble(dst []byte, v Value) ([]byte, error) {
	if v.Kind != KindDouble {
		return dst, fmt.Errorf("a %s value in a double field", v.Kind)
	}
	return encode.AppendDouble(dst, v.F), nil
}

func writeString(dst []byte, v Value) ([]byte, error) {
	if v.Kind != KindString {
		return dst, fmt.Errorf("a %s value in a string field", v.Kind)
	}
	return encode.AppendString(dst, v.S), nil
}

func writeMillis(dst []byte, v Value) ([]byte, error) {
	if v.Kind != KindTime {
		return dst, fmt.Errorf("a %s value in a timestamp field", v.Kind)
	}
	return encode.AppendLong(dst, floorDiv(v.I, 1000)), nil
}

// decimalWriter writes exact decimals of the given scale (bytes: big-endian two's complement
// of the unscaled value); a value that needs more digits than precision is refused.
func decimalWriter(precision, scale int) func([]byte, Value) ([]byte, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(precision)), nil)
	mul := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	return func(dst []byte, v Value) ([]byte, error) {
		if v.Kind != KindDecimal {
			return dst, fmt.Errorf("a %s value in a decimal field", v.Kind)
		}
		num := new(big.Int).Mul(v.R.Num(), mul)
		q, rem := new(big.Int).QuoRem(num, v.R.Denom(), new(big.Int))
		if rem.Sign() != 0 {
			return dst, fmt.Errorf("%s has more than %d decimal places", v.R.RatString(), scale)
		}
		if new(big.Int).Abs(q).Cmp(limit) >= 0 {
			return dst, fmt.Errorf("%s needs more than %d digits", v.R.FloatString(scale), precision)
		}
		return encode.AppendBigDecimal(dst, q), nil
	}
}

// fieldFor makes the output field that carries values of an input field of schema s (group
// fields, min, max, first, last): the same logical type where cdcd can write it.
func fieldFor(name string, s avro.Schema) (outField, error) {
	if u, ok := s.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		s = u.Types()[1]
	}
	s = deref(s)
	f := outField{name: name, nullable: true}
	switch s.Type() {
	case avro.Boolean:
		f.typ, f.write = "boolean", func(dst []byte, v Value) ([]byte, error) { return encode.AppendBool(dst, v.I&1 == 1), nil }
	case avro.Int, avro.Long:
		switch logical(s) {
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			f.typ, f.write = map[string]any{"type": "long", "logicalType": "timestamp-micros"}, writeLong
		case avro.Date:
			f.typ, f.write = map[string]any{"type": "int", "logicalType": "date"}, writeLong
		default:
			f.typ, f.write = "long", writeLong
		}
	case avro.Float, avro.Double:
		f.typ, f.write = "double", writeDouble
	case avro.String, avro.Enum:
		f.typ, f.write = "string", writeString
	case avro.Bytes, avro.Fixed:
		dec, ok := s.(avro.LogicalTypeSchema).Logical().(*avro.DecimalLogicalSchema)
		if !ok {
			return f, fmt.Errorf("field %s is binary", name)
		}
		f.typ = map[string]any{"type": "bytes", "logicalType": "decimal", "precision": dec.Precision(), "scale": dec.Scale()}
		f.write = decimalWriter(dec.Precision(), dec.Scale())
	default:
		return f, fmt.Errorf("field %s has Avro type %s", name, s.Type())
	}
	return f, nil
}

// sumField is the output field of a sum over an input field of schema s: a long for
// integers, a double for floats, and an exact decimal of the input's scale with 10 more
// digits of precision (at least 38) for decimals.
func sumField(name string, s avro.Schema) (outField, error) {
	if u, ok := s.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		s = u.Types()[1]
	}
	s = deref(s)
	f := outField{name: name, nullable: true}
	switch s.Type() {
	case avro.Int, avro.Long:
		if logical(s) != "" {
			return f, fmt.Errorf("cannot sum %s values (%s)", logical(s), name)
		}
		f.typ, f.write = "long", writeLong
	case avro.Float, avro.Double:
		f.typ, f.write = "double", writeDouble
	case avro.Bytes, avro.Fixed:
		dec, ok := s.(avro.LogicalTypeSchema).Logical().(*avro.DecimalLogicalSchema)
		if !ok {
			return f, fmt.Errorf("cannot sum binary values (%s)", name)
		}
		p := max(dec.Precision()+10, 38)
		f.typ = map[string]any{"type": "bytes", "logicalType": "decimal", "precision": p, "scale": dec.Scale()}
		f.write = decimalWriter(p, dec.Scale())
	default:
		return f, fmt.Errorf("cannot sum %s values (%s)", s.Type(), name)
	}
	return f, nil
}
