package window

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/hamba/avro/v2"
)

// A reader extracts the fields a job needs from one cdcd change record (the Avro value of a
// Debezium-style envelope), without building the whole record: it walks the binary encoding
// once, keeping the fields it wants and skipping the rest. One reader is compiled per writer
// schema id.
type reader struct {
	steps []step // the envelope's fields, in order
	slots int    // len of the output slot array
}

// step reads one field: keep it in slot (>= 0), or skip it (slot < 0); sub is set for the
// before/after rows and the source record.
type step struct {
	s       avro.Schema
	slot    int
	nested  *reader  // record (through a nullable union for before/after)
	union   bool     // nullable union ["null", X]: branch 0 is null
	rowSide int      // 1 before, 2 after: marks presence of the row
	sk      *skipper // how to skip the field (slot < 0)
}

func newStep(s avro.Schema) step { return step{s: s, slot: -1} }

// planSkips compiles the skip plans of the steps that skip their field.
func (rd *reader) planSkips() {
	for i := range rd.steps {
		if st := &rd.steps[i]; st.slot < 0 && st.nested == nil {
			st.sk = compileSkip(st.s, 0)
		}
	}
}

// extracted is what a reader pulled out of one record.
type extracted struct {
	op       byte
	vals     []Value // by slot
	hasRow   [3]bool // [1] before present, [2] after present
	opSlot   int
	tsmsSlot int
}

// fieldRef is a field a job reads, with the slot it goes to.
type fieldRef struct {
	path Path
	slot int
}

// errMissingField lists what the schema has instead.
type fieldError struct {
	path   Path
	reason string
	have   []string
}

func (e *fieldError) Error() string {
	msg := fmt.Sprintf("field %s %s", e.path, e.reason)
	if len(e.have) > 0 {
		msg += "; the fields that exist: " + strings.Join(e.have, ", ")
	}
	return msg
}

// compileReader builds the reader of an envelope schema for the given field references. Slot
// 0 holds op, slot 1 the envelope's ts_ms; the refs' slots follow.
func compileReader(schema avro.Schema, refs []fieldRef, nslots int) (*reader, error) {
	env, ok := schema.(*avro.RecordSchema)
	if !ok {
		return nil, errors.New("the value schema is not a record: not a cdcd change topic")
	}
	byRoot := map[string][]fieldRef{}
	for _, r := range refs {
		byRoot[r.path.Root] = append(byRoot[r.path.Root], r)
	}
	rd := &reader{slots: nslots}
	found := map[Path]bool{}
	var envNames []string
	for _, f := range env.Fields() {
		envNames = append(envNames, f.Name())
		st := newStep(f.Type())
		switch f.Name() {
		case "op":
			st.slot = 0
		case "ts_ms":
			st.slot = 1
		case "before", "after", "source":
			want := byRoot[f.Name()]
			if f.Name() == "source" {
				// source.ts_ms and friends
				rs, ok := deref(f.Type()).(*avro.RecordSchema)
				if !ok {
					return nil, errors.New("the envelope's source is not a record: not a cdcd change topic")
				}
				sub, err := compileRow(rs, want, nslots, found)
				if err != nil {
					return nil, err
				}
				st.nested = sub
				break
			}
			u, ok := f.Type().(*avro.UnionSchema)
			if !ok || len(u.Types()) != 2 || u.Types()[0].Type() != avro.Null {
				return nil, fmt.Errorf("the envelope's %s is not a nullable record: not a cdcd change topic", f.Name())
			}
			rs, ok := deref(u.Types()[1]).(*avro.RecordSchema)
			if !ok {
				return nil, fmt.Errorf("the envelope's %s is not a nullable record: not a cdcd change topic", f.Name())
			}
			sub, err := compileRow(rs, want, nslots, found)
			if err != nil {
				return nil, err
			}
			st.nested, st.union = sub, true
			st.rowSide = 1
			if f.Name() == "after" {
				st.rowSide = 2
			}
		default:
			if r, ok := wantsEnvelope(refs, f.Name()); ok {
				st.slot = r.slot
				found[r.path] = true
			}
		}
		rd.steps = append(rd.steps, st)
	}
	// The paths the job names first: an after.<c> ref also reads before.<c>, and a missing
	// column should be reported as the user wrote it.
	for _, pass := range []bool{false, true} {
		for _, r := range refs {
			if found[r.path] || (r.path.Root == "before") != pass {
				continue
			}
			if r.path.Root == "" && (r.path.Field == "ts_ms" || r.path.Field == "op") {
				continue
			}
			return nil, &fieldError{path: r.path, reason: "is not in the topic's schema", have: fieldNames(env, r.path.Root, envNames)}
		}
	}
	rd.planSkips()
	return rd, nil
}

