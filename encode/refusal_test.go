package encode

import (
	"context"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestRefusalSaysWhichColumnChangedHow: a registry refusal used to read "reader union lacking
// writer type: RECORD at /fields/0/type/1", which means nothing to the person on call. It
// must name the column and the change, the rule of the subject's level it breaks, and what
// to do (with commands that work on the registry in use), and keep the registry's text last.
func TestRefusalSaysWhichColumnChangedHow(t *testing.T) {
	const apicurioText = "io.apicurio.registry.rules.RuleViolationException: Incompatible artifact: shop.public.orders-value [AVRO], num of incompatible diffs: {1}, list of diff types: [reader type: STRING not compatible with writer type: INT at /fields/0/type/1/fields/1/type]"
	for _, tc := range []struct {
		name, registryText, relax string
	}{
		{"confluent", "Schema being registered is incompatible with an earlier schema", `-d '{"compatibility":"NONE"}' `},
		{"apicurio", apicurioText, `-d '{"ruleType":"COMPATIBILITY","config":"NONE"}' `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, reg := newSR(t, srfake.WithGlobalCompat(sr.CompatBackward))
			enc := newTestEncoder(t, reg)
			var rec Record
			if err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}, &rec); err != nil {
				t.Fatal(err)
			}
			fake.Intercept(respond(409, 409, tc.registryText))
			v2 := ordersTable()
			v2.Version = 2
			v2.Columns[1].Kind, v2.Columns[1].SourceType = change.KindString, "text"
			after := ordersRow(1)
			after[1] = change.Value{Str: "42"}
			err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: v2, After: after}, &rec)
			if ClassOf(err) != ClassSchemaRejected {
				t.Fatalf("err = %v", err)
			}
			msg := err.Error()
			for _, want := range []string{
				"public.orders subject shop.public.orders-value: the schema registry refused the new schema: ",
				"column customer_id changed type from int (integer) to string (text) (consumers on the new schema could not read the records already written)",
				"compared with the registered version 1",
				"compatibility level BACKWARD requires that consumers using the new schema can read every record written with the previous one",
				"What to do:", "topics.overrides", tc.relax, "/shop.public.orders-value",
				`restore the level once the new schema is registered: curl -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' -d '{"compatibility":"BACKWARD"}' ` + fake.URL() + "/config/shop.public.orders-value",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "time_precision") {
				t.Errorf("a change of the column's database type is blamed on a type mode:\n%s", msg)
			}
			if !strings.HasSuffix(msg, "The registry said (HTTP 409, error code 409): "+tc.registryText) {
				t.Errorf("the registry's text is not at the end:\n%s", msg)
			}
			if tc.name == "apicurio" && !strings.Contains(msg, "/apis/registry/v3/groups/default/artifacts/shop.public.orders-value/rules/COMPATIBILITY") {
				t.Errorf("Apicurio relax command is not Apicurio's API:\n%s", msg)
			}
		})
	}
}

// TestRefusalWithoutRegisteredSchema: when the registered schema cannot be read, the message
// says so instead of guessing, and still gives the fix and the registry's text.
func TestRefusalWithoutRegisteredSchema(t *testing.T) {
	fake, reg := newSR(t)
	fake.Intercept(respond(409, 409, "incompatible"))
	_, err := reg.Register(context.Background(), "x-value", `"string"`)
	msg := err.Error()
	for _, want := range []string{"cdcd could not compare it with the registered schema", "What to do:", "The registry said (HTTP 409, error code 409): incompatible"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// TestRefusalUnderTransitiveLevel: when the latest version is compatible, a transitive level's
// refusal is explained against the earlier version the change breaks.
func TestRefusalUnderTransitiveLevel(t *testing.T) {
	fake, reg := newSR(t)
	const subject = "t-value"
	for _, s := range []string{
		`{"type":"record","name":"Value","fields":[{"name":"a","type":"int"}]}`,
		`{"type":"record","name":"Value","fields":[]}`,
	} {
		if _, err := reg.Register(context.Background(), subject, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fake.SetCompat(subject, sr.CompatBackwardTransitive); err != nil {
		t.Fatal(err)
	}
	fake.Intercept(respond(409, 409, "incompatible"))
	_, err := reg.Register(context.Background(), subject, `{"type":"record","name":"Value","fields":[{"name":"a","type":["null","string"],"default":null}]}`)
	msg := err.Error()
	for _, want := range []string{
		"column a changed type from int to nullable string (consumers on the new schema could not read the records already written)",
		"compared with the registered version 1 (BACKWARD_TRANSITIVE checks every earlier version)",
		"compatibility level BACKWARD_TRANSITIVE requires that consumers using the new schema can read every record written with the previous and every earlier version",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
