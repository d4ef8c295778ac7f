package integration

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
)

// modesTable has a column of every type a type mode changes.
func modesTable() *change.Table {
	return &change.Table{Database: "shop", Schema: "public", Name: "modes", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{
			{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "amount", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true, SourceType: "numeric(10,2)"},
			{Name: "any_num", Kind: change.KindDecimal, Nullable: true, SourceType: "numeric"},
			{Name: "nums", Kind: change.KindArray, Elem: change.KindDecimal, Nullable: true, SourceType: "numeric[]"},
			{Name: "d", Kind: change.KindDate, Nullable: true, SourceType: "date"},
			{Name: "t", Kind: change.KindTime, Nullable: true, SourceType: "time without time zone"},
			{Name: "t3", Kind: change.KindTime, Nullable: true, SourceType: "time(3) without time zone"},
			{Name: "ts", Kind: change.KindTimestamp, Nullable: true, SourceType: "timestamp without time zone"},
			{Name: "tstz", Kind: change.KindTimestampTZ, Nullable: true, SourceType: "timestamp with time zone"},
			{Name: "iv", Kind: change.KindInterval, Nullable: true, SourceType: "interval"},
			{Name: "u", Kind: change.KindUUID, Nullable: true, SourceType: "uuid"},
			{Name: "j", Kind: change.KindJSON, Nullable: true, SourceType: "jsonb"},
		}}
}

func (r *registryTest) modesEncoder(prefix, timePrecision, decimalHandling string) *encode.Encoder {
	r.t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: prefix, Connector: "postgresql", TopicPrefix: prefix,
		TimePrecision: timePrecision, DecimalHandling: decimalHandling,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil))}, encode.NewSRRegistry(r.cl))
	if err != nil {
		r.t.Fatal(err)
	}
	return enc
}

func modesRow() []change.Value {
	return []change.Value{{Int: 1}, {Str: "12.50"}, {Str: "-0.001"}, {Arr: []change.Value{{Str: "1"}}}, {Int: 19849},
		{Int: 86400000000}, {Int: 1000}, {Int: 1714979289123456}, {Int: 1714979289123456}, {Str: "P1M"},
		{Str: "5f0c2d5e-0000-4000-8000-000000000001"}, {Str: `{"a":1}`}}
}

// TestTypeModesOnRegistry: the registry of the stack (Apicurio, BACKWARD) accepts the schemas
// of every type mode, Debezium's connect.* properties and the named VariableScaleDecimal
// included; the default mode, spelled out or not, keeps an existing subject's schema (no
// new version); and a Debezium time mode on a subject written in the default mode is a
// change of column types that BACKWARD refuses, which is why the modes are an opt-in for new
// topics (docs/record-format.md#type-modes).
func TestTypeModesOnRegistry(t *testing.T) {
	r := newRegistryTest(t)
	encodeModes := func(enc *encode.Encoder) error {
		var rec encode.Record
		return enc.Encode(r.ctx, &change.Event{Op: change.OpCreate, Table: modesTable(), After: modesRow()}, &rec)
	}
	for _, m := range [][2]string{
		{"", ""}, {encode.TimeAdaptive, encode.DecimalPrecise}, {encode.TimeAdaptiveMicroseconds, encode.DecimalDouble},
		{encode.TimeConnect, encode.DecimalString},
	} {
		prefix := uniqueName("modes")
		if err := encodeModes(r.modesEncoder(prefix, m[0], m[1])); err != nil {
			if m[0] == encode.TimeConnect {
				// time_precision connect refuses the sub-millisecond timestamps of the row
				if encode.ClassOf(err) != encode.ClassValueNotRepresentable {
					t.Fatalf("modes %v: %v", m, err)
				}
				continue
			}
			t.Fatalf("modes %v: the registry refused a fresh subject: %v", m, err)
		}
	}

	prefix := uniqueName("modesup")
	subject := prefix + ".public.modes-value"
	if err := encodeModes(r.modesEncoder(prefix, "", "")); err != nil {
		t.Fatal(err)
	}
	versions := func() int {
		vs, err := r.cl.SubjectVersions(r.ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}
	if err := encodeModes(r.modesEncoder(prefix, encode.ModeAvro, encode.ModeAvro)); err != nil || versions() != 1 {
		t.Fatalf("the default mode spelled out: err %v, %d versions, want the same schema", err, versions())
	}
	err := encodeModes(r.modesEncoder(prefix, encode.TimeAdaptive, ""))
	if encode.ClassOf(err) != encode.ClassSchemaRejected {
		t.Fatalf("time_precision adaptive on a subject of the default mode: %v, want schema_rejected", err)
	}
	// The database types did not change: the refusal says the mode did, and how to go on.
	for _, want := range []string{"column tstz changed type from nullable long timestamp-micros (timestamp with time zone) to nullable string (timestamp with time zone)",
		"only how cdcd writes it changed, as when a pipeline's time_precision or decimal_handling is changed", "a new topics.prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q:\n%v", want, err)
		}
	}
}
