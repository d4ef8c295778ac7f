package encode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// ParsePayloadSchema parses an outbox payload schema (an Avro schema in JSON).
func ParsePayloadSchema(text string) (avro.Schema, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("not a valid Avro schema: %w", err)
	}
	return s, nil
}

// appendJSONAvro parses the JSON text js and writes it as the Avro binary of schema s. JSON is
// read as plain JSON (not Avro's JSON encoding): a union takes the value as it is, written as
// the first branch that holds it; a record field the object lacks takes the field's default.
func appendJSONAvro(dst []byte, s avro.Schema, js []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return dst, fmt.Errorf("the payload is not JSON: %w", err)
	}
	if d.More() {
		return dst, errors.New("the payload holds more than one JSON value")
	}
	return appendAvroValue(dst, s, v, "payload")
}

func appendAvroValue(dst []byte, s avro.Schema, v any, path string) ([]byte, error) {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	bad := func(want string) ([]byte, error) {
		return dst, fmt.Errorf("%s: %s is not %s", path, describeJSON(v), want)
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return bad("null")
		}
		return dst, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return bad("a boolean")
		}
		return appendBool(dst, b), nil
	case avro.Int, avro.Long:
		n, ok := jsonInt(v)
		if !ok || s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
			if s.Type() == avro.Int {
				return bad("an int")
			}
			return bad("a long")
		}
		return appendLong(dst, n), nil
	case avro.Float, avro.Double:
		f, ok := jsonFloat(v)
		if !ok {
			return bad("a number")
		}
		if s.Type() == avro.Float {
			return appendFloat(dst, float32(f)), nil
		}
		return appendDouble(dst, f), nil
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		return appendString(dst, str), nil
	case avro.Bytes, avro.Fixed:
		str, ok := v.(string)
		if !ok {
			return bad("a string of bytes")
		}
		b, ok := latin1(str)
		if !ok {
			return bad("a string of bytes (characters up to \\u00ff)")
		}
		if f, isFixed := s.(*avro.FixedSchema); isFixed {
			if len(b) != f.Size() {
				return bad(fmt.Sprintf("%d bytes", f.Size()))
			}
			return append(dst, b...), nil
		}
		return appendBytes(dst, b), nil
	case avro.Enum:
		str, ok := v.(string)
		e := s.(*avro.EnumSchema)
		if ok {
			for i, sym := range e.Symbols() {
				if sym == str {
					return appendLong(dst, int64(i)), nil
				}
			}
		}
		return bad("one of " + strings.Join(e.Symbols(), ", "))
	case avro.Array:
		a, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		if len(a) > 0 {
			dst = appendLong(dst, int64(len(a)))
			items := s.(*avro.ArraySchema).Items()
			for i, x := range a {
				var err error
				if dst, err = appendAvroValue(dst, items, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case avro.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		if len(m) > 0 {
			dst = appendLong(dst, int64(len(m)))
			vals := s.(*avro.MapSchema).Values()
			for _, k := range sortedKeys(m) {
				dst = appendString(dst, k)
				var err error
				if dst, err = appendAvroValue(dst, vals, m[k], path+"."+k); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case avro.Record:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for _, f := range s.(*avro.RecordSchema).Fields() {
			x, present := m[f.Name()]
			if !present {
				if !f.HasDefault() {
					return dst, fmt.Errorf("%s: field %s is missing and has no default", path, f.Name())
				}
				x = f.Default()
				if u, isUnion := f.Type().(*avro.UnionSchema); isUnion && x != nil {
					// A union's default is of its first branch.
					var err error
					dst = appendLong(dst, 0)
					if dst, err = appendAvroValue(dst, u.Types()[0], x, path+"."+f.Name()); err != nil {
						return dst, err
					}
					continue
				}
			}
			var err error
			if dst, err = appendAvroValue(dst, f.Type(), x, path+"."+f.Name()); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case avro.Union:
		var first error
		for i, b := range s.(*avro.UnionSchema).Types() {
			out, err := appendAvroValue(appendLong(dst, int64(i)), b, v, path)
			if err == nil {
				return out, nil
			}
			if first == nil || b.Type() != avro.Null {
				first = err
			}
		}
		return dst, first
	}
	return dst, fmt.Errorf("%s: Avro type %s is not supported in payload schemas", path, s.Type())
}

func jsonInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case float64: // a default value
		return int64(n), n == math.Trunc(n) && math.Abs(n) < 1<<63
	}
	return 0, false
}

func jsonFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

func latin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

func describeJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
