package shape

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// A mask rewrites a kept column's values:
//   - hash: HMAC-SHA-256 of the value under the pipeline's mask key, as lowercase hex (a
//     string column): equal values give equal hashes (joinable), the value cannot be
//     recovered without the key. NULL stays NULL.
//   - redact: a fixed value of the column's type (strings "***", numbers 0, ...). NULL stays
//     NULL.
//   - truncate(n): the first n characters of a string column.
//
// The column's cdcd.source_type in the Avro schema says which mask shaped it.
type mask struct {
	kind  byte // 'h' hash, 'r' redact, 't' truncate
	n     int
	key   []byte
	elem  change.Kind
	ctype change.Kind // the source column's kind
}

// ParseMask checks a mask spec ("hash", "redact", "truncate(n)").
func ParseMask(spec string) (kind byte, n int, err error) {
	switch {
	case spec == "hash":
		return 'h', 0, nil
	case spec == "redact":
		return 'r', 0, nil
	case strings.HasPrefix(spec, "truncate(") && strings.HasSuffix(spec, ")"):
		n, err := strconv.Atoi(spec[len("truncate(") : len(spec)-1])
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("%q: truncate takes a positive length, e.g. truncate(4)", spec)
		}
		return 't', n, nil
	}
	return 0, 0, fmt.Errorf("unknown mask %q (use hash, redact or truncate(n))", spec)
}

// planMask returns the mask of a column and the column as masked.
func planMask(c change.Column, spec string, key []byte) (mask, change.Column, error) {
	kind, n, err := ParseMask(spec)
	if err != nil {
		return mask{}, c, fmt.Errorf("column %s: %v", c.Name, err)
	}
	m := mask{kind: kind, n: n, key: key, elem: c.Elem, ctype: c.Kind}
	orig := c.SourceType
	if orig == "" {
		orig = c.Kind.String()
	}
	switch kind {
	case 'h':
		if len(key) == 0 {
			return m, c, fmt.Errorf("column %s: hash needs the pipeline's mask_key", c.Name)
		}
		c.Kind, c.Elem, c.Precision, c.Scale = change.KindString, 0, 0, 0
		c.SourceType = orig + " masked: hmac-sha256 hex"
	case 'r':
		if c.Kind == change.KindEnum {
			return m, c, fmt.Errorf("column %s: an enum has no neutral value to redact to; use hash", c.Name)
		}
		c.SourceType = orig + " masked: redacted"
	case 't':
		if c.Kind != change.KindString {
			return m, c, fmt.Errorf("column %s: truncate applies to text columns, not %s; use hash or redact", c.Name, c.Kind)
		}
		c.SourceType = orig + fmt.Sprintf(" masked: truncated to %d characters", n)
	}
	return m, c, nil
}

func applyMasks(vals []change.Value, masks []mask) {
	for i := range vals {
		if i < len(masks) && masks[i].kind != 0 {
			masks[i].apply(&vals[i])
		}
	}
}

func (m mask) apply(v *change.Value) {
	switch v.State {
	case change.Present, change.Undecodable:
	default:
		return // NULL, unchanged TOAST, absent: no data to mask
	}
	switch m.kind {
	case 'h':
		h := hmac.New(sha256.New, m.key)
		if v.State == change.Undecodable {
			h.Write([]byte(v.Str))
		} else {
			writeCanonical(h, m.ctype, v)
		}
		*v = change.Value{Str: hex.EncodeToString(h.Sum(nil))}
	case 'r':
		*v = redacted(m.ctype)
	case 't':
		if v.State == change.Undecodable {
			*v = change.Value{Str: ""}
			return
		}
		if r := []rune(v.Str); len(r) > m.n {
			*v = change.Value{Str: string(r[:m.n])}
		}
	}
}

type writer interface{ Write([]byte) (int, error) }

// writeCanonical writes the value's canonical form: text kinds as their UTF-8 text (so the
// hash of 'alice@example.com' is HMAC-SHA-256(key, "alice@example.com")), integers in
// decimal, floats in shortest decimal, bytes as themselves, arrays length-prefixed.
func writeCanonical(w writer, k change.Kind, v *change.Value) {
	switch k {
	case change.KindBool, change.KindInt16, change.KindInt32, change.KindInt64, change.KindDate,
		change.KindTime, change.KindDuration, change.KindTimestamp, change.KindTimestampTZ:
		_, _ = w.Write([]byte(strconv.FormatInt(v.Int, 10)))
	case change.KindUint64:
		_, _ = w.Write([]byte(strconv.FormatUint(v.Uint, 10)))
	case change.KindFloat32, change.KindFloat64:
		if math.IsNaN(v.Float) {
			_, _ = w.Write([]byte("NaN"))
		} else {
			_, _ = w.Write([]byte(strconv.FormatFloat(v.Float, 'g', -1, 64)))
		}
	case change.KindBytes:
		_, _ = w.Write(v.Bytes)
	case change.KindArray:
		for _, e := range v.Arr {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(e.State))
			_, _ = w.Write(n[:])
			writeCanonical(w, change.KindString, &change.Value{Str: fmt.Sprint(e.Int, e.Uint, e.Float, e.Str, e.Bytes)})
		}
	default:
		_, _ = w.Write([]byte(v.Str))
	}
}

// redacted is the fixed value of a kind.
func redacted(k change.Kind) change.Value {
	switch k {
	case change.KindString:
		return change.Value{Str: "***"}
	case change.KindDecimal:
		return change.Value{Str: "0"}
	case change.KindTimeTZ:
		return change.Value{Str: "00:00:00+00:00"}
	case change.KindInterval:
		return change.Value{Str: "PT0S"}
	case change.KindUUID:
		return change.Value{Str: "00000000-0000-0000-0000-000000000000"}
	case change.KindJSON:
		return change.Value{Str: "null"}
	case change.KindBytes:
		return change.Value{Bytes: []byte{}}
	case change.KindArray:
		return change.Value{Arr: []change.Value{}}
	}
	return change.Value{} // numbers 0, false, the epoch
}
