package postgres

// Scalar decoders: booleans, integers, floats, numerics, bytea and uuids.

import (
	"strconv"

	"github.com/cdcd-dev/cdcd/change"
)

func decodeBool(t *typeInfo, text []byte) (change.Value, error) {
	if len(text) == 1 {
		switch text[0] {
		case 't':
			return change.Value{Int: 1}, nil
		case 'f':
			return change.Value{}, nil
		}
	}
	return change.Value{}, malformed(t, text, `want "t" or "f"`)
}

func decodeInt(t *typeInfo, text []byte) (change.Value, error) {
	bits := 64
	switch t.Kind {
	case change.KindInt16:
		bits = 16
	case change.KindInt32:
		bits = 32
	}
	n, ok := parseInt(text, bits)
	if !ok {
		return change.Value{}, malformed(t, text, "not an integer in range")
	}
	return change.Value{Int: n}, nil
}

func decodeUint(t *typeInfo, text []byte) (change.Value, error) {
	n, err := strconv.ParseUint(string(text), 10, 64)
	if err != nil {
		return change.Value{}, malformed(t, text, "not an unsigned integer in range")
	}
	return change.Value{Uint: n}, nil
}

func decodeFloat(t *typeInfo, text []byte) (change.Value, error) {
	bits := 64
	if t.Kind == change.KindFloat32 {
		bits = 32
	}
	// ParseFloat reads PG's "NaN", "Infinity" and "-Infinity" too.
	f, err := strconv.ParseFloat(string(text), bits)
	if err != nil {
		return change.Value{}, malformed(t, text, "not a float")
	}
	return change.Value{Float: f}, nil
}

// decodeNumeric keeps numeric_out's text, which is already canonical for the column's scale;
// NaN and (PG 14+) ±Infinity pass through for the encoder to judge against the schema.
func decodeNumeric(t *typeInfo, text []byte) (change.Value, error) {
	if !validNumeric(text) {
		return change.Value{}, malformed(t, text, "not a numeric")
	}
	return change.Value{Str: string(text)}, nil
}

func isDigit(c byte) bool { return c-'0' < 10 }

// parseInt parses a decimal integer that fits in a signed integer of the given bits.
func parseInt(b []byte, bits int) (int64, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	if i == len(b) {
		return 0, false
	}
	if len(b)-i > 19 { // 19 digits cannot overflow a uint64; int64 needs at most 19
		return 0, false
	}
	var n uint64
	for _, c := range b[i:] {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	if neg {
		if n > limit {
			return 0, false
		}
		return int64(-n), true
	}
	if n >= limit {
		return 0, false
	}
	return int64(n), true
}

// validNumeric accepts numeric_out's text: -?digits(.digits)?, NaN, Infinity, -Infinity.
func validNumeric(b []byte) bool {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i == start {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start = i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeBytea reads bytea_output=hex (`\x0102`) and, for robustness, the escape format.
func decodeBytea(t *typeInfo, text []byte) (change.Value, error) {
	if len(text) >= 2 && text[0] == '\\' && text[1] == 'x' {
		h := text[2:]
		if len(h)%2 != 0 {
			return change.Value{}, malformed(t, text, "odd number of hex digits")
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, lo := unhex[h[2*i]], unhex[h[2*i+1]]
			if hi > 15 || lo > 15 {
				return change.Value{}, malformed(t, text, "invalid hex digit")
			}
			out[i] = hi<<4 | lo
		}
		return change.Value{Bytes: out}, nil
	}
	// Escape format: `\\` is a backslash, `\ooo` an octal byte, anything else itself. A
	// backslash is always escaped, so escape text never starts with `\x`.
	n := 0
	for i := 0; i < len(text); i++ {
		if text[i] == '\\' {
			switch {
			case i+1 < len(text) && text[i+1] == '\\':
				i++
			case i+3 < len(text) && isOctal3(text[i+1:i+4]):
				i += 3
			default:
				return change.Value{}, malformed(t, text, "invalid escape (bytea_output must be hex or escape)")
			}
		}
		n++
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\\' {
			if text[i+1] == '\\' {
				i++
			} else {
				c = (text[i+1]-'0')<<6 | (text[i+2]-'0')<<3 | (text[i+3] - '0')
				i += 3
			}
		}
		out = append(out, c)
	}
	return change.Value{Bytes: out}, nil
}

func isOctal3(b []byte) bool {
	return b[0] >= '0' && b[0] <= '3' && b[1] >= '0' && b[1] <= '7' && b[2] >= '0' && b[2] <= '7'
}

func decodeUUID(t *typeInfo, text []byte) (change.Value, error) {
	if len(text) != 36 {
		return change.Value{}, malformed(t, text, "not a uuid")
	}
	upper := false
	for i, c := range text {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return change.Value{}, malformed(t, text, "not a uuid")
			}
			continue
		}
		switch {
		case isDigit(c) || (c >= 'a' && c <= 'f'):
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return change.Value{}, malformed(t, text, "not a uuid")
		}
	}
	if !upper { // uuid_out prints lowercase
		return change.Value{Str: string(text)}, nil
	}
	var buf [36]byte
	for i, c := range text {
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return change.Value{Str: string(buf[:])}, nil
}
