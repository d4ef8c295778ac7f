package mysql

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
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
				if err := json.Unmarshal([]byte(text[i:end]), &str); err != nil {
					return "", err
				}
				if enc := jsonString(str); enc != text[i:end] {
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
			if n, c := text[i:end], canonicalNumber(text[i:end]); c != n {
				splice(i, end, c)
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
	return string(b)
}

// jsonString is s as a JSON string literal in the canonical form (encoding/json's, without
// HTML escaping).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
