package dlq

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// An outbox event's dead letter keeps what makes it one, so a replay publishes the event (to
// its topic, payload only, with its headers), not the outbox row as a change of the table.
func TestOutboxEventRoundTrip(t *testing.T) {
	tb := &change.Table{Schema: "public", Name: "outbox", Columns: []change.Column{
		{Name: "id", Kind: change.KindUUID, Key: true}, {Name: "aggregateid", Kind: change.KindString},
		{Name: "payload", Kind: change.KindJSON, Nullable: true}}, KeyColumns: []int{0}}
	row := []change.Value{{Str: "4d47e190-0402-4048-bc2c-89dd54343cdc"}, {Str: "42"}, {Str: `{"a":1}`}}
	ev := &change.Event{Op: change.OpCreate, Table: tb, After: row, Outbox: &change.OutboxEvent{
		Topic: "outbox.event.order", RouteColumn: "aggregatetype",
		Key: row[1], KeyColumn: tb.Columns[1], Payload: row[2], PayloadColumn: tb.Columns[2],
		PayloadSchema: `"string"`,
		Headers:       []change.Header{{Key: "id", Value: []byte(row[0].Str)}, {Key: "type", Value: nil}},
	}}
	_, value, err := Marshal("shop", ev, "value_not_representable", "payload does not fit")
	if err != nil {
		t.Fatal(err)
	}
	var l Letter
	if err := json.Unmarshal(value, &l); err != nil {
		t.Fatal(err)
	}
	got, err := l.Event()
	if err != nil {
		t.Fatal(err)
	}
	if got.Outbox == nil {
		t.Fatalf("the replayed event is no outbox event: %s", value)
	}
	if !reflect.DeepEqual(got.Outbox, ev.Outbox) {
		t.Errorf("outbox event\n got %+v\nwant %+v", got.Outbox, ev.Outbox)
	}
}
