package window

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hamba/avro/v2"
)

// A selector says where one of the job's inputs (time, a group field, an aggregate's field) is
// read from a change. A path "after.c" names the row's column c: in events mode a delete,
// which has no after image, reads it from before; in table mode the before image's value
// goes with the retraction and the after image's with the addition. "before.c" always reads
// the before image.
type selector struct {
	path         Path
	before, self int // slots: before image (row columns), and after image / the field itself
}

// extractor turns change records of a job's input topics into Recs.
type extractor struct {
	spec  *Spec
	time  selector
	group []selector
	aggs  []selector // one per aggregate (count's is unused)
	refs  []fieldRef
	slots int
	plans map[int]*plan // by writer schema id
	dec   *decoder
	// readsRow: time, a group field or an aggregate reads a row column (after.c, before.c)
	readsRow bool
}

// plan is the compiled form of one writer schema.
type plan struct {
	rd      *reader
	timeMul int64 // multiply the time field by this to get µs (0: already µs; nanos: ns)
	// local: the time field has no zone (a timestamp without time zone, a date): it is read
	// in zone (the job's time_zone; nil: UTC)
	local bool
	zone  *time.Location
	vals  []Value
	env   avro.Schema // the writer schema, to name a record's table in an error
}

func newExtractor(spec *Spec) *extractor {
	x := &extractor{spec: spec, slots: 2, plans: map[int]*plan{}, dec: newDecoder()}
	seen := map[Path]selector{}
	sel := func(p Path) selector {
		if s, ok := seen[p]; ok {
			return s
		}
		s := selector{path: p, before: -1}
		switch {
		case p.Root == "" && p.Field == "op":
			s.self = 0
		case p.Root == "" && p.Field == "ts_ms":
			s.self = 1
		case p.Root == "after":
			x.readsRow = true
			s.before, s.self = x.slots, x.slots+1
			x.slots += 2
			x.refs = append(x.refs, fieldRef{Path{"before", p.Field}, s.before}, fieldRef{p, s.self})
		default:
			x.readsRow = x.readsRow || p.Root == "before"
			s.self = x.slots
			x.slots++
			x.refs = append(x.refs, fieldRef{p, s.self})
		}
		seen[p] = s
		return s
	}
	x.time = sel(spec.Time)
	for _, g := range spec.GroupBy {
		x.group = append(x.group, sel(g))
	}
	for _, a := range spec.Aggs {
		if a.Fn == FnCount {
			x.aggs = append(x.aggs, selector{self: -1, before: -1})
			continue
		}
		x.aggs = append(x.aggs, sel(a.Field))
	}
	return x
}

// compile checks the job's fields against a writer schema of an input topic and prepares
// reading it. The error names the field and the fields that exist.
func (x *extractor) compile(id int, s avro.Schema) (*plan, error) {
	if p := x.plans[id]; p != nil {
		return p, nil
	}
	// In events mode the before image of an after.c column may be absent from the schema
	// only if after's is: both come from the same row type, so a ref to before.c resolves
	// whenever after.c does.
	rd, err := compileReader(s, x.refs, x.slots)
	if err != nil {
		return nil, err
	}
	p := &plan{rd: rd, vals: make([]Value, x.slots), env: s}
	p.timeMul, err = timeUnit(s, x.time.path)
	p.local, p.zone = isLocalTime(s, x.time.path), x.spec.TimeZone
	if err != nil {
		return nil, err
	}
	x.plans[id] = p
	return p, nil
}

// timeUnit is the factor that turns the time field into µs: timestamps are read as µs
// already; a date is days; a plain long (ts_ms, source.ts_ms, an epoch column) is ms.
func timeUnit(env avro.Schema, p Path) (int64, error) {
	ft := fieldType(env, p)
	if ft == nil {
		return 1000, nil // ts_ms, op: envelope fields
	}
	if u, ok := ft.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		ft = u.Types()[1]
	}
	ft = deref(ft)
	if unit, err, ok := debeziumTimeUnit(ft, p); ok {
		return unit, err
	}
	switch {
	case isTimestamp(ft):
		return 0, nil
	case logical(ft) == avro.Date:
		return dayMicros, nil
	case ft.Type() == avro.Long || ft.Type() == avro.Int && logical(ft) == "":
		return 1000, nil
	}
	return 0, fmt.Errorf("time %s is of Avro type %s; use a timestamp, a date or an epoch-milliseconds long column, or source.ts_ms", p, ft.Type())
}

