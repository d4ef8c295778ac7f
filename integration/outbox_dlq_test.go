package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOutboxPayloadSchemaDeadLetterAndReplay: with payload_schema the JSON payload is published
// as an Avro record of that schema; a payload that does not fit, and a row that names no topic,
// become dead letters (on_error: dlq) while the events around them are published; replayed
// once the schema is fixed (a default for the missing field), the dead event is published as
// the event — to its topic, payload only, with its headers — not as a change of the table.
func TestOutboxPayloadSchemaDeadLetterAndReplay(t *testing.T) {
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_outbox_dlq", `CREATE TABLE outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
		aggregatetype text, aggregateid text NOT NULL, type text NOT NULL, payload jsonb)`)
	name := uniqueName("obdlq")
	v1 := `{"type": "record", "name": "OrderEvent", "namespace": "shop", "fields": [{"name": "id", "type": "long"}, {"name": "status", "type": "string"}]}`
	v2 := strings.Replace(v1, `"type": "string"}`, `"type": "string", "default": "NEW"}`, 1)
	cfg := func(schema string) string {
		extra := "    on_error: dlq\n    outbox:\n      public.outbox:\n        topic: \"" + name + ".$${routedByValue}\"\n" +
			"        headers: [type]\n        payload_schema: '" + schema + "'\n"
		return pipelineYAML(s, name, dsn, []string{"public.outbox"}, extra)
	}
	d := startQuietDaemon(t, cfg(v1))
	d.waitReady(90 * time.Second)
	insert := func(typ, agg, payload string) {
		t.Helper()
		if _, err := db.Exec(ctx, `INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ($1, $2, 'Created', $3)`, typ, agg, payload); err != nil {
			t.Fatal(err)
		}
	}
	insert("order", "1", `{"id": 1, "status": "PAID", "extra": true}`)
	insert("order", "2", `{"id": 2}`) // no status: does not fit v1
	insert("order", "3", `{"id": 3, "status": "NEW"}`)

	topic := name + ".order"
	events := newConsumer(t, s, topic)
	got := events.read(t, 2, time.Minute, 2*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d events published, want 2", len(got))
	}
	for i, want := range []int64{1, 3} {
		v := events.decode(t, got[i].Value)
		if v["id"] != want || len(v) != 2 || headerOf(got[i], "type") != "Created" || len(headerOf(got[i], "id")) != 36 {
			t.Errorf("event %d: value %v headers %v, want the payload as an OrderEvent record with id %d", i, v, got[i].Headers, want)
		}
		if k, _ := events.decodeAny(t, got[i].Key); k != fmt.Sprint(want) {
			t.Errorf("event %d keyed %v", i, k)
		}
	}
	letters := newConsumer(t, s, name+".dlq")
	dl := letters.read(t, 1, time.Minute, 2*time.Second)
	if len(dl) != 1 || headerOf(dl[0], "cdcd.error.class") != "value_not_representable" || headerOf(dl[0], "cdcd.topic") != topic ||
		!strings.Contains(headerOf(dl[0], "cdcd.error.message"), "field status is missing") {
		t.Fatalf("dead letters %d: %v", len(dl), dl)
	}

	// Replay with the fixed schema publishes the event as an event.
	fixed := writeConfig(t, strings.ReplaceAll(cfg(v2), "HTTP_ADDR", freePort(t)))
	out, err := execCmd(cdcdBin, "dlq", "replay", "--config", fixed, "--pipeline", name)
	if err != nil || !strings.Contains(out, "replayed 1 dead letter") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	re := events.read(t, 1, time.Minute, 2*time.Second)
	if len(re) != 1 {
		t.Fatalf("replay published %d events, want 1", len(re))
	}
	if v := events.decode(t, re[0].Value); v["id"] != int64(2) || v["status"] != "NEW" || headerOf(re[0], "type") != "Created" || len(headerOf(re[0], "id")) != 36 {
		t.Errorf("replayed event %v headers %v", v, re[0].Headers)
	}

	// A row that names no topic is a dead letter too; the pipeline goes on.
	insert("", "4", `{"id": 4, "status": "NEW"}`)
	insert("order", "5", `{"id": 5, "status": "NEW"}`)
	if more := letters.read(t, 1, time.Minute, time.Second); len(more) != 1 || !strings.Contains(headerOf(more[0], "cdcd.error.message"), "names no topic") {
		t.Fatalf("dead letter of a row without topic: %v", more)
	}
	if next := events.read(t, 1, time.Minute, time.Second); len(next) != 1 || events.decode(t, next[0].Value)["id"] != int64(5) {
		t.Fatalf("the event after the dead letter: %v", next)
	}
}