func wantsEnvelope(refs []fieldRef, name string) (fieldRef, bool) {
	for _, r := range refs {
		if r.path.Root == "" && r.path.Field == name {
			return r, true
		}
	}
	return fieldRef{}, false
}

func fieldNames(env *avro.RecordSchema, root string, envNames []string) []string {
	if root == "" {
		return envNames
	}
	for _, f := range env.Fields() {
		if f.Name() != root {
			continue
		}
		t := f.Type()
		if u, ok := t.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
			t = deref(u.Types()[1])
		}
		if rs, ok := t.(*avro.RecordSchema); ok {
			var names []string
			for _, c := range rs.Fields() {
				names = append(names, root+"."+c.Name())
			}
			sort.Strings(names)
			return names
		}
	}
	return nil
}

func compileRow(rs *avro.RecordSchema, want []fieldRef, nslots int, found map[Path]bool) (*reader, error) {
	sub := &reader{slots: nslots}
	for _, f := range rs.Fields() {
		st := newStep(f.Type())
		for _, r := range want {
			if r.path.Field == f.Name() {
				if err := scalar(f.Type()); err != nil {
					return nil, &fieldError{path: r.path, reason: err.Error()}
				}
				st.slot = r.slot
				found[r.path] = true
				// Several refs to one field (e.g. sum and max of it) share the first slot;
				// the caller maps them.
				break
			}
		}
		sub.steps = append(sub.steps, st)
	}
	sub.planSkips()
	return sub, nil
}

// deref resolves a reference to a named type.
func deref(s avro.Schema) avro.Schema {
	for {
		r, ok := s.(*avro.RefSchema)
		if !ok {
			return s
		}
		s = r.Schema()
	}
}

// scalar reports whether a field's type can be grouped by or aggregated.
func scalar(s avro.Schema) error {
	if u, ok := s.(*avro.UnionSchema); ok {
		if len(u.Types()) != 2 || u.Types()[0].Type() != avro.Null {
			return errors.New("is a union other than [null, T]; window jobs read scalar columns")
		}
		s = u.Types()[1]
	}
	s = deref(s)
	switch s.Type() {
	case avro.Boolean, avro.Int, avro.Long, avro.Float, avro.Double, avro.String, avro.Enum:
		return nil
	case avro.Bytes, avro.Fixed:
		if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil && ls.Logical().Type() == avro.Decimal {
			return nil
		}
		return errors.New("is binary; window jobs read numbers, strings, booleans and timestamps")
	}
	return fmt.Errorf("is of Avro type %s; window jobs read numbers, strings, booleans and timestamps", s.Type())
}

// kindOf is the Value kind a field's schema yields.
func kindOf(s avro.Schema) Kind {
	if u, ok := s.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		s = u.Types()[1]
	}
	switch s.Type() {
	case avro.Boolean:
		return KindBool
	case avro.Int, avro.Long:
		if isTimestamp(s) {
			return KindTime
		}
		return KindLong
	case avro.Float, avro.Double:
		return KindDouble
	case avro.String, avro.Enum:
		return KindString
	case avro.Bytes, avro.Fixed:
		return KindDecimal
	}
	return KindNull
}

func logical(s avro.Schema) avro.LogicalType {
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		return ls.Logical().Type()
	}
	return ""
}

func isTimestamp(s avro.Schema) bool {
	switch logical(s) {
	case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		return true
	}
	return false
}

// errUndecodable: the record's Avro body does not decode with the schema its id names (a
// dead letter of class undecodable_value, or the job stops).
var errUndecodable = errors.New("not a record of the schema its id names")

var errShort = fmt.Errorf("record ends early: %w", errUndecodable)

// decoder walks Avro binary with hamba's Reader (one per extractor, reset per record).
type decoder struct {
	r    *avro.Reader
	err  error
	size int    // the record's length: no value in it is longer
	text []byte // scratch of the last string or bytes value read (see readBytes)
}

func newDecoder() *decoder {
	return &decoder{r: avro.NewReader(nil, 0)}
}

