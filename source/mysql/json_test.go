package mysql

import (
	"encoding/json"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
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
