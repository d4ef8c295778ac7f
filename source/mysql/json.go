package mysql

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
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
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if s == "-0" {
				return json.Number("0")
			}
			return x
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return x // beyond a double: as written
		}
		b, err := json.Marshal(f)
		if err != nil {
			return x
		}
		return json.Number(b)
	}
	return v
}
