package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// windowsBase is base with one window job over the pipeline's orders topic; the job's lines
// start at line 11.
const windowsBase = base + `windows:
  - name: orders_per_customer
    input:
      topics: [shop.public.orders]
      ops: [c]
    group_by: [after.customer_id]
    window: {type: tumbling, size: 5m, grace: 30s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
    output: {topic: shop.orders_per_customer_5m}
`

// A window job as the issue writes it is accepted (it used to be refused outright).
func TestWindowJobAccepted(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(windowsBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Windows) != 1 || cfg.Windows[0].Name != "orders_per_customer" {
		t.Fatalf("windows: %+v", cfg.Windows)
	}
}

func TestWindowJobDefaultsAndSpec(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(windowsBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Windows[0]
	spec, err := w.Spec()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"time", spec.Time.String(), "source.ts_ms"},
		{"ops", spec.Ops, "c"},
		{"group", spec.GroupBy[0].String(), "after.customer_id"},
		{"type", string(spec.Window.Type), "tumbling"},
		{"size", spec.Window.Size, 5 * time.Minute},
		{"grace", spec.Window.Grace, 30 * time.Second},
		{"aggs", len(spec.Aggs), 2},
		{"sum field", spec.Aggs[1].Field.String(), "after.total"},
		{"mode", string(spec.Mode), "events"},
		{"emit updates", spec.EmitUpdates, false},
		{"late", spec.Late, "shop.orders_per_customer_5m.late"},
		{"idle", spec.IdleTimeout, 30 * time.Second},
		{"commit interval", w.CommitInterval.D, 100 * time.Millisecond},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := spec.Validate(); err != nil {
		t.Error(err)
	}
}

