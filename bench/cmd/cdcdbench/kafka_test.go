package main

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// An envelope as cdcd writes it (before and after nullable, a source block), Confluent-framed.
const testEnvelopeSchema = `{"type":"record","name":"Envelope","namespace":"bench","fields":[
 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
   {"name":"id","type":"long"},{"name":"a","type":"int"},{"name":"b","type":"string"},
   {"name":"c","type":{"type":"long","logicalType":"timestamp-micros"}}]}],"default":null},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"source","type":{"type":"record","name":"Source","fields":[
   {"name":"connector","type":"string"},{"name":"lsn","type":["null","long"]},{"name":"ts_ms","type":"long"}]}},
 {"name":"op","type":"string"},
 {"name":"ts_ms","type":["null","long"]}]}`

func framed(t testing.TB, sch avro.Schema, id int, v any) []byte {
	t.Helper()
	b, err := avro.Marshal(sch, v)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, b...)
}

func testEnvelope(c time.Time, withAfter bool) map[string]any {
	row := map[string]any{"id": int64(7), "a": int32(1), "b": "padding", "c": c}
	env := map[string]any{"before": nil, "after": nil,
		"source": map[string]any{"connector": "postgresql", "lsn": map[string]any{"long": int64(99)}, "ts_ms": int64(1)},
		"op":     "c", "ts_ms": map[string]any{"long": int64(2)}}
	if withAfter {
		env["after"] = map[string]any{"bench.Value": row}
	}
	return env
}

// The latency consumer reads after.c of cdcd's envelope, and only that.
func TestLatencyConsumerReadsAfterC(t *testing.T) {
	sch := avro.MustParse(testEnvelopeSchema)
	c := &latencyConsumer{format: formatAvro, schemas: map[int]avro.Schema{3: sch}}
	at := time.Date(2026, 12, 7, 18, 30, 1, 123456000, time.UTC)
	got, err := c.sourceTime(context.Background(), framed(t, sch, 3, testEnvelope(at, true)))
	if err != nil {
		t.Fatal(err)
	}
	if got != at.UnixNano() {
		t.Errorf("after.c = %v, want %v", time.Unix(0, got).UTC(), at)
	}
	if _, err := c.sourceTime(context.Background(), framed(t, sch, 3, testEnvelope(at, false))); err == nil {
		t.Error("an envelope without after gave no error")
	}
	if _, err := c.sourceTime(context.Background(), []byte("{}")); err == nil {
		t.Error("a value that is not Confluent-framed Avro gave no error")
	}
}

func BenchmarkLatencyConsumerAvro(b *testing.B) {
	sch := avro.MustParse(testEnvelopeSchema)
	c := &latencyConsumer{format: formatAvro, schemas: map[int]avro.Schema{3: sch}}
	v := framed(b, sch, 3, testEnvelope(time.Now(), true))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.sourceTime(context.Background(), v); err != nil {
			b.Fatal(err)
		}
	}
}

// Debezium's records, for comparison: a JSON envelope without schemas, as JsonConverter writes it.
func BenchmarkLatencyConsumerJSON(b *testing.B) {
	v := []byte(`{"before":null,"after":{"id":100000123,"a":7,"b":"padding padding padding","c":"2026-12-07T18:30:01.123456Z"},` +
		`"source":{"version":"3.6.1.Final","connector":"postgresql","name":"bench","ts_ms":1765132201123,"snapshot":"false",` +
		`"db":"cdcdbench","sequence":"[\"123456\",\"123457\"]","ts_us":1765132201123456,"ts_ns":1765132201123456000,` +
		`"schema":"public","table":"bench_rows","txId":1234,"lsn":123457,"xmin":null},` +
		`"transaction":null,"op":"c","ts_ms":1765132201130,"ts_us":1765132201130123,"ts_ns":1765132201130123456}`)
	c := &latencyConsumer{format: formatJSON}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.sourceTime(context.Background(), v); err != nil {
			b.Fatal(err)
		}
	}
}

// Debezium's and the bare pipelines' JSON envelopes give after.c; one without after is an error.
func TestJSONSourceTime(t *testing.T) {
	at := time.Date(2026, 12, 7, 18, 30, 1, 123456000, time.UTC)
	for _, v := range []string{
		`{"before":null,"after":{"id":1,"a":7,"b":"pad","c":"2026-12-07T18:30:01.123456Z"},"source":{"ts_ms":1},"op":"c"}`,
		`{"after":{"c":"2026-12-07T18:30:01.123456Z"},"pad":"xxxx"}`,
		`{"after": {"id": 1, "c": "2026-12-07T18:30:01.123456Z"}}`, // spaced: the full decode reads it
	} {
		got, err := jsonSourceTime([]byte(v))
		if err != nil || got != at.UnixNano() {
			t.Errorf("%s: %v, %v; want %v", v, time.Unix(0, got).UTC(), err, at)
		}
	}
	for _, v := range []string{`{"before":{"c":"2026-12-07T18:30:01Z"},"after":null}`, `{"after":{"c":"not a time"}}`, `not json`} {
		if _, err := jsonSourceTime([]byte(v)); err == nil {
			t.Errorf("%s: no error", v)
		}
	}
}