// reset starts reading body.
func (d *decoder) reset(body []byte) {
	d.r.Reset(body)
	d.r.Error, d.err, d.size = nil, nil, len(body)
}

// readBytes reads a string or bytes value into buf (grown as needed). Its length is checked
// against the record's before anything is allocated: a corrupt length (a record of another
// schema, say) must not allocate more than the record holds. hamba's own ReadBytes allocates
// whatever length it reads, up to its MaxByteSliceSize.
func (d *decoder) readBytes(buf []byte) []byte {
	n := d.r.ReadLong()
	switch {
	case n < 0:
		d.fail("length %d out of range", n)
		return nil
	case n > int64(d.size):
		if d.err == nil {
			d.err = errShort
		}
		return nil
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	if buf == nil {
		return []byte{}
	}
	d.r.Read(buf)
	return buf
}

// done returns the first problem of the record read: errShort if it ended early.
func (d *decoder) done() error {
	switch {
	case d.err != nil:
		return d.err
	case d.r.Error == nil:
		return nil
	case errors.Is(d.r.Error, io.EOF), errors.Is(d.r.Error, io.ErrUnexpectedEOF):
		return errShort
	}
	return fmt.Errorf("%v: %w", d.r.Error, errUndecodable)
}

func (d *decoder) failed() bool { return d.err != nil || d.r.Error != nil }

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+": %w", append(a, errUndecodable)...)
	}
}

// read walks one record of rd's schema, storing kept fields in ex.vals.
func (rd *reader) read(d *decoder, ex *extracted) {
	for i := range rd.steps {
		st := &rd.steps[i]
		if d.failed() {
			return
		}
		if st.nested != nil {
			if st.union {
				if d.r.ReadLong() == 0 {
					continue // null row
				}
				ex.hasRow[st.rowSide] = true
			}
			st.nested.read(d, ex)
			continue
		}
		if st.slot < 0 {
			st.sk.skip(d)
			continue
		}
		ex.vals[st.slot] = value(d, st.s)
	}
}

// value decodes a scalar field (possibly a nullable union).
func value(d *decoder, s avro.Schema) Value {
	r := d.r
	if u, ok := s.(*avro.UnionSchema); ok {
		br := r.ReadLong()
		if br < 0 || int(br) >= len(u.Types()) {
			d.fail("union branch %d out of range", br)
			return Null
		}
		s = u.Types()[br]
	}
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return Null
	case avro.Boolean:
		if r.ReadBool() {
			return Value{Kind: KindBool, I: 1}
		}
		return Value{Kind: KindBool}
	case avro.Int, avro.Long:
		n := r.ReadLong()
		switch logical(s) {
		case avro.TimestampMillis, avro.LocalTimestampMillis:
			return TimeMicros(n * 1000)
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			return TimeMicros(n)
		}
		return Long(n)
	case avro.Float:
		return Double(float64(r.ReadFloat()))
	case avro.Double:
		return Double(r.ReadDouble())
	case avro.String:
		d.text = d.readBytes(d.text)
		return String(string(d.text))
	case avro.Enum:
		i := r.ReadLong()
		syms := s.(*avro.EnumSchema).Symbols()
		if i < 0 || int(i) >= len(syms) {
			d.fail("enum index %d out of range", i)
			return Null
		}
		return String(syms[i])
	case avro.Bytes, avro.Fixed:
		// Read into the scratch buffer: unscaled copies what it keeps.
		var raw []byte
		if fs, ok := s.(*avro.FixedSchema); ok {
			raw = slices.Grow(d.text[:0], fs.Size())[:fs.Size()]
			r.Read(raw)
		} else {
			raw = d.readBytes(d.text)
		}
		d.text = raw
		scale := 0
		if ls, ok := s.(avro.LogicalTypeSchema); ok {
			if dec, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
				scale = dec.Scale()
			}
		}
		return Decimal(unscaled(raw, scale), scale)
	}
	d.fail("unsupported type %s", s.Type())
	return Null
}

// unscaled turns a big-endian two's-complement unscaled integer into unscaled / 10^scale.
func unscaled(b []byte, scale int) *big.Rat {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	return new(big.Rat).SetFrac(n, pow10(scale))
}

