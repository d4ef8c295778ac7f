package verify

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
)

// memRegistry is a schema registry in memory: one id per distinct schema.
type memRegistry struct {
	mu  sync.Mutex
	ids map[string]int
	by  map[int]string
}

func (m *memRegistry) Register(_ context.Context, _, schema string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.ids[schema]; ok {
		return id, nil
	}
	id := len(m.ids) + 1
	m.ids[schema], m.by[id] = id, schema
	return id, nil
}

func (m *memRegistry) EnsureCompatibility(context.Context, string, string) (encode.Compatibility, error) {
	return encode.Compatibility{Level: "BACKWARD"}, nil
}

func (m *memRegistry) SchemaTextByID(_ context.Context, id int) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.by[id]; ok {
		return s, nil
	}
	return "", fmt.Errorf("no schema %d", id)
}

// The walk over cdcd's own envelope finds each column's value, the op, the source position
// and the unchanged-TOAST columns; equal rows give equal hashes, a changed value changes only
// its column's.
func TestWalkEnvelope(t *testing.T) {
	ctx := context.Background()
	reg := &memRegistry{ids: map[string]int{}, by: map[int]string{}}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	tbl := &change.Table{Database: "d", Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt32, Key: true},
		{Name: "name", Kind: change.KindString, Nullable: true},
		{Name: "price", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true},
		{Name: "tags", Kind: change.KindArray, Elem: change.KindString, Nullable: true},
		{Name: "body", Kind: change.KindString, Nullable: true},
	}}
	r := &run{cfg: &Config{}, tr: &TableReport{}, h: newHasher(), names: map[string]uint16{}, sameKey: map[int]bool{},
		lastPos: map[int32]uint64{}, schemas: newSchemaCache(reg), table: tbl}
	walk := func(ev change.Event) (walked, []col) {
		t.Helper()
		var rec encode.Record
		if err := enc.Encode(ctx, &ev, &rec); err != nil {
			t.Fatal(err)
		}
		id, body, err := framed(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		w, cols, err := r.walk(ctx, id, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w, cols
	}
	row := func(name string, body change.Value) []change.Value {
		return []change.Value{{Int: 7}, {Str: name}, {Str: "12.50"},
			{Arr: []change.Value{{Str: "a"}, change.NullValue}}, body}
	}
	w1, c1 := walk(change.Event{Op: change.OpRead, Table: tbl, After: row("x", change.Value{Str: "long"})})
	w2, c2 := walk(change.Event{Op: change.OpUpdate, Table: tbl, Before: row("x", change.Value{Str: "long"}),
		After: row("y", change.Value{State: change.Unchanged}), Pos: change.Position{Tx: 0x1234}})
	if w1.op != "r" || !w1.hasAfter || len(c1) != 5 || w2.op != "u" || w2.lsn != 0x1234 {
		t.Fatalf("walked %+v %v / %+v %v", w1, c1, w2, c2)
	}
	if len(w2.unchanged) != 1 || w2.unchanged[0] != "body" || !c2[4].unchanged {
		t.Fatalf("unchanged TOAST: %+v, cols %+v", w2, c2)
	}
	if got := differing(c1, c2); len(got) != 2 || r.list[got[0]] != "name" || r.list[got[1]] != "body" {
		t.Fatalf("differing columns %v (%v)", got, r.list)
	}
	var s state
	s.apply(&entry{cols: c1})
	s.apply(&entry{cols: c2})
	_, c3 := walk(change.Event{Op: change.OpRead, Table: tbl, After: row("y", change.Value{Str: "long"})})
	if d := differing(s.cols, c3); d != nil {
		t.Fatalf("the folded topic state differs from the row in %v", d)
	}
	_, c4 := walk(change.Event{Op: change.OpRead, Table: tbl, After: row("y", change.NullValue)})
	if d := differing(c3, c4); len(d) != 1 || r.list[d[0]] != "body" {
		t.Fatalf("NULL against a value: %v", d)
	}
	wd, _ := walk(change.Event{Op: change.OpDelete, Table: tbl, Before: row("y", change.NullValue)})
	if wd.op != "d" || wd.hasAfter {
		t.Fatalf("delete walked as %+v", wd)
	}
}

// A differing key that cannot be spelled as a snapshot condition is counted as unrepairable
// with its reason, not dropped from the repair silently.
func TestReportCountsUnrepairableKeys(t *testing.T) {
	ks, err := avro.Parse(`{"type":"record","name":"k","fields":[{"name":"id","type":"int"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{{Name: "id", Kind: change.KindInt32, Key: true}}}
	r := &run{cfg: &Config{Examples: 1}, tr: &TableReport{}, table: tbl, keySchema: ks, list: []string{"id"}}
	good, err := avro.Marshal(ks, map[string]any{"id": 7})
	if err != nil {
		t.Fatal(err)
	}
	r.report([]diff{{key: good, kind: Missing}, {key: []byte{0xff}, kind: Different}, {key: []byte{0xff}, kind: Missing}, {key: []byte{0xff}, kind: Extra}})
	if len(r.tr.RepairKeys) != 1 || r.tr.RepairKeys[0][0] != "7" {
		t.Fatalf("repair keys %v, want [[7]]", r.tr.RepairKeys)
	}
	if r.tr.Unrepairable != 2 || r.tr.UnrepairableReason == "" {
		t.Fatalf("unrepairable %d (%q), want 2 with a reason", r.tr.Unrepairable, r.tr.UnrepairableReason)
	}
}
