package snapshot

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// ErrValueMissing is returned by Eval when a column the condition needs has no value in the
// row (not sent by the database: an old row without full replica identity, an unchanged
// TOASTed value).
var ErrValueMissing = errors.New("the row does not carry the column's value")

// Eval evaluates the condition on a row with SQL's three-valued logic: a comparison with NULL
// is unknown, and a row matches only when the condition is true. col returns a column's kind
// and value (ok false: no such column). Text compares by bytes (the C collation).
func (c *Cond) Eval(col func(name string) (change.Kind, change.Value, bool)) (bool, error) {
	r, err := c.n.eval(col)
	return r == 1, err
}

// tri is a three-valued truth value: 1 true, 0 false, -1 unknown.
type tri int8

func (n *condNode) eval(col func(string) (change.Kind, change.Value, bool)) (tri, error) {
	switch n.op {
	case "or", "and":
		res := tri(1)
		if n.op == "or" {
			res = 0
		}
		for _, k := range n.kids {
			r, err := k.eval(col)
			if err != nil {
				return 0, err
			}
			if n.op == "or" {
				if r == 1 {
					return 1, nil
				}
				if r == -1 {
					res = -1
				}
			} else {
				if r == 0 {
					return 0, nil
				}
				if r == -1 {
					res = -1
				}
			}
		}
		return res, nil
	case "not":
		r, err := n.kids[0].eval(col)
		if r == -1 {
			return -1, err
		}
		return 1 - r, err
	}
	kind, v, ok := col(n.col)
	if !ok {
		return 0, fmt.Errorf("no column %s", n.col)
	}
	switch v.State {
	case change.Null:
		if n.op == "null" {
			return boolTri(!n.neg), nil
		}
		return -1, nil
	case change.Present:
	default:
		return 0, fmt.Errorf("column %s: %w", n.col, ErrValueMissing)
	}
	var r tri
	switch n.op {
	case "null":
		return boolTri(n.neg), nil
	case "cmp":
		c, err := compare(kind, v, n.lits[0])
		if err != nil || c == cmpUnknown {
			return -1, wrapCol(n.col, err)
		}
		switch n.cmp {
		case "=":
			r = boolTri(c == 0)
		case "<>":
			r = boolTri(c != 0)
		case "<":
			r = boolTri(c < 0)
		case "<=":
			r = boolTri(c <= 0)
		case ">":
			r = boolTri(c > 0)
		case ">=":
			r = boolTri(c >= 0)
		}
		return r, nil
	case "in":
		for _, l := range n.lits {
			c, err := compare(kind, v, l)
			if err != nil {
				return 0, wrapCol(n.col, err)
			}
			if c == 0 {
				return boolTri(!n.neg), nil
			}
		}
		return boolTri(n.neg), nil
	case "between":
		lo, err1 := compare(kind, v, n.lits[0])
		hi, err2 := compare(kind, v, n.lits[1])
		if err := errors.Join(err1, err2); err != nil {
			return 0, wrapCol(n.col, err)
		}
		if lo == cmpUnknown || hi == cmpUnknown {
			return -1, nil
		}
		return boolTri((lo >= 0 && hi <= 0) != n.neg), nil
	case "like":
		if !textKind(kind) {
			return 0, fmt.Errorf("column %s: LIKE applies to text, not %s", n.col, kind)
		}
		if n.like == nil {
			n.like = likeRE(n.lits[0].text)
		}
		return boolTri(n.like.MatchString(v.Str) != n.neg), nil
	}
	return 0, fmt.Errorf("unknown operator %s", n.op)
}

func wrapCol(col string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("column %s: %w", col, err)
}

func boolTri(b bool) tri {
	if b {
		return 1
	}
	return 0
}

const cmpUnknown = 2

func textKind(k change.Kind) bool {
	switch k {
	case change.KindString, change.KindEnum, change.KindUUID, change.KindJSON, change.KindTimeTZ, change.KindInterval:
		return true
	}
	return false
}

// compare orders a value against a literal: -1, 0, 1, or cmpUnknown (NaN).
func compare(kind change.Kind, v change.Value, l condLit) (int, error) {
	switch {
	case textKind(kind):
		if l.kind != 's' {
			return 0, fmt.Errorf("compare a %s column with a 'string'", kind)
		}
		return strings.Compare(v.Str, l.text), nil
	case kind == change.KindBool:
		if l.kind != 'b' {
			return 0, fmt.Errorf("compare a bool column with TRUE or FALSE")
		}
		want := int64(0)
		if l.text == "TRUE" {
			want = 1
		}
		return cmp64(v.Int, want), nil
	}
	var x big.Rat
	switch kind {
	case change.KindInt16, change.KindInt32, change.KindInt64:
		x.SetInt64(v.Int)
	case change.KindUint64:
		x.SetUint64(v.Uint)
	case change.KindFloat32, change.KindFloat64:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return cmpUnknown, nil
		}
		x.SetFloat64(v.Float)
	case change.KindDecimal:
		if _, ok := x.SetString(v.Str); !ok {
			return cmpUnknown, nil // NaN, ±Infinity
		}
	case change.KindDate, change.KindTimestamp, change.KindTimestampTZ, change.KindTime:
		if l.kind != 's' {
			return 0, fmt.Errorf("compare a %s column with a 'string' such as '2026-01-31' or '2026-01-31 12:00:00'", kind)
		}
		t, err := temporalLiteral(kind, l.text)
		if err != nil {
			return 0, err
		}
		return cmp64(v.Int, t), nil
	default:
		return 0, fmt.Errorf("cannot compare a %s column", kind)
	}
	if l.kind != 'n' {
		return 0, fmt.Errorf("compare a %s column with a number", kind)
	}
	var y big.Rat
	if _, ok := y.SetString(l.text); !ok {
		return 0, fmt.Errorf("%s is not a number", l.text)
	}
	return x.Cmp(&y), nil
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// temporalLiteral turns a literal into the value's encoding (days or microseconds).
func temporalLiteral(kind change.Kind, s string) (int64, error) {
	if kind == change.KindTime {
		for _, f := range []string{"15:04:05.999999", "15:04"} {
			if t, err := time.Parse(f, s); err == nil {
				return int64(t.Hour())*3600e6 + int64(t.Minute())*60e6 + int64(t.Second())*1e6 + int64(t.Nanosecond()/1000), nil
			}
		}
		return 0, fmt.Errorf("%q is not a time (15:04:05)", s)
	}
	for _, f := range []string{"2006-01-02", "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999Z07:00"} {
		t, err := time.Parse(f, s)
		if err != nil {
			continue
		}
		if kind == change.KindDate {
			if t.Hour()+t.Minute()+t.Second()+t.Nanosecond() != 0 {
				return 0, fmt.Errorf("%q is not a date (2006-01-02)", s)
			}
			return t.Unix() / 86400, nil
		}
		return t.UnixMicro(), nil
	}
	return 0, fmt.Errorf("%q is not a date or timestamp (2006-01-02, 2006-01-02 15:04:05, RFC 3339)", s)
}

// likeRE compiles a LIKE pattern (% any run, _ one character, no escape).
func likeRE(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)^")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
