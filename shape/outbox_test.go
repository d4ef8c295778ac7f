package shape

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

func outboxTable() *change.Table {
	return &change.Table{Schema: "public", Name: "outbox", Columns: []change.Column{
		{Name: "id", Kind: change.KindUUID, Key: true}, {Name: "aggregatetype", Kind: change.KindString},
		{Name: "aggregateid", Kind: change.KindString}, {Name: "type", Kind: change.KindString},
		{Name: "payload", Kind: change.KindJSON}, {Name: "seq", Kind: change.KindInt64}, {Name: "secret", Kind: change.KindString}},
		KeyColumns: []int{0}}
}

func outboxRow(id, typ, agg, evType, payload string, seq int64) []change.Value {
	return []change.Value{{Str: id}, {Str: typ}, {Str: agg}, {Str: evType}, {Str: payload}, {Int: seq}, {Str: "CANARY"}}
}

func TestOutboxRoutesInserts(t *testing.T) {
	tb := outboxTable()
	rules := Rules{"public.outbox": {Exclude: []string{"secret"}, Outbox: &Outbox{Headers: []string{"type", "seq"}}}}
	row := outboxRow("4d47e190-0402-4048-bc2c-89dd54343cdc", "order", "42", "OrderCreated", `{"id":42}`, 7)
	items := []change.Item{
		{Event: change.Event{Op: change.OpCreate, Table: tb, After: row}},
		{Event: change.Event{Op: change.OpUpdate, Table: tb, Before: row, After: row}},
		{Event: change.Event{Op: change.OpDelete, Table: tb, Before: row}},
		{Event: change.Event{Op: change.OpRead, Table: tb, After: row}},
		{Event: change.Event{Op: change.OpTruncate, Table: tb}},
		{Event: change.Event{Op: change.OpCreate, Table: tb, After: outboxRow("5", "customer", "7", "Moved", `{}`, 8)}},
		{Commit: &change.Commit{}},
	}
	got, err := run(t, rules, items)
	if err == nil || err.Error() != "source done" {
		t.Fatalf("err %v", err)
	}
	if len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("want two events and the commit (updates, deletes, reads and truncates are no events), got %+v", got)
	}
	o := got[0][0].Event.Outbox
	if o == nil {
		t.Fatal("the insert is no outbox event")
	}
	if o.Topic != "outbox.event.order" || o.Key.Str != "42" || o.KeyColumn.Name != "aggregateid" ||
		o.Payload.Str != `{"id":42}` || o.PayloadColumn.Kind != change.KindJSON {
		t.Errorf("outbox event %+v", o)
	}
	wantHeaders := []change.Header{{Key: "id", Value: []byte("4d47e190-0402-4048-bc2c-89dd54343cdc")}, {Key: "type", Value: []byte("OrderCreated")}, {Key: "seq", Value: []byte("7")}}
	if len(o.Headers) != len(wantHeaders) {
		t.Fatalf("headers %+v", o.Headers)
	}
	for i, h := range wantHeaders {
		if o.Headers[i].Key != h.Key || !bytes.Equal(o.Headers[i].Value, h.Value) {
			t.Errorf("header %d: %s=%q, want %s=%q", i, o.Headers[i].Key, o.Headers[i].Value, h.Key, h.Value)
		}
	}
	for _, v := range got[0][0].Event.After {
		if v.Str == "CANARY" {
			t.Error("a column shape excludes is still in the event")
		}
	}
	if o2 := got[0][1].Event.Outbox; o2 == nil || o2.Topic != "outbox.event.customer" || o2.Key.Str != "7" {
		t.Errorf("second event %+v", o2)
	}
}

