package encode

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/sr"
)

// Avro binary primitives. Each appends to dst and returns the extended slice.

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63) // zigzag
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	dst = appendLong(dst, int64(len(b)))
	return append(dst, b...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendFloat(dst []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
}

func appendDouble(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// appendHeader writes the Confluent wire-format prefix.
func appendHeader(dst []byte, id int) []byte {
	dst, _ = (*sr.ConfluentHeader)(nil).AppendEncode(dst, id, nil) // fails only for a protobuf index
	return dst
}

// scratch is per-Record working memory for the hot path, reused across events.
type scratch struct {
	limbs []uint32       // little-endian base-2^32 magnitude of a large decimal
	mag   []byte         // big-endian two's complement bytes of a decimal
	text  []byte         // small formatted strings (source.sequence)
	row   []change.Value // a delete's before with unsent columns as null (Debezium modes)
}

// Decimal problems, reported by appendDecimal. The caller turns them into *Errors.
type decProblem uint8

const (
	decOK     decProblem = iota
	decSyntax            // not a decimal number
	decNaN               // NaN or ±Infinity
	decFrac              // more fractional digits than the scale
	decInt               // more integer digits than precision-scale
)

// maxExp bounds an exponent so that digit arithmetic cannot overflow; anything near it is
// out of range for every Avro decimal anyway.
const maxExp = 1 << 20

// appendDecimal writes s (sign, digits, optional point and fraction, optional exponent) as
// an Avro bytes decimal: the unscaled value at scale, big-endian two's complement, minimal
// length. The value must fit exactly: no rounding, no truncation.
func appendDecimal(dst []byte, s string, prec, scale int, sc *scratch) ([]byte, decProblem) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	switch rest := s[i:]; {
	case strings.EqualFold(rest, "nan"), strings.EqualFold(rest, "infinity"), strings.EqualFold(rest, "inf"):
		return dst, decNaN
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracEnd = i
	}
	if intEnd == intStart && fracEnd == fracStart {
		return dst, decSyntax
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			if exp < maxExp {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == start {
			return dst, decSyntax
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return dst, decSyntax
	}

	// The digit string D is s[intStart:intEnd] followed by s[fracStart:fracEnd]; the value
	// is D × 10^(exp-len(frac)). Find its significant digits [lz, tz].
	nInt, nFrac := intEnd-intStart, fracEnd-fracStart
	n := nInt + nFrac
	digit := func(k int) byte {
		if k < nInt {
			return s[intStart+k]
		}
		return s[fracStart+k-nInt]
	}
	lz := 0
	for lz < n && digit(lz) == '0' {
		lz++
	}
	if lz == n { // zero, whatever its scale or exponent
		return append(dst, 1<<1, 0), decOK // length 1, byte 0x00
	}
	tz := n - 1
	for digit(tz) == '0' {
		tz--
	}
	// value = digits[lz..tz] × 10^e
	e := exp - nFrac + (n - 1 - tz)
	shift := e + scale // unscaled = digits × 10^shift
	if shift < 0 {
		return dst, decFrac
	}
	sig := tz - lz + 1
	if sig+shift > prec {
		return dst, decInt
	}

	if sig+shift <= 18 { // fits an int64: no big arithmetic
		var u uint64
		for k := lz; k <= tz; k++ {
			u = u*10 + uint64(digit(k)-'0')
		}
		for range shift {
			u *= 10
		}
		v := int64(u)
		if neg {
			v = -v
		}
		return appendInt64Decimal(dst, v), decOK
	}

	limbs := sc.limbs[:0]
	var chunk uint32
	var mul uint32 = 1
	for k := lz; k <= tz; k++ {
		chunk = chunk*10 + uint32(digit(k)-'0')
		mul *= 10
		if mul == 1e9 {
			limbs = mulAdd(limbs, mul, chunk)
			chunk, mul = 0, 1
		}
	}
	for range shift {
		chunk *= 10
		mul *= 10
		if mul == 1e9 {
			limbs = mulAdd(limbs, mul, chunk)
			chunk, mul = 0, 1
		}
	}
	if mul > 1 {
		limbs = mulAdd(limbs, mul, chunk)
	}
	sc.limbs = limbs

	mag := sc.mag[:0]
	for j := len(limbs) - 1; j >= 0; j-- {
		mag = binary.BigEndian.AppendUint32(mag, limbs[j])
	}
	sc.mag = mag
	return appendMagnitude(dst, mag, neg), decOK
}

// mulAdd sets limbs = limbs*mul + add.
func mulAdd(limbs []uint32, mul, add uint32) []uint32 {
	carry := uint64(add)
	for j, l := range limbs {
		t := uint64(l)*uint64(mul) + carry
		limbs[j] = uint32(t)
		carry = t >> 32
	}
	if carry != 0 {
		limbs = append(limbs, uint32(carry))
	}
	return limbs
}

// appendInt64Decimal writes v as minimal big-endian two's complement Avro bytes.
func appendInt64Decimal(dst []byte, v int64) []byte {
	n := 8
	for n > 1 {
		// the top byte is redundant when it only repeats the next byte's sign bit
		top := byte(v >> (8*n - 8))
		next := byte(v >> (8*n - 16))
		if (top == 0 && next&0x80 == 0) || (top == 0xff && next&0x80 != 0) {
			n--
			continue
		}
		break
	}
	dst = appendLong(dst, int64(n))
	for k := n - 1; k >= 0; k-- {
		dst = append(dst, byte(v>>(8*k)))
	}
	return dst
}

// appendUint64Decimal writes v as a decimal(20,0): a positive two's complement integer.
func appendUint64Decimal(dst []byte, v uint64, sc *scratch) []byte {
	if v <= math.MaxInt64 {
		return appendInt64Decimal(dst, int64(v))
	}
	sc.mag = binary.BigEndian.AppendUint64(sc.mag[:0], v)
	return appendMagnitude(dst, sc.mag, false)
}

// appendMagnitude writes the magnitude mag (big-endian, unsigned, possibly with leading
// zero bytes; modified in place) negated when neg, as minimal two's complement Avro bytes.
func appendMagnitude(dst, mag []byte, neg bool) []byte {
	for len(mag) > 1 && mag[0] == 0 {
		mag = mag[1:]
	}
	var pad byte
	havePad := false
	if neg {
		// two's complement: invert and add one
		carry := true
		for j := len(mag) - 1; j >= 0; j-- {
			mag[j] = ^mag[j]
			if carry {
				mag[j]++
				carry = mag[j] == 0
			}
		}
		if mag[0]&0x80 == 0 {
			pad, havePad = 0xff, true
		}
	} else if mag[0]&0x80 != 0 {
		pad, havePad = 0, true
	}
	n := len(mag)
	if havePad {
		n++
	}
	dst = appendLong(dst, int64(n))
	if havePad {
		dst = append(dst, pad)
	}
	return append(dst, mag...)
}
