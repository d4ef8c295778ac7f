package shape

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
)

// rowFilter publishes only the rows matching a condition, with PostgreSQL's semantics for
// publication row filters: an insert or snapshot read is published if the new row matches, a
// delete if the old row did; an update is published as an update when both rows match, as an
// insert when only the new row matches, as a delete when only the old row did, and not at all
// when neither does. The condition is evaluated on the source's columns (it may name columns
// the shaping leaves out).
type rowFilter struct {
	cond    *snapshot.Cond
	table   *change.Table
	index   map[string]int
	keyOnly bool // every column the filter names is a key column
}

func newRowFilter(t *change.Table, expr string) (*rowFilter, error) {
	c, err := snapshot.ParseCondition(expr)
	if err != nil {
		return nil, err
	}
	f := &rowFilter{cond: c, table: t, index: map[string]int{}, keyOnly: true}
	for i, col := range t.Columns {
		f.index[col.Name] = i
	}
	for _, name := range c.Columns() {
		i, ok := f.index[name]
		if !ok {
			return nil, fmt.Errorf("table %s has no column %s", t.QualifiedName(), name)
		}
		if !slices.Contains(t.KeyColumns, i) {
			f.keyOnly = false
		}
	}
	return f, nil
}

// match evaluates the filter on row; fallback gives values row lacks (an unchanged TOASTed
// value of a new row, taken from the old row).
func (f *rowFilter) match(row, fallback []change.Value) (bool, error) {
	ok, err := f.cond.Eval(func(name string) (change.Kind, change.Value, bool) {
		i, ok := f.index[name]
		if !ok || i >= len(row) {
			return 0, change.Value{}, false
		}
		v := row[i]
		if v.State == change.Unchanged && i < len(fallback) {
			v = fallback[i]
		}
		return f.table.Columns[i].Kind, v, true
	})
	if errors.Is(err, snapshot.ErrValueMissing) {
		return false, &Error{fmt.Errorf("table %s: shape filter: %w; fix: ALTER TABLE %s REPLICA IDENTITY FULL (PostgreSQL) or binlog_row_image=FULL (MySQL), so old rows carry the columns the filter names",
			f.table.QualifiedName(), err, f.table.QualifiedName())}
	}
	if err != nil {
		return false, &Error{fmt.Errorf("table %s: shape filter: %w; fix: change shape.%s.filter", f.table.QualifiedName(), err, f.table.QualifiedName())}
	}
	return ok, nil
}

// apply decides an event's fate, turning an update into an insert or a delete when the row
// moves into or out of the filter. false drops the event.
func (f *rowFilter) apply(ev *change.Event) (bool, error) {
	switch ev.Op {
	case change.OpCreate, change.OpRead:
		return f.match(ev.After, nil)
	case change.OpDelete:
		return f.match(ev.Before, nil)
	case change.OpUpdate:
		old := ev.Before
		if old == nil {
			if !f.keyOnly {
				return false, &Error{fmt.Errorf("table %s: shape filter names columns outside the key, and an update does not carry the old row; fix: ALTER TABLE %s REPLICA IDENTITY FULL (PostgreSQL) or binlog_row_image=FULL (MySQL)",
					f.table.QualifiedName(), f.table.QualifiedName())}
			}
			old = ev.After // the key did not change: the old row's key columns are the new row's
		}
		was, err := f.match(old, nil)
		if err != nil {
			return false, err
		}
		is, err := f.match(ev.After, old)
		if err != nil {
			return false, err
		}
		switch {
		case was && is:
			return true, nil
		case is:
			ev.Op, ev.Before = change.OpCreate, nil
			return true, nil
		case was:
			if ev.Before == nil {
				// Only the key of the old row is known (it equals the new row's).
				b := make([]change.Value, len(ev.After))
				for i := range b {
					if slices.Contains(f.table.KeyColumns, i) {
						b[i] = ev.After[i]
					} else {
						b[i] = change.Value{State: change.Absent}
					}
				}
				ev.Before = b
			}
			ev.Op, ev.After = change.OpDelete, nil
			return true, nil
		}
		return false, nil
	}
	return true, nil
}