// debeziumTimeUnit is timeUnit for the plain ints and longs that Debezium's semantic time
// types are (a pipeline's time_precision adaptive or adaptive_time_microseconds): their
// connect.name, not their Avro type, says the unit. ok is false for other types.
func debeziumTimeUnit(ft avro.Schema, p Path) (unit int64, err error, ok bool) {
	ps, isProp := ft.(avro.PropertySchema)
	if !isProp {
		return 0, nil, false
	}
	switch name, _ := ps.Prop("connect.name").(string); name {
	case "io.debezium.time.MicroTimestamp":
		return 1, nil, true
	case "io.debezium.time.Timestamp":
		return 1000, nil, true
	case "io.debezium.time.NanoTimestamp":
		return nanos, nil, true
	case "io.debezium.time.Date":
		return dayMicros, nil, true
	case "io.debezium.time.Time", "io.debezium.time.MicroTime", "io.debezium.time.MicroDuration", "io.debezium.time.Year",
		"io.debezium.time.ZonedTimestamp", "io.debezium.time.ZonedTime":
		return 0, fmt.Errorf("time %s is an %s, which is not a point in time cdcd can read; use a timestamp or date column, or source.ts_ms", p, name), true
	}
	return 0, nil, false
}

// fieldType finds the schema of a path in an envelope schema.
func fieldType(env avro.Schema, p Path) avro.Schema {
	rs, ok := deref(env).(*avro.RecordSchema)
	if !ok {
		return nil
	}
	for _, f := range rs.Fields() {
		if f.Name() != p.Root {
			continue
		}
		t := f.Type()
		if u, ok := t.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
			t = u.Types()[1]
		}
		row, ok := deref(t).(*avro.RecordSchema)
		if !ok {
			return nil
		}
		for _, c := range row.Fields() {
			if c.Name() == p.Field {
				return c.Type()
			}
		}
	}
	return nil
}

// errTruncate: table mode got a TRUNCATE. The change names no rows, and the job keeps no copy
// of the table, so it cannot retract the rows from the windows that count them: a documented
// dead letter (class truncate), or the job stops.
var errTruncate = errors.New("mode table cannot retract the rows a TRUNCATE removed (the change names none), so its windows would go on counting them; " +
	"fix: set dlq.topic to dead-letter truncates (counted in cdcd_window_dead_letters_total, the windows keep the truncated rows) and go on, " +
	"or, to count the table afresh, start the job under a new name after the truncate")

// ErrNeedBefore: table mode got an update or delete without a before image, or events mode
// (Events) a delete without one; Table and Connector are what the record's source block
// names, empty when it could not be read.
type ErrNeedBefore struct {
	Op               byte
	Events           bool
	Table, Connector string
}

func (e *ErrNeedBefore) Error() string {
	if e.Events {
		what, fix := "this delete", "REPLICA IDENTITY FULL on its source table (PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL) or binlog_row_image=FULL on the MySQL server"
		if e.Table != "" {
			what, fix = "this delete of "+e.Table, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", e.Table)
		}
		if e.Connector == "mysql" {
			fix = "binlog_row_image=FULL on the MySQL server (SET GLOBAL binlog_row_image = FULL)"
		}
		return fmt.Sprintf("mode events counts a delete by its before image, and %s has none (the source sent only the row's key), "+
			"so it has no time, group or values to count; fix: %s, or leave d out of input.ops to count no deletes", what, fix)
	}
	return fmt.Sprintf("mode table needs the before image of every update and delete to retract it, and this %q change has none; fix: set REPLICA IDENTITY FULL on the source table (Postgres) or binlog_row_image=FULL (MySQL), or use mode events", string(e.Op))
}

