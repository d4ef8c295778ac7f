package postgres

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

func TestDecodeArrays(t *testing.T) {
	b := func(oid uint32) *typeInfo { return mustBuiltin(t, oid, -1) }
	ints, texts, nums, byteas, tstzs, boxes, jsons, f8s, bools := b(1007), b(1009), b(1231), b(1001), b(1185), b(1020), b(199), b(1022), b(1000)
	null := change.NullValue
	bad := errMalformedValue
	runDecodeCases(t, []decodeCase{
		{"ints", ints, "{1,2,3}", arr(ival(1), ival(2), ival(3)), nil},
		{"empty", ints, "{}", arr(), nil},
		{"empty with space", ints, "{ }", arr(), nil},
		{"single", ints, "{-7}", arr(ival(-7)), nil},
		{"null element", ints, "{1,NULL,3}", arr(ival(1), null, ival(3)), nil},
		{"lowercase null", ints, "{null}", arr(null), nil},
		{"white space", ints, "{ 1 , 2 }", arr(ival(1), ival(2)), nil},
		{"bounds mismatch", ints, "[0:2]={1,2}", change.Value{}, bad},
		{"bad bounds", ints, "[0-2]={1,2}", change.Value{}, bad},
		{"unterminated", ints, "{1,2", change.Value{}, bad},
		{"empty element", ints, "{1,,2}", change.Value{}, bad},
		{"trailing delimiter", ints, "{1,}", change.Value{}, bad},
		{"trailing text", ints, "{1,2}x", change.Value{}, bad},
		{"no braces", ints, "1,2", change.Value{}, bad},
		{"empty text", ints, "", change.Value{}, bad},
		{"bad element", ints, "{a}", change.Value{}, bad},
		{"element out of range", ints, "{2147483648}", change.Value{}, bad},

		{"texts quoted", texts, `{a,NULL,"NULL","c,d","e\"f","g\\h",""," sp ","null","é{}"}`,
			arr(str("a"), null, str("NULL"), str("c,d"), str(`e"f`), str(`g\h`), str(""), str(" sp "), str("null"), str("é{}")), nil},
		{"texts unicode", texts, "{日本,😀}", arr(str("日本"), str("😀")), nil},
		{"texts unquoted escape", texts, `{a\,b,c\ }`, arr(str("a,b"), str("c ")), nil},
		{"texts unterminated quote", texts, `{"abc}`, change.Value{}, bad},
		{"texts quote inside unquoted", texts, `{ab"c"}`, change.Value{}, bad},
		{"texts text after quote", texts, `{"ab"c}`, change.Value{}, bad},

		{"numerics", nums, "{1.5,NaN,-2,Infinity}", arr(str("1.5"), str("NaN"), str("-2"), str("Infinity")), nil},
		{"numerics null", nums, "{NULL,1}", arr(null, str("1")), nil},
		{"numerics bad", nums, "{1.5,abc}", change.Value{}, bad},
		{"byteas", byteas, `{"\\x0102",NULL,"\\x"}`, arr(change.Value{Bytes: []byte{1, 2}}, null, change.Value{Bytes: []byte{}}), nil},
		{"timestamptzs", tstzs, `{"2024-01-01 00:00:00+00",infinity,NULL}`,
			arr(ival(micros(2024, 1, 1, 0, 0, 0, 0, time.UTC)), ival(change.TimestampInfinity), null), nil},
		{"boxes use semicolons", boxes, "{(1,1),(0,0);(2,2),(1,1)}", arr(str("(1,1),(0,0)"), str("(2,2),(1,1)")), nil},
		{"jsons", jsons, `{"{\"a\": \"b\"}","[1,2]"}`, arr(str(`{"a": "b"}`), str("[1,2]")), nil},
		{"floats", f8s, "{1.5,NaN,-Infinity}", arr(flt(1.5), flt(math.NaN()), flt(math.Inf(-1))), nil},
		{"bools", bools, "{t,f,NULL}", arr(ival(1), ival(0), null), nil},
		{"enums", enumArrayInfo, `{sad,happy,NULL,"with space"}`, arr(str("sad"), str("happy"), null, str("with space")), nil},
	})
}