// pow10s caches 10^0 .. 10^76, read-only (Rat.SetFrac copies its denominator).
var pow10s = func() []*big.Int {
	out := make([]*big.Int, 77)
	for i := range out {
		out[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return out
}()

// pow10 returns 10^scale; the cached ones must not be changed.
func pow10(scale int) *big.Int {
	if scale >= 0 && scale < len(pow10s) {
		return pow10s[scale]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
}

// skipper skips one value of a schema compiled once (the source block and unread columns
// of every record are skipped: no interface calls and type assertions per value).
type skipper struct {
	kind   skipKind
	size   int        // skipFixed
	subs   []*skipper // skipRecord: fields; skipUnion: branches
	items  *skipper   // skipArray, skipMap: items or values
	next   *skipper   // skipDynamic: schema's plan, once reached
	schema avro.Schema
}

type skipKind uint8

const (
	skipNone skipKind = iota
	skipBool
	skipLong
	skipFloat
	skipDouble
	skipBytes
	skipFixed
	skipRecord
	skipUnion
	skipArray
	skipMap
	skipDynamic // deeply nested (a recursive named type): compiled when reached
	skipUnsupported
)

func compileSkip(s avro.Schema, depth int) *skipper {
	if depth > 16 {
		return &skipper{kind: skipDynamic, schema: s}
	}
	switch s.Type() {
	case avro.Null:
		return &skipper{kind: skipNone}
	case avro.Boolean:
		return &skipper{kind: skipBool}
	case avro.Int, avro.Long, avro.Enum:
		return &skipper{kind: skipLong}
	case avro.Float:
		return &skipper{kind: skipFloat}
	case avro.Double:
		return &skipper{kind: skipDouble}
	case avro.String, avro.Bytes:
		return &skipper{kind: skipBytes}
	case avro.Fixed:
		return &skipper{kind: skipFixed, size: s.(*avro.FixedSchema).Size()}
	case avro.Record:
		k := &skipper{kind: skipRecord}
		for _, f := range s.(*avro.RecordSchema).Fields() {
			k.subs = append(k.subs, compileSkip(f.Type(), depth+1))
		}
		return k
	case avro.Union:
		k := &skipper{kind: skipUnion}
		for _, t := range s.(*avro.UnionSchema).Types() {
			k.subs = append(k.subs, compileSkip(t, depth+1))
		}
		return k
	case avro.Array:
		return &skipper{kind: skipArray, items: compileSkip(s.(*avro.ArraySchema).Items(), depth+1)}
	case avro.Map:
		return &skipper{kind: skipMap, items: compileSkip(s.(*avro.MapSchema).Values(), depth+1)}
	case avro.Ref:
		return compileSkip(s.(*avro.RefSchema).Schema(), depth+1)
	}
	return &skipper{kind: skipUnsupported, schema: s}
}

func (k *skipper) skip(d *decoder) {
	r := d.r
	switch k.kind {
	case skipNone:
	case skipBool:
		r.SkipBool()
	case skipLong:
		r.SkipLong()
	case skipFloat:
		r.SkipFloat()
	case skipDouble:
		r.SkipDouble()
	case skipBytes:
		skipN(d, r.ReadLong())
	case skipFixed:
		skipN(d, int64(k.size))
	case skipRecord:
		for _, f := range k.subs {
			f.skip(d)
		}
	case skipUnion:
		br := r.ReadLong()
		if br < 0 || int(br) >= len(k.subs) {
			d.fail("union branch %d out of range", br)
			return
		}
		k.subs[br].skip(d)
	case skipArray, skipMap:
		for !d.failed() {
			n, size := r.ReadBlockHeader()
			if n == 0 {
				return
			}
			if size > 0 { // a block with its byte size: skip it whole
				skipN(d, size)
				continue
			}
			for i := int64(0); i < n && !d.failed(); i++ {
				if k.kind == skipMap {
					skipN(d, r.ReadLong())
				}
				k.items.skip(d)
			}
		}
	case skipDynamic:
		if k.next == nil { // the next levels of a deeply nested value, compiled once
			k.next = compileSkip(k.schema, 0)
		}
		k.next.skip(d)
	default:
		d.fail("unsupported type %s", k.schema.Type())
	}
}

// skipN skips n bytes: a negative length is corrupt, and bytes past the end end the record
// early.
func skipN(d *decoder, n int64) {
	if n < 0 || n > math.MaxInt32 {
		d.fail("length %d out of range", n)
		return
	}
	d.r.SkipNBytes(int(n))
}