func TestOutboxFixedTopicNullRouteAndRenamedColumns(t *testing.T) {
	tb := &change.Table{Schema: "public", Name: "events", Columns: []change.Column{
		{Name: "event_id", Kind: change.KindInt64, Key: true}, {Name: "kind", Kind: change.KindString, Nullable: true},
		{Name: "order_id", Kind: change.KindInt64}, {Name: "body", Kind: change.KindBytes}}, KeyColumns: []int{0}}
	row := func(kind change.Value) []change.Value {
		return []change.Value{{Int: 9}, kind, {Int: 42}, {Bytes: []byte("{}")}}
	}
	cfg := Outbox{ID: "event_id", Key: "order_id", Payload: "body", RouteBy: "kind"}
	for _, c := range []struct {
		topic, want string
		kind        change.Value
	}{
		{"", "outbox.event.Order", change.Value{Str: "Order"}},
		{"", "", change.NullValue},                           // no topic: the encoder refuses it as a poison record
		{"", "", change.Value{Str: ""}},                      // likewise
		{"orders.events", "orders.events", change.NullValue}, // no placeholder: route_by unused
		{"ev.${routedByValue}.v1", "ev.Order.v1", change.Value{Str: "Order"}},
	} {
		o := cfg
		o.Topic = c.topic
		got, _ := run(t, Rules{"public.events": {Outbox: &o}}, []change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: row(c.kind)}}})
		ev := got[0][0].Event.Outbox
		if ev == nil || ev.Topic != c.want || ev.Key.Int != 42 || string(ev.Headers[0].Value) != "9" || ev.Headers[0].Key != "id" || string(ev.Payload.Bytes) != "{}" {
			t.Errorf("topic %q, kind %+v: %+v, want topic %q", c.topic, c.kind, ev, c.want)
		}
	}
}

func TestOutboxUpdateFailsWhenAsked(t *testing.T) {
	tb := outboxTable()
	row := outboxRow("1", "order", "42", "OrderCreated", `{}`, 1)
	_, err := run(t, Rules{"public.outbox": {Outbox: &Outbox{FailOnUpdate: true}}},
		[]change.Item{{Event: change.Event{Op: change.OpUpdate, Table: tb, Before: row, After: row}}})
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "on_update") {
		t.Fatalf("an update of an outbox table with on_update: fail gave %v", err)
	}
}

func TestOutboxMissingColumnIsRefused(t *testing.T) {
	tb := outboxTable()
	for _, rule := range []Columns{
		{Outbox: &Outbox{Payload: "body"}},
		{Exclude: []string{"aggregateid"}, Outbox: &Outbox{}},
		{Outbox: &Outbox{Headers: []string{"nope"}}},
	} {
		_, err := run(t, Rules{"public.outbox": rule},
			[]change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: outboxRow("1", "order", "42", "T", `{}`, 1)}}})
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "is not a published column") {
			t.Errorf("rule %+v: %v", rule, err)
		}
	}
}

// A filter on an outbox table selects events; deletes (the old row holds only the key without
// REPLICA IDENTITY FULL) and updates are no events, so the filter never needs their old rows.
func TestOutboxFilterIgnoresDeletesAndUpdates(t *testing.T) {
	tb := outboxTable()
	absent := change.Value{State: change.Absent}
	keyOnly := []change.Value{{Str: "1"}, absent, absent, absent, absent, absent, absent}
	rules := Rules{"public.outbox": {Filter: "aggregatetype = 'order'", Outbox: &Outbox{}}}
	got, err := run(t, rules, []change.Item{
		{Event: change.Event{Op: change.OpCreate, Table: tb, After: outboxRow("1", "order", "42", "T", `{}`, 1)}},
		{Event: change.Event{Op: change.OpCreate, Table: tb, After: outboxRow("2", "customer", "42", "T", `{}`, 2)}},
		{Event: change.Event{Op: change.OpDelete, Table: tb, Before: keyOnly}},
		{Event: change.Event{Op: change.OpUpdate, Table: tb, Before: keyOnly, After: outboxRow("1", "order", "42", "U", `{}`, 1)}},
		{Commit: &change.Commit{}},
	})
	if err == nil || err.Error() != "source done" {
		t.Fatalf("err %v", err)
	}
	if len(got) != 1 || len(got[0]) != 2 || got[0][0].Event.Outbox == nil || got[0][0].Event.Outbox.Topic != "outbox.event.order" {
		t.Fatalf("want the order event and the commit, got %+v", got)
	}
}
