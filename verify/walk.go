package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
)

// Values are compared as their Avro encodings under the writer's schema, column by column:
// the bytes of a column's value (a nullable column's union branch index left out, so a column
// that became nullable compares by value). Decoding every record into Go values took most of
// a run's time; walking the bytes gives the same answer for every column whose type did not
// change, and a column whose Avro type changed compares as different, which it is as a
// consumer sees it.

var errShort = errors.New("avro: record is cut short")

// envPlan is what walking one writer schema of an envelope needs.
type envPlan struct {
	fields []avro.Schema // envelope fields in order
	names  []string
	after  *avro.RecordSchema
	cols   []uint16 // after's fields -> the run's column indexes
	byName map[string]uint16
	source *avro.RecordSchema
}

type planCache struct {
	mu    sync.Mutex
	plans map[avro.Schema]*envPlan
}

func (c *planCache) plan(s avro.Schema, nameIdx func(string) uint16) (*envPlan, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.plans[s]; ok {
		return p, nil
	}
	rs, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("the value schema is %s, not a record", s.Type())
	}
	p := &envPlan{}
	for _, f := range rs.Fields() {
		p.fields = append(p.fields, f.Type())
		p.names = append(p.names, f.Name())
		switch f.Name() {
		case "after":
			if r, ok := nonNull(f.Type()).(*avro.RecordSchema); ok {
				p.after = r
				p.byName = map[string]uint16{}
				for _, af := range r.Fields() {
					i := nameIdx(af.Name())
					p.cols = append(p.cols, i)
					p.byName[af.Name()] = i
				}
			}
		case "source":
			p.source, _ = deref(f.Type()).(*avro.RecordSchema)
		}
	}
	if p.after == nil {
		return nil, errors.New("the value schema has no after record: not a cdcd or Debezium envelope")
	}
	if c.plans == nil {
		c.plans = map[avro.Schema]*envPlan{}
	}
	c.plans[s] = p
	return p, nil
}

func deref(s avro.Schema) avro.Schema {
	for {
		r, ok := s.(*avro.RefSchema)
		if !ok {
			return s
		}
		s = r.Schema()
	}
}

// nonNull is the non-null branch of a ["null", X] union, or s itself.
func nonNull(s avro.Schema) avro.Schema {
	s = deref(s)
	if u, ok := s.(*avro.UnionSchema); ok {
		for _, t := range u.Types() {
			if deref(t).Type() != avro.Null {
				return deref(t)
			}
		}
	}
	return s
}

// walked is what verify reads of one envelope.
type walked struct {
	op        string
	hasAfter  bool
	lsn       uint64
	unchanged []string
}

// nullHash stands for SQL NULL (no value bytes).
const nullHash = 0x9e3779b97f4a7c15

// walkEnvelope reads the envelope in b under plan p, appending a column per after field to
// cols (in the plan's column order).
func (h *hasher) walkEnvelope(p *envPlan, b []byte, cols []col) (walked, []col, error) {
	var w walked
	pos := 0
	for i, fs := range p.fields {
		switch p.names[i] {
		case "after":
			idx, n, err := readLong(b[pos:])
			if err != nil {
				return w, cols, err
			}
			pos += n
			if br := deref(fs.(*avro.UnionSchema).Types()[idx]); br.Type() == avro.Null {
				continue
			}
			w.hasAfter = true
			for j, f := range p.after.Fields() {
				start := pos
				t := deref(f.Type())
				c := col{idx: p.cols[j]}
				if u, ok := t.(*avro.UnionSchema); ok {
					bi, n, err := readLong(b[pos:])
					if err != nil {
						return w, cols, err
					}
					if bi < 0 || int(bi) >= len(u.Types()) {
						return w, cols, fmt.Errorf("avro: union index %d out of range", bi)
					}
					pos += n
					start = pos
					t = deref(u.Types()[bi])
				}
				n, err := skip(t, b[pos:])
				if err != nil {
					return w, cols, err
				}
				pos += n
				if t.Type() == avro.Null {
					c.hash = nullHash
				} else {
					c.hash = h.bytes(b[start:pos])
				}
				cols = append(cols, c)
			}
			continue
		case "op":
			l, n, err := readLong(b[pos:])
			if err != nil || l < 0 || pos+n+int(l) > len(b) {
				return w, cols, errShort
			}
			w.op = string(b[pos+n : pos+n+int(l)])
			pos += n + int(l)
			continue
		case "source":
			if p.source != nil {
				n, lsn, err := walkSource(p.source, b[pos:])
				if err != nil {
					return w, cols, err
				}
				w.lsn = lsn
				pos += n
				continue
			}
		case "unchanged_toast":
			start := pos
			n, err := skip(fs, b[pos:])
			if err != nil {
				return w, cols, err
			}
			pos += n
			if u, ok := deref(fs).(*avro.UnionSchema); ok {
				idx, k, _ := readLong(b[start:])
				if deref(u.Types()[idx]).Type() == avro.Array {
					w.unchanged = readStrings(b[start+k : pos])
				}
			}
			continue
		}
		n, err := skip(fs, b[pos:])
		if err != nil {
			return w, cols, err
		}
		pos += n
	}
	return w, cols, nil
}

