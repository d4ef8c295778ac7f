package window

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
)

// Kind is the type of a Value taken from a change record.
type Kind uint8

const (
	KindNull Kind = iota
	KindBool
	KindLong    // Avro int and long (and their date/time logical types: the raw number)
	KindDouble  // Avro float and double
	KindDecimal // Avro decimal (bytes or fixed): exact
	KindString
	KindTime // Avro timestamp-millis/-micros (Value.I: microseconds since the epoch)
)

var kindNames = [...]string{"null", "boolean", "long", "double", "decimal", "string", "timestamp"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Value is one field value read from a change: a small tagged union, so aggregation needs no
// interface boxing per event.
type Value struct {
	Kind  Kind
	I     int64    // KindBool (0/1), KindLong, KindTime (µs)
	F     float64  // KindDouble
	R     *big.Rat // KindDecimal
	Scale int      // KindDecimal: the field's scale
	S     string   // KindString
}

// Null is the absent or SQL NULL value.
var Null = Value{}

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// Long returns a KindLong value.
func Long(n int64) Value { return Value{Kind: KindLong, I: n} }

// Double returns a KindDouble value.
func Double(f float64) Value { return Value{Kind: KindDouble, F: f} }

// Decimal returns an exact decimal value of the given scale.
func Decimal(r *big.Rat, scale int) Value { return Value{Kind: KindDecimal, R: r, Scale: scale} }

// String returns a KindString value.
func String(s string) Value { return Value{Kind: KindString, S: s} }

// TimeMicros returns a KindTime value.
func TimeMicros(us int64) Value { return Value{Kind: KindTime, I: us} }

// Compare orders two values of the same kind (NULL first). Values of different non-null kinds
// compare by kind, which never happens within one field of one schema version.
func Compare(a, b Value) int {
	if a.Kind != b.Kind {
		return cmpInt(int64(a.Kind), int64(b.Kind))
	}
	switch a.Kind {
	case KindNull:
		return 0
	case KindBool, KindLong, KindTime:
		return cmpInt(a.I, b.I)
	case KindDouble:
		switch {
		case a.F < b.F:
			return -1
		case a.F > b.F:
			return 1
		case a.F == b.F:
			return 0
		}
		// NaN sorts after everything, and equal to itself.
		return cmpInt(b2i(math.IsNaN(a.F)), b2i(math.IsNaN(b.F)))
	case KindDecimal:
		return a.R.Cmp(b.R)
	case KindString:
		switch {
		case a.S < b.S:
			return -1
		case a.S > b.S:
			return 1
		}
		return 0
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendKey appends a canonical, injective byte form of v: equal values (in the sense of
// Compare) give equal bytes, so it can key maps (groups, distinct sets).
func appendKey(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.Kind))
	switch v.Kind {
	case KindBool, KindLong, KindTime:
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.I))
	case KindDouble:
		f := v.F
		if f == 0 {
			f = 0 // -0 == 0
		}
		if math.IsNaN(f) {
			f = math.NaN()
		}
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case KindDecimal:
		s := v.R.RatString()
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	case KindString:
		dst = binary.AppendUvarint(dst, uint64(len(v.S)))
		dst = append(dst, v.S...)
	}
	return dst
}

// Text renders v for logs and error messages.
func (v Value) Text() string {
	switch v.Kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.I != 0)
	case KindLong:
		return strconv.FormatInt(v.I, 10)
	case KindTime:
		return time.UnixMicro(v.I).UTC().Format(time.RFC3339Nano)
	case KindDouble:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case KindDecimal:
		return v.R.FloatString(v.Scale)
	case KindString:
		return strconv.Quote(v.S)
	}
	return "?"
}
