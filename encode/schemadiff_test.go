package encode

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// TestDiffSchemas: each kind of table change is described in terms of columns, and judged
// against BACKWARD (new readers, old records) and FORWARD (old readers, new records) as Avro
// schema resolution does.
func TestDiffSchemas(t *testing.T) {
	enc := newTestEncoder(t, newFakeRegistry())
	schemas := func(mod func(tbl *change.Table)) (key, value string) {
		tbl := ordersTable()
		mod(tbl)
		k, v, err := enc.Schemas(tbl)
		if err != nil {
			t.Fatal(err)
		}
		return k, v
	}
	baseKey, base := schemas(func(*change.Table) {})
	tests := []struct {
		name         string
		mod          func(tbl *change.Table)
		key          bool
		want         string
		back, fwd    bool
		wantNoChange bool
	}{
		{name: "type changed", mod: func(tbl *change.Table) {
			tbl.Columns[1].Kind, tbl.Columns[1].SourceType = change.KindString, "text"
		}, want: "column customer_id changed type from int (integer) to string (text)", back: true, fwd: true},
		{name: "type widened", mod: func(tbl *change.Table) {
			tbl.Columns[1].Kind, tbl.Columns[1].SourceType = change.KindInt64, "bigint"
		}, want: "column customer_id changed type from int (integer) to long (bigint)", back: false, fwd: true},
		{name: "NOT NULL column added", mod: func(tbl *change.Table) {
			tbl.Columns = append(tbl.Columns, change.Column{Name: "coupon", Kind: change.KindString, SourceType: "text"})
		}, want: "column coupon was added without a default (string (text))", back: true},
		{name: "nullable column added", mod: func(tbl *change.Table) {
			tbl.Columns = append(tbl.Columns, change.Column{Name: "coupon", Kind: change.KindString, Nullable: true, SourceType: "text"})
		}, want: "column coupon was added (nullable string (text), with a default)"},
		{name: "NOT NULL column removed", mod: func(tbl *change.Table) {
			tbl.Columns = tbl.Columns[:3] // drops status, created_at, note
		}, want: "column status was removed, and it had no default (string (order_status))", fwd: true},
		{name: "nullability removed", mod: func(tbl *change.Table) {
			tbl.Columns[5].Nullable = false
		}, want: "column note became NOT NULL (it was nullable)", back: true},
		{name: "nullability added", mod: func(tbl *change.Table) {
			tbl.Columns[1].Nullable = true
		}, want: "column customer_id became nullable (it was NOT NULL)", fwd: true},
		{name: "decimal scale changed", mod: func(tbl *change.Table) {
			tbl.Columns[2].Scale, tbl.Columns[2].SourceType = 3, "numeric(10,3)"
		}, want: "column total changed type from decimal(10,2) (numeric(10,2)) to decimal(10,3) (numeric(10,3))"},
		{name: "key type changed", key: true, mod: func(tbl *change.Table) {
			tbl.Columns[0].Kind, tbl.Columns[0].SourceType = change.KindString, "text"
		}, want: "key column id changed type from long (bigint) to string (text)", back: true, fwd: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, v := schemas(tc.mod)
			old, cur := base, v
			if tc.key {
				old, cur = baseKey, k
			}
			changes, err := diffSchemas(old, cur)
			if err != nil {
				t.Fatal(err)
			}
			var found *schemaChange
			var all []string
			for i := range changes {
				all = append(all, changes[i].what)
				if changes[i].what == tc.want {
					found = &changes[i]
				}
			}
			if found == nil {
				t.Fatalf("changes %q, want %q", all, tc.want)
			}
			if found.breaksBackward != tc.back || found.breaksForward != tc.fwd {
				t.Errorf("%s: breaks backward %v forward %v, want %v %v", tc.want, found.breaksBackward, found.breaksForward, tc.back, tc.fwd)
			}
			for _, c := range changes {
				if strings.Contains(c.what, "field after") || strings.Contains(c.what, "field before") {
					t.Errorf("envelope noise: %s", c.what)
				}
			}
		})
	}
	if changes, err := diffSchemas(base, base); err != nil || len(changes) != 0 {
		t.Errorf("same schema: %v, %v", changes, err)
	}
}

// FuzzDiffSchemas: whatever a registry hands back, comparing never panics.
func FuzzDiffSchemas(f *testing.F) {
	_, v, _ := newTestEncoder(f, newFakeRegistry()).Schemas(ordersTable())
	f.Add(v, `{"type":"record","name":"Value","fields":[{"name":"a","type":["null","int"],"default":null}]}`)
	f.Add(`{"type":"enum","name":"E"}`, `{"type":"array"}`)
	f.Add(`"string"`, `[{"type":"map","values":"long"},"null"]`)
	recursive := `{"type":"record","name":"R","fields":[{"name":"next","type":["null",{"type":"array","items":"R"}]}]}`
	f.Add(recursive, strings.Replace(recursive, `"null",`, "", 1))
	f.Fuzz(func(t *testing.T, old, new string) {
		changes, err := diffSchemas(old, new)
		if err == nil && old == new && len(changes) != 0 {
			t.Errorf("a schema differs from itself: %v", changes)
		}
	})
}
