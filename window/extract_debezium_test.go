package window

import (
	"context"
	"strings"
	"testing"

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
	for col, want := range map[string]int64{"ts": 1, "ts3": 1000, "d": 86_400_000_000, "n": 1000} {
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
