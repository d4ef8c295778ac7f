package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/sr"
)

// These tests run cdcd's registry code against the registry the stack ships (Apicurio 3), whose
// Confluent-compatible API differs from Confluent's where it matters: it reports NONE for a
// subject without a compatibility rule of its own, and a subject PUT of NONE deletes the rule
// (the global BACKWARD then applies). They never change the global level: the stack is shared.

type registryTest struct {
	t      *testing.T
	ctx    context.Context
	url    string
	native string // Apicurio's own API
	cl     *sr.Client
	logs   *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRegistryTest(t *testing.T) *registryTest {
	s := needStack(t)
	cl, err := sr.NewClient(sr.URLs(s.registry))
	if err != nil {
		t.Fatal(err)
	}
	native := strings.Replace(s.registry, "/apis/ccompat/v7", "/apis/registry/v3", 1)
	return &registryTest{t: t, ctx: testCtx(t, 2*time.Minute), url: s.registry, native: native, cl: cl, logs: &syncBuf{}}
}

// encoder is what a cdcd start builds for a pipeline: a fresh encoder and registry client.
func (r *registryTest) encoder(prefix string) *encode.Encoder {
	r.t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: prefix, Connector: "postgresql", TopicPrefix: prefix,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil))}, encode.NewSRRegistry(r.cl))
	if err != nil {
		r.t.Fatal(err)
	}
	return enc
}

