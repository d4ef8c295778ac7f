package window

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// acc is the running state of one aggregate in one window.
//
// In events mode values are only added, and min/max/first/last keep just the best value. In
// table mode a value can be retracted, so those functions (and count_distinct in both modes)
// keep a multiset of the values they saw; it is bounded by the window's rows and freed when
// the window is purged.
type acc struct {
	n     int64 // rows (count) or non-null inputs (the others)
	sumI  int64
	sumF  float64
	sumR  *big.Rat
	scale int
	kind  Kind // of the inputs seen (sum, min, max, first, last)

	best     Value // events mode min/max/first/last
	bestT    int64 // first/last: event time (µs) of best
	bestSeq  uint64
	hasBest  bool
	multiset map[string]*mEntry
}

type mEntry struct {
	v   Value
	t   int64
	seq uint64
	c   int64
}

// input is one value entering (sign +1) or leaving (sign -1) an aggregate.
type input struct {
	v    Value
	t    int64  // event time, µs
	seq  uint64 // arrival order within the partition (first/last ties)
	row  uint64 // the input row (Rec.Row)
	sign int64
}

// add applies in to the accumulator of fn. retractable is true in table mode.
func (a *acc) add(fn Fn, in input, retractable bool, key *[]byte) error {
	if fn == FnCount {
		a.n += in.sign
		return nil
	}
	if in.v.IsNull() {
		return nil // SQL semantics: aggregates other than count skip NULLs
	}
	switch fn {
	case FnSum, FnAvg:
		return a.addSum(in.v, in.sign)
	case FnCountDistinct:
		a.addMulti(in, key, true)
		return nil
	case FnMin, FnMax, FnFirst, FnLast:
		if retractable {
			a.addMulti(in, key, fn == FnMin || fn == FnMax)
			return nil
		}
		a.n++
		if !a.hasBest || better(fn, in.v, in.t, in.seq, a.best, a.bestT, a.bestSeq) {
			a.best, a.bestT, a.bestSeq, a.hasBest = in.v, in.t, in.seq, true
		}
		return nil
	}
	return fmt.Errorf("unknown aggregate %q", fn)
}

func (a *acc) addSum(v Value, sign int64) error {
	if a.kind != KindNull && a.kind != v.Kind {
		return fmt.Errorf("a sum over %s values got a %s value: the field changed type; start a new job (new output topic) for the new type", a.kind, v.Kind)
	}
	a.kind = v.Kind
	a.n += sign
	switch v.Kind {
	case KindLong:
		s := a.sumI + sign*v.I
		if (sign*v.I > 0 && s < a.sumI) || (sign*v.I < 0 && s > a.sumI) {
			return fmt.Errorf("the sum overflows a 64-bit integer; sum a decimal or double field instead")
		}
		a.sumI = s
	case KindDouble:
		a.sumF += float64(sign) * v.F
	case KindDecimal:
		if a.sumR == nil {
			a.sumR = new(big.Rat)
		}
		if sign > 0 {
			a.sumR.Add(a.sumR, v.R)
		} else {
			a.sumR.Sub(a.sumR, v.R)
		}
		a.scale = max(a.scale, v.Scale)
	default:
		return fmt.Errorf("cannot sum %s values", v.Kind)
	}
	return nil
}

// addMulti counts in's value in the multiset; byValue keys entries by value alone
// (count_distinct, min, max), otherwise by value, event time and row (first, last: each row
// is an entry of its own, with the arrival of its current image, so ties between rows of one
// time go by that arrival and a retraction removes its own row).
func (a *acc) addMulti(in input, scratch *[]byte, byValue bool) {
	key := appendKey((*scratch)[:0], in.v)
	if !byValue {
		key = binary.BigEndian.AppendUint64(key, uint64(in.t))
		if in.row != 0 {
			key = binary.BigEndian.AppendUint64(key, in.row)
		}
	}
	*scratch = key
	if a.multiset == nil {
		a.multiset = map[string]*mEntry{}
	}
	e := a.multiset[string(key)]
	if e == nil {
		if in.sign < 0 {
			return // retracting what was never counted (it arrived before the job started)
		}
		e = &mEntry{v: in.v, t: in.t, seq: in.seq}
		a.multiset[string(key)] = e
	}
	e.c += in.sign
	if e.c <= 0 {
		delete(a.multiset, string(key))
	}
}

