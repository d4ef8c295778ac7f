package encode

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/hamba/avro/v2"
)

func outboxEvent(payload string) *change.Event {
	tb := &change.Table{Schema: "public", Name: "outbox", Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	return &change.Event{Op: change.OpCreate, Table: tb, After: []change.Value{{Int: 1}}, Outbox: &change.OutboxEvent{
		Topic: "outbox.event.order", RouteColumn: "aggregatetype",
		Key: change.Value{Str: "42"}, KeyColumn: change.Column{Name: "aggregateid", Kind: change.KindString},
		Payload: change.Value{Str: payload}, PayloadColumn: change.Column{Name: "payload", Kind: change.KindJSON},
		Headers: []change.Header{{Key: "id", Value: []byte("9")}, {Key: "type", Value: []byte("OrderCreated")}},
	}}
}

// framedAs returns the schema a framed record was registered with and its decoded value.
func framedAs(t *testing.T, reg *fakeRegistry, b []byte) (string, any) {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not Confluent-framed: % x", b)
	}
	s := reg.schema(int(binary.BigEndian.Uint32(b[1:5])))
	var v any
	if err := avro.Unmarshal(parseSchema(t, s), b[5:], &v); err != nil {
		t.Fatalf("decoding with %s: %v", s, err)
	}
	return s, v
}

func TestOutboxEventIsPayloadOnly(t *testing.T) {
	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	var rec Record
	if err := e.Encode(context.Background(), outboxEvent(`{"id": 42, "lines": []}`), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "outbox.event.order" || len(rec.Headers) != 2 || rec.Headers[0].Key != "id" || string(rec.Headers[0].Value) != "9" {
		t.Fatalf("record %s headers %+v", rec.Topic, rec.Headers)
	}
	ks, k := framedAs(t, reg, rec.Key)
	if ks != `"string"` || k != "42" {
		t.Errorf("key %v with schema %s, want \"42\" as an Avro string", k, ks)
	}
	vs, v := framedAs(t, reg, rec.Value)
	if !strings.Contains(vs, `"string"`) || strings.Contains(vs, "record") || v != `{"id": 42, "lines": []}` {
		t.Errorf("value %v with schema %s, want the JSON text as an Avro string", v, vs)
	}
	if _, ok := reg.ids["outbox.event.order-value\x00"+vs]; !ok {
		t.Errorf("the value schema is not under subject outbox.event.order-value: %v", reg.ids)
	}

	// A NULL payload is a null value, a NULL key a null key.
	ev := outboxEvent("")
	ev.Outbox.Payload, ev.Outbox.Key = change.NullValue, change.NullValue
	if err := e.Encode(context.Background(), ev, &rec); err != nil || rec.Key != nil || rec.Value != nil {
		t.Errorf("NULL key and payload: key %x value %x err %v", rec.Key, rec.Value, err)
	}
}

func TestOutboxPayloadParsedAgainstSchema(t *testing.T) {
	schema := `{"type": "record", "name": "OrderCreated", "namespace": "shop", "fields": [
		{"name": "id", "type": "long"},
		{"name": "total", "type": "double"},
		{"name": "note", "type": ["null", "string"], "default": null},
		{"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}, "default": "NEW"},
		{"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
			{"name": "item", "type": "string"}, {"name": "qty", "type": "int"}]}}},
		{"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}}]}`
	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	ev := outboxEvent(`{"id": 42, "total": 39.98, "note": "gift", "lines": [{"item": "book", "qty": 2}], "extra": true}`)
	ev.Outbox.PayloadSchema = schema
	var rec Record
	if err := e.Encode(context.Background(), ev, &rec); err != nil {
		t.Fatal(err)
	}
	m := decodeFramed(t, reg, rec.Value)
	lines, _ := m["lines"].([]any)
	if m["id"] != int64(42) || m["total"] != 39.98 || m["note"] != "gift" || m["status"] != "NEW" || len(lines) != 1 {
		t.Errorf("decoded %v", m)
	}

	for _, c := range []struct{ payload, want string }{
		{`{"id": "42", "total": 1, "lines": []}`, "payload.id: a string is not a long"},
		{`{"total": 1, "lines": []}`, "field id is missing"},
		{`{"id": 1, "total": 1, "lines": [{"item": "x", "qty": 3000000000}]}`, "payload.lines[0].qty"},
		{`{"id": 1, "total": 1, "lines": [], "status": "LOST"}`, "one of NEW, PAID"},
		{`not json`, "not JSON"},
	} {
		ev := outboxEvent(c.payload)
		ev.Outbox.PayloadSchema = schema
		err := e.Encode(context.Background(), ev, &rec)
		if ClassOf(err) != ClassValueNotRepresentable || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "column payload") {
			t.Errorf("payload %s: %v, want a value_not_representable error naming %q", c.payload, err, c.want)
		}
	}
}

func TestOutboxRefusals(t *testing.T) {
	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	var rec Record
	// A table's own change topic is not an outbox topic.
	tb := ordersTable()
	if err := e.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: tb, After: ordersRow(1)}, &rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		topic, want string
		class       Class
	}{
		{"", "names no topic", ClassValueNotRepresentable},
		{"outbox.event.a/b", "not a valid Kafka topic name", ClassValueNotRepresentable},
		{e.Topic(tb), "is the topic of table public.orders", ClassSchemaRejected},
	} {
		ev := outboxEvent("{}")
		ev.Outbox.Topic = c.topic
		err := e.Encode(context.Background(), ev, &rec)
		if ClassOf(err) != c.class || !strings.Contains(err.Error(), c.want) {
			t.Errorf("topic %q: %v, want %s naming %q", c.topic, err, c.class, c.want)
		}
	}
}

// The key keeps its column's Avro type; a bytes payload with a payload schema is JSON too.
func TestOutboxTypedKeyAndBytesPayload(t *testing.T) {
	reg := newFakeRegistry()
	e := newTestEncoder(t, reg)
	ev := outboxEvent("")
	ev.Outbox.Key, ev.Outbox.KeyColumn = change.Value{Int: 42}, change.Column{Name: "aggregateid", Kind: change.KindInt64}
	ev.Outbox.Payload, ev.Outbox.PayloadColumn = change.Value{Bytes: []byte(`{"id": 7}`)}, change.Column{Name: "payload", Kind: change.KindBytes}
	ev.Outbox.PayloadSchema = `{"type": "record", "name": "E", "fields": [{"name": "id", "type": "int"}]}`
	var rec Record
	if err := e.Encode(context.Background(), ev, &rec); err != nil {
		t.Fatal(err)
	}
	if ks, k := framedAs(t, reg, rec.Key); ks != `"long"` || k != int64(42) {
		t.Errorf("key %v (%T) with schema %s, want 42 as an Avro long", k, k, ks)
	}
	if m := decodeFramed(t, reg, rec.Value); m["id"] != 7 {
		t.Errorf("value %v", m)
	}
	// A payload schema on a column that cannot hold JSON text is refused.
	ev.Outbox.Payload, ev.Outbox.PayloadColumn = change.Value{Int: 1}, change.Column{Name: "payload", Kind: change.KindInt32}
	if err := e.Encode(context.Background(), ev, &rec); ClassOf(err) != ClassValueNotRepresentable || !strings.Contains(err.Error(), "parses JSON text") {
		t.Errorf("payload schema on an int column: %v", err)
	}
}
