package window

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/encode"
)

// WindowType is how events are grouped in time.
type WindowType string

const (
	Tumbling WindowType = "tumbling" // fixed size, no overlap: [k*size, (k+1)*size)
	Hopping  WindowType = "hopping"  // fixed size, starting every advance: overlapping
	Session  WindowType = "session"  // per group, events closer than gap merge into one window
	Count    WindowType = "count"    // per group, every Events events form a window
)

// Fn is an aggregate function.
type Fn string

const (
	FnCount         Fn = "count"
	FnSum           Fn = "sum"
	FnMin           Fn = "min"
	FnMax           Fn = "max"
	FnAvg           Fn = "avg"
	FnCountDistinct Fn = "count_distinct"
	FnFirst         Fn = "first"
	FnLast          Fn = "last"
)

var fns = []Fn{FnCount, FnSum, FnMin, FnMax, FnAvg, FnCountDistinct, FnFirst, FnLast}

// Mode says what a change contributes.
type Mode string

const (
	// ModeEvents counts each selected change once (a KStream aggregation).
	ModeEvents Mode = "events"
	// ModeTable treats the input as a table: an update retracts its before image and adds its
	// after image, a delete retracts its before image (a KTable aggregation with adder and
	// subtractor).
	ModeTable Mode = "table"
)

// Spec is one validated window job.
type Spec struct {
	Name   string
	Topics []string
	// Ops selects change ops (c, u, d, r); empty means all four.
	Ops     string
	Time    Path
	GroupBy []Path
	Window  WindowSpec
	Aggs    []AggSpec
	Mode    Mode
	// EmitUpdates writes a result for every change of a window; otherwise once, when it closes.
	EmitUpdates bool
	Output      string
	Late        string
	// DeadLetter is the topic for input records the job can never process (an update without
	// a before image in table mode, a field a new schema lacks, a record that is not Avro in
	// the registry's wire format); "" stops the job on such a record instead.
	DeadLetter string
	// IdleTimeout: once the job has caught up with an input partition and no record arrived
	// for this long, that partition's stream time follows the wall clock (so windows close).
	IdleTimeout time.Duration
	// TimeZone reads times without zone (timestamp without time zone, date) and aligns time
	// windows (a daily window starts at local midnight); nil: UTC.
	TimeZone *time.Location
}

// WindowSpec is the window's shape.
type WindowSpec struct {
	Type    WindowType
	Size    time.Duration // tumbling, hopping
	Advance time.Duration // hopping
	Gap     time.Duration // session
	Events  int           // count
	Grace   time.Duration
}

// AggSpec is one output column.
type AggSpec struct {
	Name  string
	Fn    Fn
	Field Path // empty for count
}

// Path names a field of a change: "source.ts_ms", "ts_ms", "after.<column>" or
// "before.<column>".
type Path struct {
	Root  string // "after", "before", "source", "" (the envelope itself)
	Field string
}

// ParsePath parses a field path as written in the configuration.
func ParsePath(s string) (Path, error) {
	root, field, ok := strings.Cut(s, ".")
	if !ok {
		if s == "ts_ms" || s == "op" {
			return Path{Field: s}, nil
		}
		return Path{}, fmt.Errorf("field %q: write after.<column>, before.<column>, source.<field> or ts_ms", s)
	}
	switch root {
	case "after", "before", "source":
	default:
		return Path{}, fmt.Errorf("field %q: %q is not part of a change record; write after.<column>, before.<column>, source.<field> or ts_ms", s, root)
	}
	if field == "" || strings.Contains(field, ".") {
		return Path{}, fmt.Errorf("field %q: name one column or source field after %q", s, root+".")
	}
	return Path{Root: root, Field: field}, nil
}

func (p Path) String() string {
	if p.Root == "" {
		return p.Field
	}
	return p.Root + "." + p.Field
}

// Problem is one thing wrong with a spec: the configuration key it is about, relative to the
// job ("window.size", "aggregates[1].name"), what is wrong, and the fix.
type Problem struct {
	Key, Message, Fix string
}