// TestDecodeArrayBounds: an array whose lower bound is not 1, or with more than one dimension,
// used to be published like '{7,8,9}' (the bounds dropped, or refused as an unsupported
// type). Renumbering the elements changes the value, so such a value is refused as not
// representable, with the bounds and the fix in the message. Texts are array_out's.
func TestDecodeArrayBounds(t *testing.T) {
	ints, texts := mustBuiltin(t, 1007, -1), mustBuiltin(t, 1009, -1)
	for _, tc := range []struct {
		t          *typeInfo
		text, want string // want: a part of the message
	}{
		{ints, "[0:2]={7,8,9}", "[0:2]"},
		{ints, "[-1:1]={1,2,3}", "[-1:1]"},
		{ints, "[-2147483648:-2147483646]={1,2,3}", "[-2147483648:-2147483646]"},
		{ints, "[2:2]={NULL}", "[2:2]"},
		{texts, `[5:5]={"a b"}`, "[5:5]"},
		{ints, "{{1,2},{3,4}}", "2 dimensions"},
		{ints, "{{{1}},{{2}}}", "3 dimensions"},
		{ints, "[0:1][5:6]={{7,7},{7,7}}", "[0:1][5:6]"},
		{ints, "[1:2][1:1]={{1},{2}}", "[1:2][1:1]"},
	} {
		v, err := decodeColumn("a", tc.t, []byte(tc.text))
		if !errors.Is(err, errNotRepresentable) {
			t.Errorf("%s %q = %+v, %v; want a not-representable error", tc.t.SourceType, tc.text, v, err)
			continue
		}
		var nr interface{ NotRepresentable() bool }
		if !errors.As(err, &nr) || !nr.NotRepresentable() {
			t.Errorf("%q: %v does not say NotRepresentable", tc.text, err)
		}
		for _, part := range []string{`column "a"`, tc.t.SourceType, tc.want, "fix:"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%q: error %q does not mention %q", tc.text, err, part)
			}
		}
	}
	// Lower bound 1, spelled out or not, is what an Avro array means.
	runDecodeCases(t, []decodeCase{
		{"default bound", ints, "{7,8,9}", arr(ival(7), ival(8), ival(9)), nil},
		{"explicit bound 1", ints, "[1:3]={7,8,9}", arr(ival(7), ival(8), ival(9)), nil},
		{"empty explicit bound", ints, "[1:0]={}", arr(), nil},
		{"bounds mismatch", ints, "[0:3]={7,8,9}", change.Value{}, errMalformedValue},
		{"bounds mismatch 2-D", ints, "[1:2][1:3]={{1,2},{3,4}}", change.Value{}, errMalformedValue},
		{"unbalanced 2-D", ints, "{{1,2},{3}", change.Value{}, errMalformedValue},
	})
}

func TestDecodeHugeArray(t *testing.T) {
	elem := strings.Repeat(`a"b\c,`, 1<<20/6)
	text := `{"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(elem) + `",NULL,x}`
	got, err := decodeText(mustBuiltin(t, 1009, -1), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Arr) != 3 || got.Arr[0].Str != elem || !got.Arr[1].IsNull() || got.Arr[2].Str != "x" {
		t.Fatalf("huge array decoded wrong: %d elements", len(got.Arr))
	}
}

// quoteArray writes elements as array_out would; nil is NULL.
func quoteArray(elems []*string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if e == nil {
			b.WriteString("NULL")
			continue
		}
		s := *e
		if s == "" || strings.EqualFold(s, "NULL") || strings.ContainsAny(s, "\"\\{},  \t\n\r\v\f") {
			b.WriteByte('"')
			for i := 0; i < len(s); i++ {
				if s[i] == '"' || s[i] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(s[i])
			}
			b.WriteByte('"')
			continue
		}
		b.WriteString(s)
	}
	b.WriteByte('}')
	return b.String()
}

// FuzzArrayRoundTrip quotes arbitrary elements as array_out does and parses them back.
func FuzzArrayRoundTrip(f *testing.F) {
	f.Add("a\x00NULL\x00\x01\x00c,d\x00e\"f\x00g\\h\x00\x00 sp ")
	f.Add("{}\x00{\x00}\x00null\x00é")
	f.Add("")
	texts := mustBuiltin(f, 1009, -1)
	f.Fuzz(func(t *testing.T, data string) {
		var elems []*string
		if data != "" {
			for _, s := range strings.Split(data, "\x00") {
				if s == "\x01" {
					elems = append(elems, nil)
				} else {
					elems = append(elems, &s)
				}
			}
		}
		text := quoteArray(elems)
		got, err := decodeText(texts, []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got.Arr) != len(elems) {
			t.Fatalf("%q: %d elements; want %d", text, len(got.Arr), len(elems))
		}
		for i, e := range elems {
			if (e == nil) != got.Arr[i].IsNull() || (e != nil && got.Arr[i].Str != *e) {
				t.Fatalf("%q: element %d = %+v; want %v", text, i, got.Arr[i], e)
			}
		}
	})
}
