package window

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
)

// deleteRecord encodes, as a PostgreSQL pipeline would, a delete of order 7 (customer 3,
// 4.50), with its whole old row (REPLICA IDENTITY FULL) or only its key (the default identity).
func deleteRecord(t *testing.T, full bool) (avro.Schema, []byte) {
	t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop"}, nopRegistry{})
	if err != nil {
		t.Fatal(err)
	}
	before := []change.Value{{State: change.Present, Int: 7}, {State: change.Absent}, {State: change.Absent}}
	if full {
		before = []change.Value{{State: change.Present, Int: 7}, {State: change.Present, Int: 3}, {State: change.Present, Str: "4.50"}}
	}
	ev := change.Event{Op: change.OpDelete, Table: ordersTable, Pos: change.Position{Tx: 9}, CommitTime: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		TxID: "2", Before: before}
	var rec encode.Record
	if err := enc.Encode(context.Background(), &ev, &rec); err != nil {
		t.Fatal(err)
	}
	_, value, err := enc.Schemas(ordersTable)
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.ParseWithCache(value, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec.Value[5:]
}

// In events mode a delete counts its before image. Without one (a PostgreSQL table without
// REPLICA IDENTITY FULL sends only the key of a deleted row) there is nothing to count: it was
// counted under a NULL group (time source.ts_ms) or went late as a record without a time
// (time after.<column>). It is an unprocessable record (class need_before_image) whose message
// names the table and the fixes; a delete with its before image counts as before.
func TestEventsModeDeleteWithoutBeforeImage(t *testing.T) {
	for _, tm := range []Path{{"source", "ts_ms"}, {"after", "id"}} {
		sp := ordersJob("shop.public.orders")
		sp.Ops, sp.Time = "cd", tm
		x := newExtractor(sp)

		s, body := deleteRecord(t, true)
		p, err := x.compile(1, s)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := x.extract(p, body, 5, nil)
		if err != nil || len(recs) != 1 || recs[0].Group[0].I != 3 || recs[0].Sign != 1 {
			t.Fatalf("time %s: a delete with its before image gave %+v, %v; want one record of customer 3", tm, recs, err)
		}

		_, body = deleteRecord(t, false)
		recs, err = x.extract(p, body, 6, nil)
		if err == nil {
			t.Fatalf("time %s: a delete without its before image gave %+v; want an unprocessable record", tm, recs)
		}
		if c := unprocessable(err); c != ClassNeedBeforeImage {
			t.Errorf("time %s: class %q, want %q (%v)", tm, c, ClassNeedBeforeImage, err)
		}
		for _, want := range []string{"delete", "public.orders", "ALTER TABLE public.orders REPLICA IDENTITY FULL", "input.ops"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("time %s: the error does not say %q: %v", tm, want, err)
			}
		}
		if len(recs) != 0 {
			t.Errorf("time %s: records %+v beside the error", tm, recs)
		}

		if got := sp.BeforeImageNeed(); !strings.Contains(got, "delete") {
			t.Errorf("time %s: BeforeImageNeed() = %q, want the reason", tm, got)
		}

		// A job that does not select deletes ignores it, as any op it does not select.
		sp.Ops = "c"
		x = newExtractor(sp)
		if p, err = x.compile(1, s); err != nil {
			t.Fatal(err)
		}
		if recs, err := x.extract(p, body, 6, nil); err != nil || len(recs) != 0 {
			t.Errorf("time %s, ops c: a delete gave %+v, %v; want nothing", tm, recs, err)
		}
		if got := sp.BeforeImageNeed(); got != "" {
			t.Errorf("time %s, ops c: BeforeImageNeed() = %q, want none", tm, got)
		}
	}

	// A job that reads no row column (changes per minute of commit time) counts a delete
	// without its before image as any other change.
	sp := ordersJob("shop.public.orders")
	sp.Ops, sp.GroupBy, sp.Aggs = "", nil, []AggSpec{{Name: "changes", Fn: FnCount}}
	x := newExtractor(sp)
	s, body := deleteRecord(t, false)
	p, err := x.compile(1, s)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := x.extract(p, body, 6, nil); err != nil || len(recs) != 1 || recs[0].T != time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMicro() {
		t.Errorf("a count of changes by source.ts_ms: a delete without its before image gave %+v, %v; want one record", recs, err)
	}
	if got := sp.BeforeImageNeed(); got != "" {
		t.Errorf("a count of changes: BeforeImageNeed() = %q, want none", got)
	}
	sp.Mode = ModeTable
	if got := sp.BeforeImageNeed(); !strings.Contains(got, "mode table") {
		t.Errorf("mode table: BeforeImageNeed() = %q", got)
	}
}
