package encode

import (
	"fmt"
	"math"

	"github.com/cdcd-dev/cdcd/change"
)

// UnchangedPlaceholder stands for an unchanged TOAST value (change.Unchanged) in columns
// whose Avro type is string or bytes, and as the only element of arrays of them. It is
// Debezium's default unavailable.value.placeholder, which existing sinks recognise. It is not
// the column's value: the envelope's unchanged_toast field lists every column whose value was
// not sent, so a consumer can tell the placeholder from a value that happens to equal it.
const UnchangedPlaceholder = "__debezium_unavailable_value"

// Union branch indexes, zigzag-encoded.
const (
	unionNull  = 0
	unionValue = 2
)

// appendField writes one field of a Key or Value record (key: of the Key record). A returned
// *Error has Class and Err set; the caller adds Table and Column.
func appendField(dst []byte, c *colPlan, v *change.Value, key bool, sc *scratch) ([]byte, *Error) {
	switch v.State {
	case change.Present:
		if c.nullable {
			dst = append(dst, unionValue)
		}
		return appendValue(dst, c, v, sc)
	case change.Null:
		if !c.nullable {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"NULL in a column the schema declares NOT NULL (%s); the column's nullability changed without cdcd seeing it: restart the pipeline so it re-reads the table, or route the row to the dead-letter topic", c.typeName)}
		}
		return append(dst, unionNull), nil
	case change.Unchanged: // see "Unchanged TOAST" in the package doc
		if key {
			return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf(
				"the source sent an unchanged-TOAST marker for a key column, so the record key is unknown; this is a source bug (set REPLICA IDENTITY FULL on the table so the source can take the value from the old row)")}
		}
		switch c.unchangedForm() {
		case placeholderText:
			if c.nullable {
				dst = append(dst, unionValue)
			}
			return appendString(dst, UnchangedPlaceholder), nil
		case placeholderArray:
			if c.nullable {
				dst = append(dst, unionValue)
			}
			dst = append(dst, 1<<1, unionValue) // one block of one non-null element
			return append(appendString(dst, UnchangedPlaceholder), 0), nil
		}
		if !c.nullable { // buildPlan makes such columns nullable; a plan that did not is a bug
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"the source sent an unchanged-TOAST marker for a NOT NULL %s column, which has no placeholder form", c.typeName)}
		}
		return append(dst, unionNull), nil
	case change.Absent:
		return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf(
			"the source sent no value for this column in a row that must be complete; this is a source bug (for MySQL, check binlog_row_image=FULL)")}
	}
	return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf("unknown value state %d; this is a source bug", v.State)}
}

// appendValue writes a present value of column c (without the union branch).
func appendValue(dst []byte, c *colPlan, v *change.Value, sc *scratch) ([]byte, *Error) {
	if c.conv != convNone {
		return appendConverted(dst, c, v, sc)
	}
	switch c.kind {
	case change.KindBool:
		return appendBool(dst, v.Int != 0), nil
	case change.KindInt16, change.KindInt32, change.KindDate:
		if v.Int < math.MinInt32 || v.Int > math.MaxInt32 {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"value %d does not fit %s (Avro int is 32-bit); the source reported a wider value than the column's type allows", v.Int, c.typeName)}
		}
		return appendLong(dst, v.Int), nil
	case change.KindInt64, change.KindTime, change.KindDuration, change.KindTimestamp, change.KindTimestampTZ:
		return appendLong(dst, v.Int), nil
	case change.KindUint64:
		return appendUint64Decimal(dst, v.Uint, sc), nil
	case change.KindFloat32:
		f := float32(v.Float)
		if math.IsInf(float64(f), 0) && !math.IsInf(v.Float, 0) {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"value %g does not fit %s (32-bit float)", v.Float, c.typeName)}
		}
		return appendFloat(dst, f), nil
	case change.KindFloat64:
		return appendDouble(dst, v.Float), nil
	case change.KindDecimal:
		if c.prec == 0 {
			return appendString(dst, v.Str), nil
		}
		out, p := appendDecimal(dst, v.Str, c.prec, c.scale, sc)
		if p != decOK {
			return dst, decimalError(c, v.Str, p)
		}
		return out, nil
	case change.KindString, change.KindEnum, change.KindTimeTZ, change.KindInterval, change.KindUUID, change.KindJSON:
		return appendString(dst, v.Str), nil
	case change.KindBytes:
		return appendBytes(dst, v.Bytes), nil
	case change.KindArray:
		if len(v.Arr) == 0 {
			return append(dst, 0), nil
		}
		dst = appendLong(dst, int64(len(v.Arr)))
		for i := range v.Arr {
			e := &v.Arr[i]
			switch e.State {
			case change.Null:
				dst = append(dst, unionNull)
			case change.Present:
				var err *Error
				dst = append(dst, unionValue)
				if dst, err = appendValue(dst, c.elem, e, sc); err != nil {
					err.Err = fmt.Errorf("array element %d: %w", i, err.Err)
					return dst, err
				}
			default:
				return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf(
					"array element %d has no value (state %d); this is a source bug", i, e.State)}
			}
		}
		return append(dst, 0), nil
	}
	return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf("kind %v has no Avro mapping", c.kind)}
}

