package mysql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MySQL JSON documents reach cdcd in two spellings: the stream's is go-mysql's rendering of
// the binlog's binary JSON (Go values marshalled: keys sorted bytewise, compact, doubles
// without a fraction when integral, HTML characters escaped), a snapshot's is MySQL's own
// (keys by length then bytes, ", " and ": ", doubles with a fraction: 1.0, 100.0). Both are
// published in one canonical form, so a document gives the same string whichever path read
// it: compact, object keys sorted bytewise, strings escaped only where JSON requires (and
// U+2028/U+2029), integers as written, other numbers as the shortest text of their double
// (1.0 and 1e0 are 1, 1e2 is 100, 1e300 is 1e+300: MySQL stores them as doubles, and the
// binlog's form does not tell 100.0 from 100 anyway).
//
// MariaDB's JSON is LONGTEXT: published as the text stored, the same on both paths.

// canonicalJSON rewrites a JSON document in the canonical form.
func canonicalJSON(text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "null", nil // an empty document (INSERT IGNORE of NULL): go-mysql and MySQL read it as null
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("text after the document")
	}
	v = canonicalNumbers(v)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// binlogJSON is canonicalJSON of the stream's text of a JSON value, mostly without parsing
// the document again. go-mysql decodes the binlog's binary document to Go values and marshals
// them with goccy/go-json: compact, integers as written, doubles as their shortest text,
// object keys sorted by their escaped text (encoding/json, and so the canonical form, sorts
// them by their value: the two differ only where a key holds characters below '"' or
// escapes after a common start). So strings that hold characters whose escaping differs
// (HTML characters; encoding/json's choices for controls, U+2028/U+2029 and invalid UTF-8)
// are written again, numbers with a fraction or exponent are spelled as canonicalNumbers
// spells them, the rest is copied; a document with an object whose keys are not in canonical
// order is parsed (canonicalJSON).
func binlogJSON(text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "null", nil // an empty document: see canonicalJSON
	}
	var out []byte // nil while the text is canonical as it is
	last := 0      // text[last:i] is not yet in out
	splice := func(i, end int, with string) {
		out = append(append(out, text[last:i]...), with...)
		last = end
	}
	// objects holds, per open object or array, the object's last key (array: -1).
	type open struct {
		keys    int
		lastKey string
	}
	objects := make([]open, 0, 16)
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == '"':
			end, plain := scanJSONString(text, i)
			if end < 0 {
				return "", errors.New("a string does not end")
			}
			str := text[i+1 : end-1]
			if !plain {
				var err error
				if str, err = unquoteJSON(str); err != nil {
					return "", err
				}
				if enc := string(appendJSONString(nil, str)); enc != text[i:end] {
					splice(i, end, enc)
				}
			}
			if n := len(objects); n > 0 && objects[n-1].keys >= 0 && isJSONKey(text, end) {
				o := &objects[n-1]
				if o.keys > 0 && o.lastKey >= str {
					return canonicalJSON(text)
				}
				o.keys++
				o.lastKey = str
			}
			i = end
		case c == '{' || c == '[':
			keys := 0
			if c == '[' {
				keys = -1
			}
			objects = append(objects, open{keys: keys})
			i++
		case c == '}' || c == ']':
			if len(objects) > 0 {
				objects = objects[:len(objects)-1]
			}
			i++
		case c == '-' || '0' <= c && c <= '9':
			end := i + 1
			for end < len(text) && strings.IndexByte("0123456789+-.eE", text[end]) >= 0 {
				end++
			}
			if n := text[i:end]; canonicalNumber(n) != n {
				splice(i, end, canonicalNumber(n))
			}
			i = end
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			splice(i, i+1, "")
			i++
		default:
			i++
		}
	}
	if out == nil {
		return strings.Clone(text), nil
	}
	return string(append(out, text[last:]...)), nil
}

// isJSONKey reports whether the string ending at text[end] is an object key (a ':' follows).
func isJSONKey(text string, end int) bool {
	for ; end < len(text); end++ {
		switch text[end] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// scanJSONString returns the end (after the closing quote) of the string literal starting at
// text[i], or -1, and whether it is plain: printable ASCII without escapes and valid UTF-8
// other than U+2028/U+2029, which the canonical form writes as it is.
func scanJSONString(text string, i int) (end int, plain bool) {
	plain = true
	for j := i + 1; j < len(text); {
		switch c := text[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			j += 2
		case c < 0x20:
			plain = false
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRuneInString(text[j:])
			if r == utf8.RuneError && n == 1 || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			j += n
		}
	}
	return -1, false
}

// canonicalNumbers rewrites the numbers of a decoded document: integers stay as written,
// others become the shortest text of their double.
func canonicalNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonicalNumbers(e)
		}
	case json.Number:
		return json.Number(canonicalNumber(string(x)))
	}
	return v
}

// canonicalNumber spells a JSON number canonically: an integer as written, another number as
// the shortest text of its double, as encoding/json writes a float64.
func canonicalNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s // beyond a double: as written
	}
	var buf [32]byte
	b := buf[:0]
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-07 -> e-7, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	if string(b) == s {
		return s
	}
	return string(b)
}

// unquoteJSON is the value of a JSON string literal's content (between the quotes), as
// encoding/json reads it: invalid UTF-8 and lone surrogates become U+FFFD.
func unquoteJSON(q string) (string, error) {
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\\':
			if i+1 >= len(q) {
				return "", errors.New("a string ends in a backslash")
			}
			switch e := q[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(q, i+2)
				if !ok {
					return "", errors.New("a \\u escape without four hex digits")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(q, i+2); ok && i+1 < len(q) && q[i] == '\\' && q[i+1] == 'u' {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							b = utf8.AppendRune(b, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", fmt.Errorf("an unknown escape \\%c", e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(q[i:])
			b = utf8.AppendRune(b, r) // invalid UTF-8: U+FFFD
			i += n
		}
	}
	return string(b), nil
}

// hex4 reads the four hex digits at q[i:].
func hex4(q string, i int) (rune, bool) {
	if i+4 > len(q) {
		return 0, false
	}
	v, err := strconv.ParseUint(q[i:i+4], 16, 16)
	return rune(v), err == nil
}

// appendJSONString appends s as encoding/json writes a string without HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
