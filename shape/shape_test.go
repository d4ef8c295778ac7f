package shape

import (
	"context"
	"errors"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

type fakeSource struct{ items [][]change.Item }

func (f *fakeSource) Run(ctx context.Context, _ change.Resume, out chan<- []change.Item) error {
	for _, it := range f.items {
		out <- it
	}
	return errors.New("source done")
}
func (f *fakeSource) Ack(uint64) {}

func table() *change.Table {
	return &change.Table{Schema: "public", Name: "people", Columns: []change.Column{
		{Name: "id", Key: true}, {Name: "email"}, {Name: "name"}}, KeyColumns: []int{0}}
}

func vals(s ...string) []change.Value {
	out := make([]change.Value, len(s))
	for i, v := range s {
		out[i] = change.Value{Str: v}
	}
	return out
}

func run(t *testing.T, rules Rules, items ...[]change.Item) ([][]change.Item, error) {
	t.Helper()
	src := Wrap(&fakeSource{items: items}, rules)
	out := make(chan []change.Item, len(items)+1)
	err := src.Run(context.Background(), change.Resume{}, out)
	close(out)
	var got [][]change.Item
	for it := range out {
		got = append(got, it)
	}
	return got, err
}

func TestExcludeAndInclude(t *testing.T) {
	tb := table()
	for _, rules := range []Rules{
		{"public.people": {Exclude: []string{"email"}}},
		{"public.people": {Include: []string{"id", "name"}}},
	} {
		bad := change.Value{State: change.Undecodable, Str: "CANARY"}
		items := []change.Item{
			{Event: change.Event{Op: change.OpUpdate, Table: tb, Before: vals("1", "a@x", "A"), After: vals("1", "b@x", "B")}},
			{Event: change.Event{Op: change.OpRead, Table: tb, After: []change.Value{{Str: "2"}, bad, {Str: "C"}}, Err: errors.New("email: CANARY")}},
			{Commit: &change.Commit{}},
			{Event: change.Event{Op: change.OpCreate, Table: &change.Table{Schema: "public", Name: "other", Columns: tb.Columns}, After: vals("3", "c@x", "C")}},
		}
		got, err := run(t, rules, items)
		if err == nil || err.Error() != "source done" {
			t.Fatalf("the source's error was not returned: %v", err)
		}
		ev := got[0][0].Event
		if len(ev.Table.Columns) != 2 || ev.Table.Columns[1].Name != "name" || len(ev.Before) != 2 || ev.After[1].Str != "B" || ev.Table.KeyColumns[0] != 0 {
			t.Fatalf("%v: shaped %+v", rules, ev)
		}
		if tb.Columns[1].Name != "email" {
			t.Fatal("the source's table was changed")
		}
		if r := got[0][1].Event; r.Err != nil || len(r.After) != 2 || r.Table != ev.Table {
			t.Errorf("the read: err %v (the failing value was left out), %d values, same shaped table %v", r.Err, len(r.After), r.Table == ev.Table)
		}
		if o := got[0][3].Event; len(o.After) != 3 {
			t.Error("a table without rules was shaped")
		}
	}
}

func TestExcludingTheKeyIsRefused(t *testing.T) {
	_, err := run(t, Rules{"public.people": {Exclude: []string{"id"}}},
		[]change.Item{{Event: change.Event{Op: change.OpCreate, Table: table(), After: vals("1", "a", "b")}}})
	var f interface{ Fatal() bool }
	if !errors.As(err, &f) || !f.Fatal() {
		t.Fatalf("want a fatal error naming the key column, got %v", err)
	}
}

func TestCustomKey(t *testing.T) {
	tb := table()
	rules := Rules{"public.people": {Exclude: []string{"id"}, Key: []string{"email"}}}
	got, err := run(t, rules,
		[]change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: vals("1", "a@x", "A")}}},
		[]change.Item{{Event: change.Event{Op: change.OpDelete, Table: tb, Before: vals("1", "a@x", "A")}}})
	if err == nil || err.Error() != "source done" {
		t.Fatalf("err %v", err)
	}
	st := got[0][0].Event.Table
	if len(st.Columns) != 2 || len(st.KeyColumns) != 1 || st.Columns[st.KeyColumns[0]].Name != "email" || !st.Columns[0].Key || st.Columns[1].Key {
		t.Fatalf("shaped table %+v", st)
	}
	// A delete whose old row lacks the key column (no full replica identity) is refused.
	before := vals("1", "", "")
	before[1].State, before[2].State = change.Absent, change.Absent
	_, err = run(t, rules, []change.Item{{Event: change.Event{Op: change.OpDelete, Table: tb, Before: before}}})
	var f interface{ Fatal() bool }
	if !errors.As(err, &f) {
		t.Fatalf("want a fatal error naming REPLICA IDENTITY FULL, got %v", err)
	}
}

func TestFilterMovesRowsInAndOut(t *testing.T) {
	tb := &change.Table{Schema: "public", Name: "people", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt32, Key: true}, {Name: "region", Kind: change.KindString}}}
	row := func(id int64, region string) []change.Value {
		return []change.Value{{Int: id}, {Str: region}}
	}
	ev := func(op change.Op, before, after []change.Value) change.Item {
		return change.Item{Event: change.Event{Op: op, Table: tb, Before: before, After: after}}
	}
	rules := Rules{"public.people": {Filter: "region = 'eu'", Exclude: []string{"region"}}}
	got, _ := run(t, rules, []change.Item{
		ev(change.OpRead, nil, row(1, "eu")),
		ev(change.OpRead, nil, row(2, "us")),
		ev(change.OpUpdate, row(2, "us"), row(2, "eu")), // into the filter: an insert
		ev(change.OpUpdate, row(1, "eu"), row(1, "us")), // out of it: a delete
		ev(change.OpUpdate, row(3, "us"), row(3, "us")), // neither: nothing
		ev(change.OpUpdate, row(2, "eu"), row(2, "eu")), // both: an update
		ev(change.OpDelete, row(4, "us"), nil),
		{Commit: &change.Commit{}},
	})
	var ops []string
	for _, it := range got[0] {
		if it.Commit != nil {
			ops = append(ops, "commit")
			continue
		}
		ops = append(ops, it.Event.Op.String())
		if len(it.Event.Table.Columns) != 1 {
			t.Errorf("the excluded filter column is published")
		}
	}
	if want := "r c d u commit"; joined(ops) != want {
		t.Fatalf("ops %s, want %s", joined(ops), want)
	}
	// An update without the old row, filtering on a non-key column: refused with the fix.
	_, err := run(t, rules, []change.Item{ev(change.OpUpdate, nil, row(1, "eu"))})
	var f interface{ Fatal() bool }
	if !errors.As(err, &f) {
		t.Fatalf("want a fatal error naming REPLICA IDENTITY FULL, got %v", err)
	}
}

func joined(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}