// better reports whether (v, t, seq) beats the current best for fn.
func better(fn Fn, v Value, t int64, seq uint64, best Value, bestT int64, bestSeq uint64) bool {
	switch fn {
	case FnMin:
		return Compare(v, best) < 0
	case FnMax:
		return Compare(v, best) > 0
	case FnFirst:
		return t < bestT || t == bestT && seq < bestSeq
	case FnLast:
		return t > bestT || t == bestT && seq > bestSeq
	}
	return false
}

// result is the aggregate's current value.
func (a *acc) result(fn Fn, retractable bool) Value {
	switch fn {
	case FnCount:
		return Long(a.n)
	case FnCountDistinct:
		return Long(int64(len(a.multiset)))
	case FnSum:
		if a.n == 0 {
			return Null
		}
		switch a.kind {
		case KindLong:
			return Long(a.sumI)
		case KindDouble:
			return Double(a.sumF)
		case KindDecimal:
			return Decimal(new(big.Rat).Set(a.sumR), a.scale)
		}
		return Null
	case FnAvg:
		if a.n == 0 {
			return Null
		}
		switch a.kind {
		case KindLong:
			return Double(float64(a.sumI) / float64(a.n))
		case KindDouble:
			return Double(a.sumF / float64(a.n))
		case KindDecimal:
			f, _ := new(big.Rat).Quo(a.sumR, new(big.Rat).SetInt64(a.n)).Float64()
			return Double(f)
		}
		return Double(math.NaN())
	case FnMin, FnMax, FnFirst, FnLast:
		if !retractable {
			if !a.hasBest {
				return Null
			}
			return a.best
		}
		var best *mEntry
		for _, e := range a.multiset {
			if best == nil || better(fn, e.v, e.t, e.seq, best.v, best.t, best.seq) ||
				// deterministic among equal candidates (map order is random)
				!better(fn, best.v, best.t, best.seq, e.v, e.t, e.seq) && tieBreak(e, best) {
				best = e
			}
		}
		if best == nil {
			return Null
		}
		return best.v
	}
	return Null
}

func tieBreak(a, b *mEntry) bool {
	if c := Compare(a.v, b.v); c != 0 {
		return c < 0
	}
	return a.t < b.t
}

// merge folds o (a session being merged) into a, as if a had seen o's inputs too.
func (a *acc) merge(fn Fn, o *acc) error {
	switch fn {
	case FnCount:
		a.n += o.n
	case FnSum, FnAvg:
		if o.n == 0 {
			return nil
		}
		if a.n == 0 {
			*a = *o
			if o.sumR != nil {
				a.sumR = new(big.Rat).Set(o.sumR)
			}
			return nil
		}
		if a.kind != o.kind {
			return fmt.Errorf("a sum over %s values got %s values: the field changed type", a.kind, o.kind)
		}
		a.n += o.n
		a.sumI += o.sumI // (merging sessions cannot overflow what one sum would not)
		a.sumF += o.sumF
		if o.sumR != nil {
			if a.sumR == nil {
				a.sumR = new(big.Rat)
			}
			a.sumR.Add(a.sumR, o.sumR)
		}
		a.scale = max(a.scale, o.scale)
	case FnCountDistinct:
		for k, e := range o.multiset {
			if a.multiset == nil {
				a.multiset = map[string]*mEntry{}
			}
			if x := a.multiset[k]; x != nil {
				x.c += e.c
			} else {
				a.multiset[k] = e
			}
		}
	case FnMin, FnMax, FnFirst, FnLast:
		a.n += o.n
		if o.hasBest && (!a.hasBest || better(fn, o.best, o.bestT, o.bestSeq, a.best, a.bestT, a.bestSeq)) {
			a.best, a.bestT, a.bestSeq, a.hasBest = o.best, o.bestT, o.bestSeq, true
		}
	}
	return nil
}