func (p Problem) String() string {
	return p.Key + ": " + p.Message + "; fix: " + p.Fix
}

// The fixes several problems share.
const (
	fixShapes = "see the window shapes in config.example.yaml: tumbling {size}, hopping {size, advance}, session {gap}, count {events}"
	fixAggs   = "give each aggregate a name of its own, a known fn and, except for count, a field"
	fixTopics = "give every window job output, late and dlq topics of its own"
)

// topicName is what Kafka accepts as a topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks the spec as a whole and reports every problem at once (see Problems).
func (s *Spec) Validate() error {
	var errs []error
	for _, p := range s.Problems() {
		errs = append(errs, fmt.Errorf("window job %s: %s", s.Name, p))
	}
	return errors.Join(errs...)
}

// Problems checks the spec as a whole and returns every problem, each with its key and fix:
// the one place the rules of a window job live (package config adds only what the YAML
// itself can get wrong).
func (s *Spec) Problems() []Problem {
	var ps []Problem
	bad := func(key, fix, format string, a ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, a...), Fix: fix})
	}
	if s.Name == "" {
		bad("name", "set name: a short lowercase name such as orders_per_customer (it names the job's consumer group and internal topics)", "a job needs a name")
	}
	if len(s.Topics) == 0 {
		bad("input.topics", "name the cdcd change topics to read, e.g. topics: [shop.public.orders]", "no input topics are listed")
	}
	for i, t := range s.Topics {
		if !topicName.MatchString(t) {
			bad(fmt.Sprintf("input.topics[%d]", i), "use letters, digits, '.', '_' and '-' only", "%q is not a valid Kafka topic name", t)
		}
	}
	for _, c := range s.Ops {
		if !strings.ContainsRune("cudr", c) {
			bad("input.ops", "use c (create), u (update), d (delete) or r (snapshot read)", "%q is not a change op", string(c))
		}
	}
	s.topicProblems(bad)
	s.windowProblems(bad)
	switch s.Mode {
	case ModeEvents:
	case ModeTable:
		if w := s.Window; w.Type == Session || w.Type == Count {
			bad("mode", "use mode: events, or a tumbling or hopping window",
				"mode table works with tumbling and hopping windows: a retraction must find the window its row was counted in, which session and count windows do not determine")
		}
		if s.Time.Root != "after" && s.Time.Root != "before" {
			bad("time", "set time: after.<a timestamp column of the row>, e.g. after.created_at",
				"mode table needs time to be a column of the row (e.g. after.created_at), so that before and after each fall in their own row's window; %s is the time of the change", s.Time)
		}
	default:
		bad("mode", "use events (each change counts once) or table (an update retracts its before image and adds its after image)", "unknown mode %q: choose events or table", s.Mode)
	}
	if s.IdleTimeout < 0 {
		bad("idle_timeout", "use 0s or more", "%s is negative", s.IdleTimeout)
	}
	s.aggProblems(bad)
	return ps
}

// topicProblems checks the output, late and dead-letter topics.
func (s *Spec) topicProblems(bad func(key, fix, format string, a ...any)) {
	if s.Output == "" {
		bad("output.topic", "set output: {topic: <the topic for the results>}, e.g. shop.orders_per_customer_5m", "no output topic")
	}
	for _, t := range []struct{ key, topic string }{{"output.topic", s.Output}, {"late.topic", s.Late}, {"dlq.topic", s.DeadLetter}} {
		if t.topic != "" && !topicName.MatchString(t.topic) {
			bad(t.key, "use letters, digits, '.', '_' and '-' only", "%q is not a valid Kafka topic name", t.topic)
		}
	}
	if s.Output != "" && s.Output == s.Late {
		bad("late.topic", fixTopics, "late.topic must differ from output.topic")
	}
	if s.DeadLetter != "" && (s.DeadLetter == s.Output || s.DeadLetter == s.Late) {
		bad("dlq.topic", fixTopics, "dlq.topic must differ from output.topic and late.topic")
	}
	for _, t := range s.Topics {
		for _, o := range []struct{ key, topic string }{{"output.topic", s.Output}, {"late.topic", s.Late}, {"dlq.topic", s.DeadLetter}} {
			if t == o.topic {
				bad(o.key, "write the results to a topic the job does not read", "topic %s is both an input and an output", t)
			}
		}
	}
}

