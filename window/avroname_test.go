package window

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// The result schemas are valid Avro for every job name config accepts: a name starting with
// a digit gave the namespace io.cdcd.window.7eleven, which no registry takes. A name that was
// valid after '-' became '_' keeps its namespace, so results of existing jobs keep their
// schema.
func TestResultSchemasAreValidAvro(t *testing.T) {
	env := avro.MustParse(`{"type":"record","name":"Envelope","fields":[{"name":"after","type":["null",
		{"type":"record","name":"Value","fields":[{"name":"customer_id","type":"long"},{"name":"total","type":"double"}]}]}]}`)
	for name, ns := range map[string]string{"7eleven-daily": "io.cdcd.window._7eleven_daily", "orders-per-hour": "io.cdcd.window.orders_per_hour"} {
		s := ordersJob("in")
		s.Name = name
		s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}, {Name: "revenue", Fn: FnSum, Field: Path{"after", "total"}}}
		j, err := New(Config{Spec: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.buildSchemas(env); err != nil {
			t.Fatal(err)
		}
		for _, js := range []string{j.keySchema.json, j.valSchema.json} {
			if _, err := avro.ParseWithCache(js, "", &avro.SchemaCache{}); err != nil {
				t.Errorf("job %s: the result schema is not valid Avro: %v: %s", name, err, js)
			}
			if !strings.Contains(js, `"namespace":"`+ns+`"`) {
				t.Errorf("job %s: want namespace %s: %s", name, ns, js)
			}
		}
	}
}

// An aggregate's name is a field name of the result schema: one Avro cannot take is refused
// with the key and the fix, instead of a schema the registry refuses at start.
func TestAggregateNameMustBeAnAvroName(t *testing.T) {
	for _, name := range []string{"total-eur", "1st", "umsatz€"} {
		s := ordersJob("in")
		s.Aggs = []AggSpec{{Name: name, Fn: FnCount}}
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), "aggregates[0]") || !strings.Contains(err.Error(), "letter") {
			t.Errorf("aggregate name %q: want a refusal naming aggregates[0] and the rule, got %v", name, err)
		}
	}
}
