// Package shape applies a pipeline's per-table shaping (the YAML's shape:) to every event a
// source emits, before anything is encoded: stream changes, snapshot reads of every kind, and
// so dead letters and their replay too, which are made from the shaped event. A column the
// shaping leaves out reaches Kafka by no path.
package shape

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// Columns selects a table's columns: Include (only these) or Exclude (all but these), and
// masks some of the kept ones (column -> "hash", "redact" or "truncate(n)").
type Columns struct {
	Include []string
	Exclude []string
	Mask    map[string]string
	// MaskKey is the HMAC-SHA-256 key of the hash mask.
	MaskKey []byte
	// Key, if set, are the columns of the record key instead of the table's key.
	Key []string
	// HashKey allows hash on key columns: the record key becomes the keyed hash of the key
	// (distinct keys stay distinct; redact and truncate would merge them and are refused).
	HashKey bool
	// Filter, if set, is a row condition (the grammar of snapshot.ParseCondition): only rows
	// matching it are published (filter.go).
	Filter string
	// Outbox, if set, makes the table an outbox (outbox.go): its inserts, shaped as above,
	// become outbox events.
	Outbox *Outbox
}

// Rules maps a table (schema.table, unquoted, as change.Table.QualifiedName spells it) to
// its columns.
type Rules map[string]Columns

// Source is the part of pipeline.Source a shaped source needs.
type Source interface {
	Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) error
	Ack(pos uint64)
}

// Wrap returns src with rules applied to every event it emits; src itself when rules are
// empty.
func Wrap(src Source, rules Rules) Source { return WrapLogged(src, rules, nil) }

// WrapLogged is Wrap with a logger for warnings (updates of an outbox table).
func WrapLogged(src Source, rules Rules, log *slog.Logger) Source {
	if len(rules) == 0 {
		return src
	}
	return &shaped{Source: src, rules: rules, log: log, tables: map[*change.Table]*version{}}
}

type shaped struct {
	Source
	rules  Rules
	log    *slog.Logger
	tables map[*change.Table]*version // only Run's forwarding goroutine uses it
}

// version is a source table version as shaped: its columns and where they come from.
type version struct {
	table *change.Table
	keep  []int  // indexes into the source table's columns, in order
	masks []mask // per kept column; nil when none is masked
	// filter is the row condition on the source's columns, nil if none.
	filter *rowFilter
	err    error
	// customKey: the record key is shape's key, which the old row of an update or delete
	// must hold (replica identity FULL, binlog_row_image=FULL).
	customKey bool
	// outbox routes the table's inserts as outbox events; nil if the table is no outbox.
	outbox *outboxPlan
}

// Error is a shaping that cannot be applied (it would drop a key column): retrying does not
// help.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Fatal() bool   { return true }

func (s *shaped) Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) error {
	in := make(chan []change.Item, cap(out))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Source.Run(ctx, resume, in) }()
	for {
		select {
		case err := <-errc:
			// Forward what the source sent before it returned.
			for {
				select {
				case items := <-in:
					if ferr := s.forward(ctx, items, out); ferr != nil {
						return ferr
					}
					continue
				default:
				}
				return err
			}
		case items := <-in:
			if err := s.forward(ctx, items, out); err != nil {
				cancel()
				<-errc
				return err
			}
		}
	}
}