// windowProblems checks the window's shape.
func (s *Spec) windowProblems(bad func(key, fix, format string, a ...any)) {
	w := s.Window
	switch w.Type {
	case Tumbling:
		if w.Size <= 0 {
			bad("window.size", fixShapes, "window.size must be positive for a tumbling window")
		}
	case Hopping:
		switch {
		case w.Size <= 0 || w.Advance <= 0:
			bad("window.size", "set size and advance, e.g. {type: hopping, size: 5m, advance: 1m}", "window.size and window.advance must be positive for a hopping window")
		case w.Advance > w.Size:
			bad("window.advance", fixShapes, "window.advance %s is larger than window.size %s: some events would fall in no window", w.Advance, w.Size)
		case w.Size%w.Advance != 0:
			bad("window.size", fixShapes, "window.size %s must be a multiple of window.advance %s", w.Size, w.Advance)
		}
	case Session:
		if w.Gap <= 0 {
			bad("window.gap", fixShapes, "window.gap must be positive for a session window")
		}
	case Count:
		if w.Events <= 0 {
			bad("window.events", fixShapes, "window.events must be positive for a count window")
		}
	default:
		bad("window.type", "use tumbling {size}, hopping {size, advance}, session {gap} or count {events}", "unknown window type %q: choose tumbling, hopping, session or count", w.Type)
	}
	if w.Grace < 0 {
		bad("window.grace", "use 0s or more", "%s is negative", w.Grace)
	}
}

// aggProblems checks the aggregates: a name that is a field name of the result schema, a
// known fn and, except for count, a field.
func (s *Spec) aggProblems(bad func(key, fix, format string, a ...any)) {
	if len(s.Aggs) == 0 {
		bad("aggregates", "add at least one, e.g. - {name: orders, fn: count}", "no aggregates are listed")
	}
	names := map[string]bool{}
	for _, g := range s.GroupBy {
		names[g.Field] = true
	}
	for i, a := range s.Aggs {
		at := fmt.Sprintf("aggregates[%d].", i)
		switch {
		case a.Name == "":
			bad(at+"name", fixAggs, "aggregates[%d] needs a name", i)
		case !encode.ValidAvroName(a.Name):
			bad(at+"name", "use letters, digits and '_', starting with a letter or '_'",
				"%q is not a valid Avro field name (it names a field of the result schema)", a.Name)
		case names[a.Name] || a.Name == "window_start" || a.Name == "window_end" || a.Name == "events" ||
			a.Name == "window_index" && s.Window.Type == Count:
			bad(at+"name", fixAggs, "the name %q is already taken by a group field or window_start, window_end, events (and window_index of count windows)", a.Name)
		}
		names[a.Name] = true
		if !slices.Contains(fns, a.Fn) {
			bad(at+"fn", "use one of count, sum, min, max, avg, count_distinct, first, last", "unknown aggregate function %q", a.Fn)
		}
		switch {
		case a.Fn == FnCount && a.Field != (Path{}):
			bad(at+"field", "remove field, or use count_distinct to count distinct values of a field", "count takes no field (it counts the changes)")
		case a.Fn != FnCount && slices.Contains(fns, a.Fn) && a.Field == (Path{}):
			bad(at+"field", fixAggs, "%s needs a field", a.Fn)
		}
	}
}

// opSelected reports whether changes with op are counted.
func (s *Spec) opSelected(op byte) bool {
	return s.Ops == "" || strings.IndexByte(s.Ops, op) >= 0
}