func TestWindowJobsGood(t *testing.T) {
	cases := []struct{ name, yaml string }{
		{"hopping, updates, table mode", strings.NewReplacer(
			"window: {type: tumbling, size: 5m, grace: 30s}", "window: {type: hopping, size: 10m, advance: 5m}",
			"    output:", "    time: after.created_at\n    mode: table\n    emit: updates\n    output:").Replace(windowsBase)},
		{"session", strings.Replace(windowsBase, "{type: tumbling, size: 5m, grace: 30s}", "{type: session, gap: 10m, grace: 1m}", 1)},
		{"count", strings.Replace(windowsBase, "{type: tumbling, size: 5m, grace: 30s}", "{type: count, events: 100}", 1)},
		{"idle 0s, instance, partitions, late", windowsBase + "    idle_timeout: 0s\n    instance_id: host-1\n    partitions: 6\n    late: {topic: late_orders}\n"},
		{"windows only (no pipelines)", strings.Replace(windowsBase, base, "kafka:\n  brokers: [\"127.0.0.1:19092\"]\nschema_registry:\n  url: http://127.0.0.1:18081\n", 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(c.yaml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Windows[0].Spec(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// on_error: fail by default (no dead-letter topic); dlq dead-letters to <output>.dlq unless
	// dlq.topic names another.
	for _, c := range []struct{ yaml, want string }{
		{windowsBase, ""},
		{windowsBase + "    on_error: dlq\n", "shop.orders_per_customer_5m.dlq"},
		{windowsBase + "    on_error: dlq\n    dlq: {topic: bad_orders}\n", "bad_orders"},
	} {
		cfg, err := Parse("c.yaml", []byte(c.yaml), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := cfg.Windows[0].Spec()
		if err != nil {
			t.Fatal(err)
		}
		if spec.DeadLetter != c.want {
			t.Errorf("dead-letter topic %q, want %q, for:\n%s", spec.DeadLetter, c.want, c.yaml)
		}
	}
	cfg, _ := Parse("c.yaml", []byte(windowsBase+"    idle_timeout: 0s\n"), noEnv)
	if cfg.Windows[0].IdleTimeout.D != 0 {
		t.Errorf("idle_timeout: 0s became %s", cfg.Windows[0].IdleTimeout.D)
	}
}

// Each bad job is refused with a problem naming the key, its line and a fix.
func TestWindowJobsBad(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		path string
		line int
		fix  string
	}{
		{"misspelled key", strings.Replace(windowsBase, "    group_by:", "    groupby:", 1), "windows[0].groupby", 16, `did you mean "group_by"`},
		{"misspelled window key", strings.Replace(windowsBase, "size: 5m", "sise: 5m", 1), "windows[0].window.sise", 17, `did you mean "size"`},
		{"no name", strings.Replace(windowsBase, "  - name: orders_per_customer\n    input:", "  - input:", 1), "windows[0].name", 12, "set name"},
		{"name of a pipeline", strings.Replace(windowsBase, "name: orders_per_customer", "name: shop", 1), "windows[0].name", 12, "no pipeline has"},
		{"duplicate job", windowsBase + strings.TrimPrefix(windowsBase, base+"windows:\n"), "windows[1].name", 22, "its own name"},
		{"no input", strings.Replace(windowsBase, "      topics: [shop.public.orders]\n", "", 1), "windows[0].input.topics", 13, "name the cdcd change topics"},
		{"bad op", strings.Replace(windowsBase, "ops: [c]", "ops: [create]", 1), "windows[0].input.ops[0]", 15, "c (create)"},
		{"bad path", strings.Replace(windowsBase, "[after.customer_id]", "[customer_id]", 1), "windows[0].group_by[0]", 16, "after.<column>"},
		{"bad type", strings.Replace(windowsBase, "type: tumbling", "type: sliding", 1), "windows[0].window.type", 17, "hopping {size, advance}"},
		{"no size", strings.Replace(windowsBase, "size: 5m, ", "", 1), "windows[0].window.size", 17, "tumbling {size}"},
		{"negative grace", strings.Replace(windowsBase, "grace: 30s", "grace: -30s", 1), "windows[0].window.grace", 17, "0s or more"},
		{"unknown time zone", strings.Replace(windowsBase, "size: 5m", "size: 5m, time_zone: Mars/Olympus", 1), "windows[0].window.time_zone", 17, "IANA"},
		{"bad duration", strings.Replace(windowsBase, "size: 5m", "size: 5 minutes", 1), "windows[0].window.size", 17, "1m30s"},
		{"key of another type", strings.Replace(windowsBase, "size: 5m,", "size: 5m, gap: 1m,", 1), "windows[0].window.gap", 17, "size and grace"},
		{"advance not dividing", strings.Replace(windowsBase, "type: tumbling, size: 5m", "type: hopping, size: 5m, advance: 2m", 1), "windows[0].window.size", 17, "window shapes"},
		{"unknown fn", strings.Replace(windowsBase, "fn: sum", "fn: total", 1), "windows[0].aggregates[1].fn", 20, "count_distinct"},
		{"aggregate name not an Avro name", strings.Replace(windowsBase, "name: revenue", "name: revenue-eur", 1), "windows[0].aggregates[1].name", 20, "starting with a letter"},
		{"count with a field", strings.Replace(windowsBase, "{name: orders, fn: count}", "{name: orders, fn: count, field: after.id}", 1), "windows[0].aggregates[0].field", 19, "count_distinct"},
		{"sum without field", strings.Replace(windowsBase, "fn: sum, field: after.total", "fn: sum", 1), "windows[0].aggregates[1].field", 20, "except for count, a field"},
		{"name taken", strings.Replace(windowsBase, "name: revenue", "name: events", 1), "windows[0].aggregates[1].name", 20, "a name of its own"},
		{"no output", strings.Replace(windowsBase, "    output: {topic: shop.orders_per_customer_5m}\n", "", 1), "windows[0].output.topic", 12, "set output"},
		{"output is input", strings.Replace(windowsBase, "{topic: shop.orders_per_customer_5m}", "{topic: shop.public.orders}", 1), "windows[0].output.topic", 21, "does not read"},
		{"unknown mode", windowsBase + "    mode: stream\n", "windows[0].mode", 22, "table"},
		{"table mode on change time", windowsBase + "    mode: table\n", "windows[0].time", 12, "after.created_at"},
		{"unknown emit", windowsBase + "    emit: always\n", "windows[0].emit", 22, "updates"},
		{"negative partitions", windowsBase + "    partitions: -1\n", "windows[0].partitions", 22, "positive"},
		{"type error", windowsBase + "    partitions: many\n", "windows[0].partitions", 22, "whole number"},
		{"bad instance id", windowsBase + "    instance_id: \"a b\"\n", "windows[0].instance_id", 22, "transactional id"},
		{"unknown on_error", windowsBase + "    on_error: skip\n", "windows[0].on_error", 22, "dlq (dead-letter"},
		{"dlq without on_error dlq", windowsBase + "    dlq: {topic: bad_orders}\n", "windows[0].dlq.topic", 22, "set on_error: dlq"},
		{"dlq is the output", windowsBase + "    on_error: dlq\n    dlq: {topic: shop.orders_per_customer_5m}\n", "windows[0].dlq.topic", 23, "topics of its own"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(c.yaml), noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
			for _, p := range ce.Problems {
				if p.Path == c.path {
					if p.Line != c.line {
						t.Errorf("line %d, want %d: %s", p.Line, c.line, p)
					}
					if !strings.Contains(p.Fix, c.fix) {
						t.Errorf("fix %q lacks %q", p.Fix, c.fix)
					}
					return
				}
			}
			t.Errorf("no problem at %s; got:\n%v", c.path, err)
		})
	}
}

// A negative duration says it is negative, at every duration key (not that it is no
// duration).
func TestNegativeDurationsSayNegative(t *testing.T) {
	for _, c := range []struct{ yaml, path string }{
		{strings.Replace(windowsBase, "grace: 30s", "grace: -30s", 1), "windows[0].window.grace"},
		{windowsBase + "    idle_timeout: -1s\n", "windows[0].idle_timeout"},
		{windowsBase + "    session_timeout: -45s\n", "windows[0].session_timeout"},
	} {
		_, err := Parse("c.yaml", []byte(c.yaml), noEnv)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s: accepted or wrong error: %v", c.path, err)
		}
		found := false
		for _, p := range ce.Problems {
			if p.Path == c.path {
				found = true
				if !strings.Contains(p.Message, "is negative") || strings.Contains(p.Message, "not a duration") {
					t.Errorf("%s: %s", c.path, p)
				}
			}
		}
		if !found {
			t.Errorf("no problem at %s; got:\n%v", c.path, err)
		}
	}
}

// Every problem of every job is reported in one run.
func TestWindowJobProblemsAllAtOnce(t *testing.T) {
	y := strings.NewReplacer("ops: [c]", "ops: [x]", "type: tumbling", "type: sliding", "fn: sum", "fn: total").Replace(windowsBase) + "    emit: never\n"
	_, err := Parse("c.yaml", []byte(y), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	if len(ce.Problems) != 4 {
		t.Errorf("got %d problems, want 4:\n%v", len(ce.Problems), err)
	}
}

// Group membership and the state bound: session_timeout (default 45s, at least 1s),
// static_membership (default off) and state.max_bytes (default 1GiB, a size) are parsed,
// defaulted and checked with the key's path.
func TestWindowJobMembershipAndStateLimit(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(windowsBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Windows[0]
	if w.SessionTimeout.D != 45*time.Second || w.StaticMembership || w.State.MaxBytes.N != 1<<30 {
		t.Errorf("defaults: session_timeout %s, static_membership %v, state.max_bytes %d; want 45s, false, 1GiB", w.SessionTimeout.D, w.StaticMembership, w.State.MaxBytes.N)
	}
	set := windowsBase + "    session_timeout: 6s\n    static_membership: true\n    instance_id: a\n    state: {max_bytes: 64MiB}\n"
	if cfg, err = Parse("c.yaml", []byte(set), noEnv); err != nil {
		t.Fatal(err)
	}
	w = cfg.Windows[0]
	if w.SessionTimeout.D != 6*time.Second || !w.StaticMembership || w.State.MaxBytes.N != 64<<20 {
		t.Errorf("set: session_timeout %s, static_membership %v, state.max_bytes %d", w.SessionTimeout.D, w.StaticMembership, w.State.MaxBytes.N)
	}
	for _, c := range []struct{ extra, path, msg string }{
		{"    session_timeout: 500ms\n", "windows[0].session_timeout", "too short"},
		{"    state: {max_bytes: lots}\n", "windows[0].state.max_bytes", "not a size"},
		{"    state: {max_bytes: 0}\n", "windows[0].state.max_bytes", "too small"},
	} {
		_, err := Parse("c.yaml", []byte(windowsBase+c.extra), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: got %v, want a problem at %s saying %q", c.extra, err, c.path, c.msg)
		}
	}
}

// window.time_zone names an IANA zone; the spec carries it.
func TestWindowJobTimeZone(t *testing.T) {
	c, err := Parse("c.yaml", []byte(strings.Replace(windowsBase, "size: 5m", "size: 24h, time_zone: Europe/Berlin", 1)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Windows[0].Spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.TimeZone == nil || s.TimeZone.String() != "Europe/Berlin" {
		t.Fatalf("spec time zone %v, want Europe/Berlin", s.TimeZone)
	}
}
