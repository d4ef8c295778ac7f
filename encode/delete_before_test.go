package encode

import (
	"context"
	"reflect"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// With the default replica identity PostgreSQL sends only the old key of a deleted row. In
// the default mode before is then null (cdcd writes no value it was not given); in Debezium's
// modes it is written as Debezium writes it, the key and null for the columns not sent, since
// Debezium's JDBC sink deletes by it. A column that cannot be null keeps before null.
func TestDeleteBeforeInDebeziumModes(t *testing.T) {
	tbl := &change.Table{Schema: "public", Name: "t", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "note", Kind: change.KindString, Nullable: true}}}
	strict := &change.Table{Schema: "public", Name: "s", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "note", Kind: change.KindString}}}
	del := func(t *change.Table) *change.Event {
		return &change.Event{Op: change.OpDelete, Table: t, Before: []change.Value{{Int: 7}, {State: change.Absent}}}
	}
	for _, c := range []struct {
		mode, connector string
		tbl             *change.Table
		want            any
	}{
		{ModeAvro, "postgresql", tbl, nil},
		{TimeAdaptive, "postgresql", tbl, map[string]any{"id": int64(7), "note": nil}},
		{TimeConnect, "postgresql", tbl, map[string]any{"id": int64(7), "note": nil}},
		{TimeAdaptive, "mysql", strict, nil},
	} {
		reg := newFakeRegistry()
		e, err := New(Config{Pipeline: "p", Connector: c.connector, TimePrecision: c.mode}, reg)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := e.Encode(context.Background(), del(c.tbl), &rec); err != nil {
			t.Fatalf("%s %s: %v", c.mode, c.tbl.Name, err)
		}
		got := decodeFramed(t, reg, rec.Value)["before"]
		if c.want == nil && got != nil || c.want != nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s %s: before = %#v, want %#v", c.connector, c.mode, c.tbl.Name, got, c.want)
		}
	}
}