// ownLevel is the subject's own level as Apicurio's own API reports it ("" without a rule).
func (r *registryTest) ownLevel(subject string) string {
	r.t.Helper()
	resp, err := http.Get(r.native + "/groups/default/artifacts/" + subject + "/rules/COMPATIBILITY")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	var rule struct {
		Config string `json:"config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rule); err != nil {
		r.t.Fatalf("reading the rule of %s: %v", subject, err)
	}
	return rule.Config
}

func (r *registryTest) register(subject, schema string) error {
	_, err := r.cl.RegisterSchema(r.ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	return err
}

// sh runs a command cdcd advised, exactly as written.
func (r *registryTest) sh(command string) {
	r.t.Helper()
	out, err := exec.CommandContext(r.ctx, "sh", "-c", command+" --fail --silent --show-error").CombinedOutput()
	if err != nil {
		r.t.Fatalf("the advised command failed: %v\n%s\n%s", err, command, out)
	}
}

func itemsTable(qtyKind change.Kind, qtyType string) *change.Table {
	return &change.Table{Database: "shop", Schema: "public", Name: "items", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{
			{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "qty", Kind: qtyKind, Nullable: true, SourceType: qtyType},
		}}
}

func itemsRow(qtyKind change.Kind) []change.Value { // qty holds 7
	if qtyKind == change.KindString {
		return []change.Value{{Int: 1}, {Str: "7"}}
	}
	return []change.Value{{Int: 1}, {Int: 7}}
}

func (r *registryTest) encode(enc *encode.Encoder, tbl *change.Table) error {
	var rec encode.Record
	return enc.Encode(r.ctx, &change.Event{Op: change.OpCreate, Table: tbl, After: itemsRow(tbl.Columns[1].Kind)}, &rec)
}

// TestRegistrySetsLevelOfSubjectsOnApicurio: cdcd sets the configured level on the subjects
// it creates (it relied on the global level), does not take Apicurio's NONE-for-no-rule as
// the subject's own level (it warned "keeps its own compatibility level NONE" on every
// start), never overrides a level an operator set, and its advice to raise one works.
func TestRegistrySetsLevelOfSubjectsOnApicurio(t *testing.T) {
	r := newRegistryTest(t)
	prefix := uniqueName("reglvl")
	subject := prefix + ".public.items-value"

	if err := r.encode(r.encoder(prefix), itemsTable(change.KindInt32, "integer")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{prefix + ".public.items-key", subject} {
		if got := r.ownLevel(s); got != "BACKWARD" {
			t.Errorf("%s: own rule %q, want BACKWARD set by cdcd", s, got)
		}
	}
	if !strings.Contains(r.logs.String(), "schema registry subject compatibility set") {
		t.Errorf("no log line for the level set:\n%s", r.logs)
	}

	// A restart: the subject's own BACKWARD is found and kept, without a warning.
	before := len(r.logs.String())
	if err := r.encode(r.encoder(prefix), itemsTable(change.KindInt32, "integer")); err != nil {
		t.Fatal(err)
	}
	if l := r.logs.String()[before:]; strings.Contains(l, "keeps its own") || strings.Contains(l, "NONE") {
		t.Errorf("restart logged about the level:\n%s", l)
	}

	// A subject that exists without a rule of its own (Apicurio reports NONE for it) gets the
	// configured level instead of being taken as an explicit NONE.
	bare := uniqueName("regbare") + "-value"
	if err := r.register(bare, `{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]}`); err != nil {
		t.Fatal(err)
	}
	reg := encode.NewSRRegistry(r.cl)
	c, err := reg.EnsureCompatibility(r.ctx, bare, "BACKWARD")
	if err != nil {
		t.Fatal(err)
	}
	if c.Level != "BACKWARD" || !c.Set || c.Own || r.ownLevel(bare) != "BACKWARD" {
		t.Errorf("subject without a rule: %+v, own rule %q; want BACKWARD set", c, r.ownLevel(bare))
	}

	// An operator's level is kept; a weaker one comes with a command that raises it.
	for _, level := range []sr.CompatibilityLevel{sr.CompatFull, sr.CompatForward} {
		op := uniqueName("regop") + "-value"
		if err := r.register(op, `{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]}`); err != nil {
			t.Fatal(err)
		}
		if res := r.cl.SetCompatibility(r.ctx, sr.SetCompatibility{Level: level}, op)[0]; res.Err != nil {
			t.Fatal(res.Err)
		}
		c, err := encode.NewSRRegistry(r.cl).EnsureCompatibility(r.ctx, op, "BACKWARD")
		if err != nil {
			t.Fatal(err)
		}
		if c.Level != level.String() || !c.Own || c.Set || r.ownLevel(op) != level.String() {
			t.Fatalf("operator's %s: %+v, own rule %q", level, c, r.ownLevel(op))
		}
		if (c.Fix != "") != (level == sr.CompatForward) {
			t.Errorf("operator's %s: fix %q", level, c.Fix)
		}
		if c.Fix != "" {
			r.sh(strings.TrimPrefix(c.Fix, "to apply the configured level: "))
			if got := r.ownLevel(op); got != "FULL" {
				t.Errorf("after the advised command the level is %q, want FULL (FORWARD joined with BACKWARD)", got)
			}
		}
	}
}

// TestRegistryRefusalOnApicurio: an incompatible table change is refused with a message that
// says which column changed how and which rule it breaks, and whose advice works on Apicurio:
// relaxing the subject through Apicurio's API lets the change through, and restoring the level
// makes the registry enforce it again. The Confluent-API way of relaxing (a subject PUT of
// NONE) does not work there, which is why the advice differs.
func TestRegistryRefusalOnApicurio(t *testing.T) {
	r := newRegistryTest(t)
	prefix := uniqueName("regref")
	subject := prefix + ".public.items-value"
	if err := r.encode(r.encoder(prefix), itemsTable(change.KindInt32, "integer")); err != nil {
		t.Fatal(err)
	}

	changed := itemsTable(change.KindString, "text")
	changed.Version = 2
	err := r.encode(r.encoder(prefix), changed)
	var ce *encode.Error
	if !errors.As(err, &ce) || ce.Class != encode.ClassSchemaRejected || ce.Subject != subject {
		t.Fatalf("err = %v, want a schema_rejected error for %s", err, subject)
	}
	msg := err.Error()
	t.Logf("refusal: %s", msg)
	for _, want := range []string{
		"column qty changed type from nullable int (integer) to nullable string (text) (consumers on the new schema could not read the records already written)",
		"compatibility level BACKWARD requires that consumers using the new schema can read every record written with the previous one",
		"What to do:", "topics.overrides",
		r.native + "/groups/default/artifacts/" + subject + "/rules/COMPATIBILITY",
		"The registry said (HTTP 409",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if i, j := strings.Index(msg, "The registry said"), strings.Index(msg, "RuleViolationException"); i < 0 || j < i {
		t.Errorf("the registry's own text is not at the end")
	}

	// The Confluent-API way of relaxing does not work on Apicurio: the global BACKWARD applies.
	if res := r.cl.SetCompatibility(r.ctx, sr.SetCompatibility{Level: sr.CompatNone}, subject)[0]; res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := r.ownLevel(subject); got != "" {
		t.Fatalf("a PUT of NONE left rule %q; Apicurio was expected to delete it", got)
	}
	if err := r.register(subject, mustSchema(t, r.encoder(prefix), changed)); err == nil {
		t.Fatal("after a Confluent-API PUT of NONE Apicurio accepted the change; it was expected to apply the global BACKWARD")
	}
	// That deleted cdcd's rule; a restart sets it again (BACKWARD) and the advice follows.
	err = r.encode(r.encoder(prefix), changed)
	if encode.ClassOf(err) != encode.ClassSchemaRejected || r.ownLevel(subject) != "BACKWARD" {
		t.Fatalf("err = %v, own rule %q", err, r.ownLevel(subject))
	}
	msg = err.Error()
	relax := between(t, msg, "relax the subject for this one change: ", " (Apicurio's API")
	restore := between(t, msg, "restore the level once the new schema is registered: ", ". The registry said")

	r.sh(relax)
	if err := r.encode(r.encoder(prefix), changed); err != nil { // a restart registers it
		t.Fatalf("after the advised relax command: %v", err)
	}
	r.sh(restore)
	if got := r.ownLevel(subject); got != "BACKWARD" {
		t.Errorf("after the advised restore command the level is %q, want BACKWARD", got)
	}
	back := itemsTable(change.KindInt64, "bigint") // string -> long breaks BACKWARD again
	back.Version = 3
	if err := r.encode(r.encoder(prefix), back); encode.ClassOf(err) != encode.ClassSchemaRejected {
		t.Errorf("after restoring the level an incompatible change was accepted: %v", err)
	}
}

func mustSchema(t *testing.T, enc *encode.Encoder, tbl *change.Table) string {
	t.Helper()
	_, value, err := enc.Schemas(tbl)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	if i < 0 {
		t.Fatalf("message lacks %q:\n%s", from, s)
	}
	rest := s[i+len(from):]
	j := strings.Index(rest, to)
	if j < 0 {
		t.Fatalf("message lacks %q after %q:\n%s", to, from, s)
	}
	return rest[:j]
}