func decimalError(c *colPlan, s string, p decProblem) *Error {
	const fix = "widen the column's type, or set on_error: dlq to keep such rows in the dead-letter topic"
	shown := s
	if len(shown) > 64 {
		shown = shown[:61] + "..."
	}
	var err error
	switch p {
	case decSyntax:
		return &Error{Class: ClassUndecodable, Err: fmt.Errorf(
			"value %q is not a decimal number; this is a source bug", shown)}
	case decNaN:
		err = fmt.Errorf("value %s does not fit %s (an Avro decimal has no NaN or Infinity); store NULL instead, or make the column an unconstrained numeric, which cdcd carries as text", shown, c.typeName)
	case decFrac:
		err = fmt.Errorf("value %s does not fit %s (more than %d fractional digits); %s", shown, c.typeName, c.scale, fix)
	default:
		err = fmt.Errorf("value %s does not fit %s (more than %d integer digits); %s", shown, c.typeName, c.prec-c.scale, fix)
	}
	return &Error{Class: ClassValueNotRepresentable, Err: err}
}

// appendRecord writes a Key or Value record: the columns idx of row (all columns when idx
// is nil).
func (p *tablePlan) appendRecord(dst []byte, row []change.Value, idx []int, sc *scratch) ([]byte, error) {
	if len(row) != len(p.cols) {
		return dst, &Error{Class: ClassUndecodable, Table: p.qname, Err: fmt.Errorf(
			"row has %d values but the table has %d columns; this is a source bug", len(row), len(p.cols))}
	}
	var err *Error
	if idx == nil {
		for i := range p.cols {
			if dst, err = appendField(dst, &p.cols[i], &row[i], false, sc); err != nil {
				err.Table, err.Column = p.qname, p.cols[i].name
				return dst, err
			}
		}
		return dst, nil
	}
	for _, i := range idx {
		if dst, err = appendField(dst, &p.cols[i], &row[i], true, sc); err != nil {
			err.Table, err.Column = p.qname, p.cols[i].name
			return dst, err
		}
	}
	return dst, nil
}

// appendUnchanged writes the envelope's unchanged_toast field: null when no value of after is
// change.Unchanged, else the Avro names of those columns in column order.
func (p *tablePlan) appendUnchanged(dst []byte, after []change.Value) []byte {
	n := 0
	for i := range after {
		if after[i].State == change.Unchanged {
			n++
		}
	}
	if n == 0 {
		return append(dst, unionNull)
	}
	dst = append(dst, unionValue)
	dst = appendLong(dst, int64(n))
	for i := range after {
		if after[i].State == change.Unchanged {
			dst = appendString(dst, p.cols[i].avroName)
		}
	}
	return append(dst, 0)
}

// nullFilled returns row with its absent and unchanged values null, in sc's reused buffer, or
// row itself when one of them is in a column that cannot be null.
func (p *tablePlan) nullFilled(row []change.Value, sc *scratch) []change.Value {
	out := append(sc.row[:0], row...)
	for i := range out {
		if s := out[i].State; s == change.Absent || s == change.Unchanged {
			if i >= len(p.cols) || !p.cols[i].nullable {
				return row
			}
			out[i] = change.NullValue
		}
	}
	sc.row = out
	return out
}

// complete reports whether row carries every column's value (none Absent or Unchanged).
func complete(row []change.Value) bool {
	for i := range row {
		if s := row[i].State; s == change.Absent || s == change.Unchanged {
			return false
		}
	}
	return true
}
