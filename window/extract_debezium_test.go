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

// TestTimeUnitOfDebeziumTypes: in a pipeline's Debezium time modes timestamps are plain
// longs named by connect.name; a window job must read io.debezium.time.MicroTimestamp as µs
// (it read it as ms, 1000 times too late) and Date as days, and refuse the ones that are no
// point in time.
func TestTimeUnitOfDebeziumTypes(t *testing.T) {
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, SourceType: "bigint"},
		{Name: "ts", Kind: change.KindTimestamp, SourceType: "timestamp without time zone"},
		{Name: "ts3", Kind: change.KindTimestamp, SourceType: "timestamp(3) without time zone"},
		{Name: "d", Kind: change.KindDate, SourceType: "date"},
		{Name: "tstz", Kind: change.KindTimestampTZ, SourceType: "timestamp with time zone"},
		{Name: "tm", Kind: change.KindTime, SourceType: "time without time zone"},
		{Name: "n", Kind: change.KindInt64, SourceType: "bigint"},
	}}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TimePrecision: encode.TimeAdaptive}, nopRegistry{})
	if err != nil {
		t.Fatal(err)
	}
	_, value, err := enc.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	env, err := avro.ParseWithCache(value, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]int64{"ts": 1, "ts3": 1000, "d": dayMicros, "n": 1000} {
		if got, err := timeUnit(env, Path{Root: "after", Field: col}); err != nil || got != want {
			t.Errorf("after.%s: unit %d, %v; want %d", col, got, err, want)
		}
	}
	for _, col := range []string{"tstz", "tm"} {
		if _, err := timeUnit(env, Path{Root: "after", Field: col}); err == nil || !strings.Contains(err.Error(), "io.debezium.time.") {
			t.Errorf("after.%s: %v, want a refusal naming the Debezium type", col, err)
		}
	}
}

// nopRegistry satisfies encode.New; Schemas never calls it.
type nopRegistry struct{}

func (nopRegistry) Register(context.Context, string, string) (int, error) { return 1, nil }
func (nopRegistry) EnsureCompatibility(context.Context, string, string) (encode.Compatibility, error) {
	return encode.Compatibility{}, nil
}

// TestDebeziumLocalTimesReadInTheTimeZone: in the Debezium time modes a timestamp without
// time zone is a plain long (io.debezium.time.Timestamp / MicroTimestamp) or Kafka Connect's
// Timestamp, and a date io.debezium.time.Date or Connect's Date: all are wall-clock values,
// read in the job's time_zone like the Avro local-timestamp types. They were read as UTC.
func TestDebeziumLocalTimesReadInTheTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, SourceType: "bigint"},
		{Name: "ts", Kind: change.KindTimestamp, SourceType: "timestamp without time zone"},
		{Name: "ts3", Kind: change.KindTimestamp, SourceType: "timestamp(3) without time zone"},
		{Name: "d", Kind: change.KindDate, SourceType: "date"},
	}}
	wall := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC) // 09:00 on the wall clock
	day := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []string{"", encode.TimeAdaptive, encode.TimeAdaptiveMicroseconds, encode.TimeConnect} {
		enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TimePrecision: mode}, nopRegistry{})
		if err != nil {
			t.Fatal(err)
		}
		_, value, err := enc.Schemas(tbl)
		if err != nil {
			t.Fatal(err)
		}
		env, err := avro.ParseWithCache(value, "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		for col, want := range map[string]time.Time{"ts": time.Date(2026, 7, 1, 9, 0, 0, 0, ny), "ts3": time.Date(2026, 7, 1, 9, 0, 0, 0, ny),
			"d": time.Date(2026, 7, 1, 0, 0, 0, 0, ny)} {
			s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", col}, Mode: ModeEvents, TimeZone: ny}
			p, err := newExtractor(s).compile(1, env)
			if err != nil {
				t.Fatalf("%s after.%s: %v", mode, col, err)
			}
			// The field as the reader yields it: a timestamp logical type in µs, else the raw
			// long or int in its unit.
			raw := wall.UnixMicro()
			switch {
			case col == "d" && p.timeMul == dayMicros:
				raw = day.Unix() / 86400
			case col == "d":
				raw = day.UnixMicro()
			case p.timeMul != 0:
				raw = wall.UnixMicro() / p.timeMul
			}
			if got := p.eventTime(Value{Kind: KindLong, I: raw}); got != want.UnixMicro() {
				t.Errorf("time_precision %q, after.%s (timeMul %d): got %s, want %s (the wall-clock time in New York)",
					mode, col, p.timeMul, time.UnixMicro(got).UTC(), want.UTC())
			}
		}
	}
}

// TestNanoTimestampReadInTheTimeZone: io.debezium.time.NanoTimestamp (ns, no zone), which
// other Debezium producers write, is read as ns in the job's time zone.
func TestNanoTimestampReadInTheTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	env, err := avro.Parse(`{"type":"record","name":"E","fields":[{"name":"op","type":"string"},
		{"name":"before","type":["null",{"type":"record","name":"R","fields":[
			{"name":"ts","type":{"type":"long","connect.version":1,"connect.name":"io.debezium.time.NanoTimestamp"}}]}]},
		{"name":"after","type":["null","R"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	s := &Spec{Name: "j", Topics: []string{"in"}, Time: Path{"after", "ts"}, Mode: ModeEvents, TimeZone: ny}
	p, err := newExtractor(s).compile(1, env)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	if got, want := p.eventTime(Value{Kind: KindLong, I: wall.UnixNano() + 999}), time.Date(2026, 7, 1, 9, 0, 0, 0, ny).UnixMicro(); got != want {
		t.Errorf("got %s, want %s", time.UnixMicro(got).UTC(), time.UnixMicro(want).UTC())
	}
}
