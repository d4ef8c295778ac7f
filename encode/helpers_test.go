package encode

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/hamba/avro/v2"
)

// fakeRegistry is an in-memory Registry that hands out ids per distinct (subject, schema)
// and can be told to refuse.
type fakeRegistry struct {
	mu       sync.Mutex
	schemas  map[int]string
	ids      map[string]int
	calls    int
	ensures  int
	reject   error // returned by Register when set
	effLevel string
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{schemas: map[int]string{}, ids: map[string]int{}}
}

func (f *fakeRegistry) Register(_ context.Context, subject, schema string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.reject != nil {
		return 0, f.reject
	}
	k := subject + "\x00" + schema
	if id, ok := f.ids[k]; ok {
		return id, nil
	}
	id := len(f.schemas) + 1
	f.schemas[id] = schema
	f.ids[k] = id
	return id, nil
}

func (f *fakeRegistry) EnsureCompatibility(_ context.Context, _, level string) (Compatibility, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ensures++
	if f.effLevel != "" {
		return Compatibility{Level: f.effLevel, Own: true}, nil
	}
	return Compatibility{Level: level, Set: true}, nil
}

func (f *fakeRegistry) schema(id int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.schemas[id]
}

var testNow = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

func newTestEncoder(t testing.TB, reg Registry) *Encoder {
	t.Helper()
	e, err := New(Config{
		Pipeline:    "shop",
		Connector:   "postgresql",
		Version:     "1.2.3",
		TopicPrefix: "shop",
		Now:         func() time.Time { return testNow },
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// parseSchema parses with a private cache: hamba's default cache is global and would mix
// the named types of different table versions.
func parseSchema(t testing.TB, s string) avro.Schema {
	t.Helper()
	sch, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("schema does not parse: %v\n%s", err, s)
	}
	return sch
}

var bigReader = avro.Config{MaxByteSliceSize: 64 << 20}.Freeze()

// decodeFramed decodes Confluent-framed bytes with hamba/avro, using the schema the
// registry holds for the embedded id, and checks that every byte was consumed. Union
// wrappers are removed, so a nullable field decodes to nil or its value.
func decodeFramed(t testing.TB, reg *fakeRegistry, b []byte) map[string]any {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not Confluent-framed: % x", b)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s := reg.schema(id)
	if s == "" {
		t.Fatalf("schema id %d not registered", id)
	}
	return decodeWith(t, parseSchema(t, s), b[5:])
}

func decodeWith(t testing.TB, sch avro.Schema, b []byte) map[string]any {
	t.Helper()
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(bigReader)).Reset(b)
	v := r.ReadNext(sch)
	if r.Error != nil {
		t.Fatalf("decoding: %v", r.Error)
	}
	r.Peek()
	if r.Error != io.EOF {
		t.Fatalf("decoding left bytes over")
	}
	m, ok := unwrap(sch, v).(map[string]any)
	if !ok {
		t.Fatalf("decoded %T, want a record", v)
	}
	return m
}

// unwrap removes hamba's union wrappers ({"type-name": value}) using the schema.
func unwrap(s avro.Schema, v any) any {
	switch s := s.(type) {
	case *avro.RefSchema:
		return unwrap(s.Schema(), v)
	case *avro.UnionSchema:
		if v == nil {
			return nil
		}
		m := v.(map[string]any)
		for _, ts := range s.Types() {
			if ts.Type() == avro.Null {
				continue
			}
			for _, inner := range m {
				return unwrap(ts, inner)
			}
		}
		return v
	case *avro.RecordSchema:
		m := v.(map[string]any)
		for _, f := range s.Fields() {
			m[f.Name()] = unwrap(f.Type(), m[f.Name()])
		}
		return m
	case *avro.ArraySchema:
		a := v.([]any)
		for i := range a {
			a[i] = unwrap(s.Items(), a[i])
		}
		return a
	}
	return v
}

// ordersTable is the representative table of the golden test and the benchmark.
func ordersTable() *change.Table {
	return &change.Table{
		Database: "shop", Schema: "public", Name: "orders", Version: 1,
		Columns: []change.Column{
			{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "customer_id", Kind: change.KindInt32, SourceType: "integer"},
			{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"},
			{Name: "status", Kind: change.KindEnum, SourceType: "order_status"},
			{Name: "created_at", Kind: change.KindTimestampTZ, SourceType: "timestamp with time zone"},
			{Name: "note", Kind: change.KindString, Nullable: true, SourceType: "text"},
		},
		KeyColumns: []int{0},
	}
}

func ordersRow(id int64) []change.Value {
	return []change.Value{
		{Int: id},
		{Int: 42},
		{Str: "1234.50"},
		{Str: "paid"},
		{Int: 1714979289123456},
		{Str: "leave at the door ✓"},
	}
}

func hexDump(b []byte) string {
	var buf bytes.Buffer
	for i, c := range b {
		if i > 0 && i%32 == 0 {
			buf.WriteByte('\n')
		}
		fmt.Fprintf(&buf, "%02x", c)
	}
	buf.WriteByte('\n')
	return buf.String()
}