// extract decodes one record (the Avro body after the Confluent header) with plan p and
// appends its Recs to out. A change of an op the job does not select yields nothing.
func (x *extractor) extract(p *plan, body []byte, seq uint64, out []Rec) ([]Rec, error) {
	clear(p.vals)
	ex := extracted{vals: p.vals}
	d := x.dec
	d.reset(body)
	p.rd.read(d, &ex)
	if err := d.done(); err != nil {
		return out, err
	}
	op := byte(0)
	if v := p.vals[0]; v.Kind == KindString && len(v.S) == 1 {
		op = v.S[0]
	}
	if op == 0 {
		return out, fmt.Errorf("the record has no op: not a cdcd change record")
	}
	if op == 't' {
		if x.spec.Mode == ModeTable {
			return out, errTruncate
		}
		return out, nil // events mode counts row changes; a truncate is none
	}
	if !x.spec.opSelected(op) {
		return out, nil
	}
	hasBefore, hasAfter := ex.hasRow[1], ex.hasRow[2]
	if x.spec.Mode == ModeEvents {
		side := 1 // after
		if !hasAfter {
			side = 0
		}
		if op == 'd' && !hasBefore && x.readsRow {
			return out, p.deleteWithoutBefore(body)
		}
		return append(out, x.rec(p, side, 1, seq)), nil
	}
	switch op {
	case 'c', 'r':
		if hasAfter {
			out = append(out, x.rec(p, 1, 1, seq))
		}
	case 'u', 'd':
		if !hasBefore {
			return out, &ErrNeedBefore{Op: op}
		}
		out = append(out, x.rec(p, 0, -1, seq))
		if op == 'u' && hasAfter {
			out = append(out, x.rec(p, 1, 1, seq))
		}
	}
	return out, nil
}

// deleteWithoutBefore is the error of an events-mode delete without its before image, naming
// the table its source block names.
func (p *plan) deleteWithoutBefore(body []byte) error {
	e := &ErrNeedBefore{Op: 'd', Events: true}
	var m map[string]any
	if avro.Unmarshal(p.env, body, &m) == nil {
		if src, ok := m["source"].(map[string]any); ok {
			e.Connector, _ = src["connector"].(string)
			ns, _ := src["schema"].(string)
			if e.Connector == "mysql" || ns == "" {
				ns, _ = src["db"].(string)
			}
			if tbl, _ := src["table"].(string); tbl != "" {
				e.Table = tbl
				if ns != "" {
					e.Table = ns + "." + tbl
				}
			}
		}
	}
	return e
}

// rec builds the Rec of one side of the change: side 1 reads row columns from after, 0 from
// before.
func (x *extractor) rec(p *plan, side int, sign int64, seq uint64) Rec {
	get := func(s selector) Value {
		if s.self < 0 {
			return Null
		}
		if s.before >= 0 && side == 0 {
			return p.vals[s.before]
		}
		return p.vals[s.self]
	}
	vals := make([]Value, len(x.group)+len(x.aggs)) // one allocation for both
	r := Rec{Sign: sign, Seq: seq, Group: vals[:len(x.group):len(x.group)], Vals: vals[len(x.group):]}
	r.T = p.eventTime(get(x.time))
	for i, g := range x.group {
		r.Group[i] = get(g)
	}
	for i, a := range x.aggs {
		r.Vals[i] = get(a)
	}
	return r
}

// eventTime turns the time field's value into µs since the epoch (UTC): noTime for NULL,
// badTime for ±infinity and values beyond int64 µs.
func (p *plan) eventTime(tv Value) int64 {
	switch {
	case tv.IsNull():
		return noTime
	case p.timeMul == 0:
		if tv.I == math.MaxInt64 || tv.I == math.MinInt64 { // timestamp ±infinity
			return badTime
		}
		return p.fromLocal(tv.I)
	case p.timeMul == nanos:
		return p.fromLocal(floorDiv(tv.I, 1000))
	case tv.I > math.MaxInt64/p.timeMul || tv.I < math.MinInt64/p.timeMul+1 ||
		p.timeMul == dayMicros && (tv.I == math.MaxInt32 || tv.I == math.MinInt32): // date ±infinity
		return badTime
	}
	return p.fromLocal(tv.I * p.timeMul)
}

// fromLocal reads a local time (a timestamp without zone, a date) in the job's time zone.
func (p *plan) fromLocal(t int64) int64 {
	if !p.local || p.zone == nil || p.zone == time.UTC {
		return t
	}
	return zoneFromLocal(p.zone, t)
}

// badTime marks a Rec whose event time is out of range (±infinity): a dead letter.
const badTime = noTime + 1

const dayMicros = 86_400_000_000

// nanos is the timeMul of a time field in ns (io.debezium.time.NanoTimestamp): divide by 1000.
const nanos = -1

// noTime marks a Rec whose time field is NULL: it cannot be placed in a window and goes to
// the late topic.
const noTime = -1 << 63
