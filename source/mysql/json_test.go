package mysql

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	gojson "github.com/goccy/go-json"
)

// TestJSONSameFromStreamAndSnapshot: a MySQL JSON document gives the same string from the
// stream and from a snapshot. The stream's text is what go-mysql makes of the binlog's binary
// JSON (it decodes the document to Go values, doubles as float64, and marshals them with
// goccy/go-json: keys sorted bytewise, compact, HTML characters escaped); a snapshot's is
// MySQL's own spelling of the stored document (keys by length, then bytes; ", " and ": ";
// doubles with a fraction: 1.0, 100.0). Both used to be published as they came.
func TestJSONSameFromStreamAndSnapshot(t *testing.T) {
	s := &ColumnSpec{Name: "j", Type: gomysql.MYSQL_TYPE_JSON}
	for _, c := range []struct {
		name  string
		doc   any    // the document as go-mysql's binary decoder returns it
		mysql string // MySQL's SELECT text of the same stored document
	}{
		{"key order and whitespace", map[string]any{"b": int64(1), "a": int64(2), "ab": []any{int64(1), "x"}},
			`{"a": 2, "b": 1, "ab": [1, "x"]}`},
		{"doubles", map[string]any{"one": float64(1), "hundred": float64(100), "tenth": 0.1, "big": 1e300, "neg": -2.5},
			`{"big": 1e300, "neg": -2.5, "one": 1.0, "tenth": 0.1, "hundred": 100.0}`},
		{"integers", []any{int64(-9223372036854775808), uint64(18446744073709551615), int64(0)},
			`[-9223372036854775808, 18446744073709551615, 0]`},
		{"unicode and escapes", map[string]any{"s": "é ✓ <&> \"q\" \\ \n \u0001 \u2028"},
			`{"s": "é ✓ <&> \"q\" \\ \n \u0001 \u2028"}`},
		{"literals", []any{true, false, nil, map[string]any{}, []any{}}, `[true, false, null, {}, []]`},
		{"scalar double", float64(3), `3.0`},
		{"scalar string", "x", `"x"`},
	} {
		streamText, err := json.Marshal(c.doc) // go-mysql's goccy/go-json writes these values the same
		if err != nil {
			t.Fatal(err)
		}
		fromStream, err := DecodeBinlog(s, change.KindJSON, string(streamText))
		if err != nil {
			t.Fatalf("%s: stream: %v", c.name, err)
		}
		fromSnapshot, err := DecodeText(s, change.KindJSON, []byte(c.mysql))
		if err != nil {
			t.Fatalf("%s: snapshot: %v", c.name, err)
		}
		if fromStream.Str != fromSnapshot.Str {
			t.Errorf("%s: the stream gives %s, a snapshot %s", c.name, fromStream.Str, fromSnapshot.Str)
		}
	}
}

// randomJSONDoc is a document as go-mysql's binary JSON decoder returns it (objects, arrays,
// int64, uint64, float64, strings, literals), with the strings that need care: HTML
// characters, controls, U+2028/U+2029, U+FFFD, invalid UTF-8 (an opaque value's bytes).
func randomJSONDoc(r *rand.Rand, depth int) any {
	str := func() string {
		parts := []string{"a", "Z", "<", ">", "&", `"`, `\`, "/", "\n", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "é", "✓", "\u2028", "\u2029", "\ufffd", "\xff", "\xe2\x80", "𝄞", " ", "u003c"}
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		return b.String()
	}
	switch k := r.IntN(10); {
	case depth > 0 && k < 2:
		m := map[string]any{}
		for range r.IntN(5) {
			m[str()] = randomJSONDoc(r, depth-1)
		}
		return m
	case depth > 0 && k < 4:
		var a []any
		for range r.IntN(5) {
			a = append(a, randomJSONDoc(r, depth-1))
		}
		return append([]any{}, a...)
	case k < 5:
		return r.Int64() >> r.IntN(64) * int64(1-2*r.IntN(2))
	case k < 6:
		return r.Uint64()
	case k < 8:
		fs := []float64{0, math.Copysign(0, -1), 1, 100, 0.1, -2.5, 1e300, 1e21, 1e20, 1e-7, 1e-6, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64}
		if r.IntN(2) == 0 {
			return fs[r.IntN(len(fs))]
		}
		return math.Float64frombits(r.Uint64()&^(0x7ff<<52)|uint64(900+r.IntN(250))<<52) * float64(1-2*r.IntN(2))
	case k < 9:
		return str()
	}
	return []any{true, false, nil}[r.IntN(3)]
}

// TestBinlogJSONOnePass: the stream's JSON text (go-mysql marshals its decoded document with
// goccy/go-json) gets the canonical form without being parsed again: binlogJSON gives what
// canonicalJSON gives, for random documents.
func TestBinlogJSONOnePass(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		doc := randomJSONDoc(r, 3)
		text, err := gojson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, err := canonicalJSON(string(text))
		if err != nil {
			t.Fatalf("%d: canonicalJSON(%s): %v", i, text, err)
		}
		got, err := binlogJSON(string(text))
		if err != nil || got != want {
			t.Fatalf("%d: binlogJSON(%s) = %s, %v; want %s", i, text, got, err, want)
		}
	}
	for _, text := range []string{`["\ud834\udd1e","\ud834","\ud834\u0041","\udd1e\ud834","\u00e9\/\u0000\u007f"]`,
		`{"a ":1,"a":2}`, `{"b":{"y":1,"x":[{"d":1,"c":2}]},"a":0}`, `[1.0,1e2,-0,-0.0,1E+21,0.0000001,12345678901234567890123]`, ` { "a" : [ 1 , 2 ] } `} {
		want, err := canonicalJSON(text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := binlogJSON(text); err != nil || got != want {
			t.Errorf("binlogJSON(%s) = %s, %v; want %s", text, got, err, want)
		}
	}
	if got, err := binlogJSON(""); err != nil || got != "null" {
		t.Fatalf("empty document: %q %v; want null", got, err)
	}
}

// BenchmarkBinlogJSON: the stream's canonical JSON of a typical document.
func BenchmarkBinlogJSON(b *testing.B) {
	doc := map[string]any{"id": int64(42), "name": "Widget <large> & co", "price": 19.99, "tags": []any{"a", "b", "été"},
		"dims": map[string]any{"w": 10.5, "h": int64(3), "unit": "cm"}, "active": true, "note": nil}
	text, _ := gojson.Marshal(doc)
	s := &ColumnSpec{Name: "j", Type: gomysql.MYSQL_TYPE_JSON}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBinlog(s, change.KindJSON, string(text)); err != nil {
			b.Fatal(err)
		}
	}
}