func (s *shaped) forward(ctx context.Context, items []change.Item, out chan<- []change.Item) error {
	kept := items[:0]
	for i := range items {
		if items[i].Commit == nil {
			keep, err := s.apply(&items[i].Event)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
		}
		kept = append(kept, items[i])
	}
	clear(items[len(kept):])
	items = kept
	select {
	case out <- items:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply shapes one event in place; false drops it (the row filter).
func (s *shaped) apply(ev *change.Event) (bool, error) {
	if ev.Table == nil {
		return true, nil
	}
	v, ok := s.tables[ev.Table]
	if !ok {
		v = s.version(ev.Table)
		s.tables[ev.Table] = v
	}
	if v == nil {
		return true, nil
	}
	if v.err != nil {
		return false, v.err
	}
	if v.outbox != nil && ev.Op != change.OpCreate {
		return v.outbox.route(ev, s.log) // no event: neither the filter nor a key needs its rows
	}
	if v.filter != nil {
		if keep, err := v.filter.apply(ev); err != nil || !keep {
			return false, err
		}
	}
	if v.customKey && ev.After == nil && ev.Before != nil {
		for _, k := range v.table.KeyColumns {
			if i := v.keep[k]; i < len(ev.Before) && ev.Before[i].State == change.Absent {
				return false, &Error{fmt.Errorf("table %s: a delete does not carry key column %s of shape's key (the database sends only its own key of an old row); fix: ALTER TABLE %s REPLICA IDENTITY FULL (PostgreSQL) or binlog_row_image=FULL (MySQL), or key by the table's key",
					ev.Table.QualifiedName(), v.table.Columns[k].Name, ev.Table.QualifiedName())}
			}
		}
	}
	ev.Table = v.table
	ev.Before = pick(ev.Before, v.keep)
	ev.After = pick(ev.After, v.keep)
	if v.masks != nil {
		applyMasks(ev.Before, v.masks)
		applyMasks(ev.After, v.masks)
	}
	if ev.Err != nil && !undecodable(ev.Before) && !undecodable(ev.After) {
		ev.Err = nil // the value that failed is one the shaping leaves out
	}
	if v.outbox != nil {
		return v.outbox.route(ev, s.log)
	}
	return true, nil
}

func pick(vals []change.Value, keep []int) []change.Value {
	if vals == nil {
		return nil
	}
	out := make([]change.Value, 0, len(keep))
	for _, i := range keep {
		if i < len(vals) {
			out = append(out, vals[i])
		}
	}
	return out
}

func undecodable(vals []change.Value) bool {
	return slices.ContainsFunc(vals, func(v change.Value) bool { return v.State == change.Undecodable })
}

// version shapes a source table version; nil when no rule names the table.
func (s *shaped) version(t *change.Table) *version {
	rule, ok := s.rules[t.QualifiedName()]
	if !ok {
		return nil
	}
	v := &version{}
	keepName := func(name string) bool {
		if len(rule.Include) > 0 {
			return slices.Contains(rule.Include, name)
		}
		return !slices.Contains(rule.Exclude, name)
	}
	nt := *t
	nt.Columns = nil
	nt.KeyColumns = nil
	newIndex := map[int]int{}
	for i, c := range t.Columns {
		if keepName(c.Name) {
			newIndex[i] = len(nt.Columns)
			nt.Columns = append(nt.Columns, c)
			v.keep = append(v.keep, i)
		}
	}
	var dropped []string
	for _, k := range t.KeyColumns {
		j, ok := newIndex[k]
		if !ok {
			dropped = append(dropped, t.Columns[k].Name)
			continue
		}
		nt.KeyColumns = append(nt.KeyColumns, j)
	}
	if len(rule.Key) > 0 {
		// The configured key replaces the table's: the table's key columns may be left out.
		dropped = nil
		nt.KeyColumns = nil
		for i := range nt.Columns {
			nt.Columns[i].Key = false
		}
		for _, name := range rule.Key {
			j := slices.IndexFunc(nt.Columns, func(c change.Column) bool { return c.Name == name })
			if j < 0 {
				v.err = &Error{fmt.Errorf("table %s: shape key column %s is not a published column of the table; fix: name kept columns in shape.%s.key",
					t.QualifiedName(), name, t.QualifiedName())}
				break
			}
			if spec, masked := rule.Mask[name]; masked && !(spec == "hash" && rule.HashKey) {
				v.err = &Error{fmt.Errorf("table %s: shape key column %s is masked: a masked key would merge or split keys; fix: key by another column, or do not mask it",
					t.QualifiedName(), name)}
				break
			}
			nt.Columns[j].Key = true
			nt.KeyColumns = append(nt.KeyColumns, j)
		}
		v.customKey = true
	}
	if len(dropped) > 0 {
		v.err = &Error{fmt.Errorf("table %s: shape columns leave out key column(s) %s, which every record's key is made of; fix: keep them in shape.%s.columns, or key the table by other columns (shape.%s.key)",
			t.QualifiedName(), strings.Join(dropped, ", "), t.QualifiedName(), t.QualifiedName())}
	}
	if len(rule.Mask) > 0 && v.err == nil {
		v.masks = make([]mask, len(nt.Columns))
		var errs []string
		for i := range nt.Columns {
			spec, ok := rule.Mask[nt.Columns[i].Name]
			if !ok {
				continue
			}
			m, col, err := planMask(nt.Columns[i], spec, rule.MaskKey)
			switch {
			case err != nil:
				errs = append(errs, err.Error())
			case slices.Contains(nt.KeyColumns, i) && !(spec == "hash" && rule.HashKey):
				errs = append(errs, fmt.Sprintf("column %s is part of the record key: a masked key would merge or split keys (hash is allowed with hash_key: true)", col.Name))
			default:
				v.masks[i] = m
				nt.Columns[i] = col
			}
		}
		if len(errs) > 0 {
			v.err = &Error{fmt.Errorf("table %s: shape mask: %s; fix: change shape.%s.mask", t.QualifiedName(), strings.Join(errs, "; "), t.QualifiedName())}
		}
	}
	if rule.Filter != "" && v.err == nil {
		f, err := newRowFilter(t, rule.Filter)
		if err != nil {
			v.err = &Error{fmt.Errorf("table %s: shape filter %q: %w; fix: change shape.%s.filter", t.QualifiedName(), rule.Filter, err, t.QualifiedName())}
		}
		v.filter = f
	}
	v.table = &nt
	if rule.Outbox != nil && v.err == nil {
		p, err := planOutbox(&nt, *rule.Outbox)
		if err != nil {
			v.err = &Error{err}
		}
		v.outbox = p
	}
	return v
}
