package encode

import (
	"math/big"
	"regexp"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// decimalGrammar is what appendDecimal accepts; plainDecimal is the part of it with a
// short exponent, where math/big can serve as the oracle (it refuses huge exponents).
var (
	decimalGrammar = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	plainDecimal   = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$`)
)

// FuzzDecimal checks appendDecimal against math/big: whatever the input, no panic; a value
// it accepts decodes to exactly the input; a plain decimal that fits is accepted.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-12.50", "1e5", "NaN", "-Infinity", ".5", "5.", "+0.000",
		"123456789012345678901234567890.123", "1e-3", "--1", "", "1e", "9999999999999999999"} {
		f.Add(s, uint16(10), int16(2))
	}
	f.Fuzz(func(t *testing.T, s string, prec uint16, scale int16) {
		p := int(prec%120) + 1
		sc := int(scale) % (p + 1)
		if sc < 0 {
			sc = -sc
		}
		var scr scratch
		out, prob := appendDecimal(nil, s, p, sc, &scr)
		if !decimalGrammar.MatchString(s) {
			if prob == decOK {
				t.Fatalf("accepted %q, which is not a decimal number", s)
			}
			return
		}
		if !plainDecimal.MatchString(s) {
			return // a huge exponent: only "no panic" is checked
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("math/big rejects %q", s)
		}
		unscaled := new(big.Rat).Mul(want, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sc)), nil)))
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
		fits := unscaled.IsInt() && new(big.Int).Abs(unscaled.Num()).Cmp(limit) < 0
		if fits != (prob == decOK) {
			t.Fatalf("%q at (%d,%d): fits=%v but problem %d", s, p, sc, fits, prob)
		}
		if prob != decOK {
			return
		}
		n, used := readLongForTest(out)
		if int(n) != len(out)-used {
			t.Fatalf("%q: bad length prefix", s)
		}
		if got := fromTwos(out[used:]); got.Cmp(unscaled.Num()) != 0 {
			t.Fatalf("%q at (%d,%d): got unscaled %s, want %s", s, p, sc, got, unscaled.Num())
		}
	})
}

// FuzzEncodeString encodes arbitrary text through every string-carrying kind and a
// decimal column: no panic, and what succeeds decodes back (hamba/avro as the oracle).
func FuzzEncodeString(f *testing.F) {
	f.Add("hello", []byte{0, 1})
	f.Add("ünï\x00\xff", []byte{})
	f.Add("-1.5", []byte(nil))
	tbl := &change.Table{Schema: "public", Name: "fuzz", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "s", Kind: change.KindString},
		{Name: "j", Kind: change.KindJSON, Nullable: true},
		{Name: "b", Kind: change.KindBytes},
		{Name: "d", Kind: change.KindDecimal, Precision: 20, Scale: 4, Nullable: true},
		{Name: "n", Kind: change.KindDecimal},
		{Name: "a", Kind: change.KindArray, Elem: change.KindString},
	}}
	reg := newFakeRegistry()
	enc := newTestEncoder(f, reg)
	f.Fuzz(func(t *testing.T, s string, b []byte) {
		var rec Record
		row := []change.Value{{Str: s}, {Str: s}, {Bytes: b}, {Str: s}, {Str: s},
			{Arr: []change.Value{{Str: s}, change.NullValue}}}
		err := enc.Encode(ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: row}, &rec)
		if err != nil {
			if c := ClassOf(err); c != ClassValueNotRepresentable && c != ClassUndecodable {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		a := decodeFramed(t, reg, rec.Value)["after"].(map[string]any)
		if a["s"] != s || a["j"] != s || a["n"] != s || string(a["b"].([]byte)) != string(b) {
			t.Fatalf("round trip of %q lost data: %v", s, a)
		}
		if k := decodeFramed(t, reg, rec.Key); k["s"] != s {
			t.Fatalf("key round trip of %q: %v", s, k)
		}
	})
}