// walkSource reads the source block, returning its length and the record's source position:
// the tx of source.sequence (cdcd's position: the commit LSN for PostgreSQL, the binlog
// offset of the transaction for MySQL), else source.lsn, else 0.
func walkSource(r *avro.RecordSchema, b []byte) (int, uint64, error) {
	pos := 0
	var lsn, seq uint64
	for _, f := range r.Fields() {
		if f.Name() == "lsn" || f.Name() == "sequence" {
			if u, ok := deref(f.Type()).(*avro.UnionSchema); ok {
				idx, n, err := readLong(b[pos:])
				if err != nil {
					return 0, 0, err
				}
				if idx < 0 || int(idx) >= len(u.Types()) {
					return 0, 0, fmt.Errorf("avro: union index %d out of range", idx)
				}
				switch deref(u.Types()[idx]).Type() {
				case avro.Long:
					v, m, err := readLong(b[pos+n:])
					if err != nil {
						return 0, 0, err
					}
					lsn = uint64(max(v, 0))
					pos += n + m
					continue
				case avro.String:
					l, m, err := readLong(b[pos+n:])
					if err != nil || l < 0 || pos+n+m+int(l) > len(b) {
						return 0, 0, errShort
					}
					seq = sequenceTx(b[pos+n+m : pos+n+m+int(l)])
					pos += n + m + int(l)
					continue
				}
			}
		}
		n, err := skip(f.Type(), b[pos:])
		if err != nil {
			return 0, 0, err
		}
		pos += n
	}
	if seq != 0 {
		return pos, seq, nil
	}
	return pos, lsn, nil
}

// sequenceTx reads N from a sequence {"tx":N,...}; 0 if it is not of that form.
func sequenceTx(b []byte) uint64 {
	const prefix = `{"tx":`
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	var v uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}

// readStrings reads an Avro array of strings (its blocks).
func readStrings(b []byte) []string {
	var out []string
	pos := 0
	for {
		cnt, n, err := readLong(b[pos:])
		if err != nil || cnt == 0 {
			return out
		}
		pos += n
		if cnt < 0 {
			cnt = -cnt
			_, n, err = readLong(b[pos:])
			if err != nil {
				return out
			}
			pos += n
		}
		for i := int64(0); i < cnt; i++ {
			l, n, err := readLong(b[pos:])
			if err != nil || pos+n+int(l) > len(b) {
				return out
			}
			out = append(out, string(b[pos+n:pos+n+int(l)]))
			pos += n + int(l)
		}
	}
}

func readLong(b []byte) (int64, int, error) {
	u, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, errShort
	}
	return int64(u>>1) ^ -int64(u&1), n, nil
}

// skip returns the length of the value of schema s at the start of b.
func skip(s avro.Schema, b []byte) (int, error) {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return 0, nil
	case avro.Boolean:
		if len(b) < 1 {
			return 0, errShort
		}
		return 1, nil
	case avro.Int, avro.Long, avro.Enum:
		_, n, err := readLong(b)
		return n, err
	case avro.Float:
		if len(b) < 4 {
			return 0, errShort
		}
		return 4, nil
	case avro.Double:
		if len(b) < 8 {
			return 0, errShort
		}
		return 8, nil
	case avro.String, avro.Bytes:
		l, n, err := readLong(b)
		if err != nil || l < 0 || n+int(l) > len(b) {
			return 0, errShort
		}
		return n + int(l), nil
	case avro.Fixed:
		size := s.(*avro.FixedSchema).Size()
		if len(b) < size {
			return 0, errShort
		}
		return size, nil
	case avro.Record:
		pos := 0
		for _, f := range s.(*avro.RecordSchema).Fields() {
			n, err := skip(f.Type(), b[pos:])
			if err != nil {
				return 0, err
			}
			pos += n
		}
		return pos, nil
	case avro.Union:
		idx, n, err := readLong(b)
		if err != nil {
			return 0, err
		}
		types := s.(*avro.UnionSchema).Types()
		if idx < 0 || int(idx) >= len(types) {
			return 0, fmt.Errorf("avro: union index %d out of range", idx)
		}
		m, err := skip(types[idx], b[n:])
		return n + m, err
	case avro.Array, avro.Map:
		var items []avro.Schema
		if a, ok := s.(*avro.ArraySchema); ok {
			items = []avro.Schema{a.Items()}
		} else {
			items = []avro.Schema{avro.NewPrimitiveSchema(avro.String, nil), s.(*avro.MapSchema).Values()}
		}
		pos := 0
		for {
			cnt, n, err := readLong(b[pos:])
			if err != nil {
				return 0, err
			}
			pos += n
			if cnt == 0 {
				return pos, nil
			}
			if cnt < 0 {
				size, n, err := readLong(b[pos:])
				if err != nil || size < 0 || pos+n+int(size) > len(b) {
					return 0, errShort
				}
				pos += n + int(size)
				continue
			}
			for i := int64(0); i < cnt; i++ {
				for _, it := range items {
					m, err := skip(it, b[pos:])
					if err != nil {
						return 0, err
					}
					pos += m
				}
			}
		}
	}
	return 0, fmt.Errorf("avro: cannot skip a %s", s.Type())
}

// withUnchanged marks the columns the record lists in unchanged_toast.
func withUnchanged(cols []col, unchanged []string, names map[string]uint16) {
	for _, n := range unchanged {
		if idx, ok := names[n]; ok {
			if i := slices.IndexFunc(cols, func(c col) bool { return c.idx == idx }); i >= 0 {
				cols[i].unchanged, cols[i].hash = true, 0
			}
		}
	}
}
