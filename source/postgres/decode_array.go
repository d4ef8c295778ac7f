package postgres

// Arrays. array_out prints "{e1,e2,...}", preceded by "[lb:ub]=" when the lower bound is not
// 1; an element is double-quoted (with \" and \\ escaped) when it is empty, NULL in any case,
// or contains the delimiter, a quote, a backslash, a brace or white space. Unquoted NULL is
// SQL NULL. An Avro array has one level of elements numbered from 1, so a value with another
// lower bound ("[0:2]={7,8,9}") or more than one dimension ("{{1,2},{3,4}}",
// "[0:1][5:6]={{7,7},{7,7}}") is refused with errNotRepresentable, never renumbered or
// flattened.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

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
