package window

import (
	"errors"
	"fmt"
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

// Validate checks the spec as a whole and reports every problem at once.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("window job %s: "+format, append([]any{s.Name}, a...)...))
	}
	if s.Name == "" {
		bad("a job needs a name")
	}
	if len(s.Topics) == 0 {
		bad("input.topics is empty; name the cdcd change topics to read")
	}
	for _, c := range s.Ops {
		if !strings.ContainsRune("cudr", c) {
			bad("input.ops: %q is not a change op (c, u, d, r)", string(c))
		}
	}
	if s.Output == "" {
		bad("output.topic is required")
	}
	if s.Output != "" && s.Output == s.Late {
		bad("late.topic must differ from output.topic")
	}
	if s.DeadLetter != "" && (s.DeadLetter == s.Output || s.DeadLetter == s.Late) {
		bad("dlq.topic must differ from output.topic and late.topic")
	}
	for _, t := range s.Topics {
		if t == s.Output || t == s.Late || t == s.DeadLetter {
			bad("topic %s is both an input and an output", t)
		}
	}
	w := s.Window
	switch w.Type {
	case Tumbling:
		if w.Size <= 0 {
			bad("window.size must be positive for a tumbling window")
		}
	case Hopping:
		if w.Size <= 0 || w.Advance <= 0 {
			bad("window.size and window.advance must be positive for a hopping window")
		} else if w.Advance > w.Size {
			bad("window.advance %s is larger than window.size %s: some events would fall in no window", w.Advance, w.Size)
		} else if w.Size%w.Advance != 0 {
			bad("window.size %s must be a multiple of window.advance %s", w.Size, w.Advance)
		}
	case Session:
		if w.Gap <= 0 {
			bad("window.gap must be positive for a session window")
		}
	case Count:
		if w.Events <= 0 {
			bad("window.events must be positive for a count window")
		}
	default:
		bad("window.type %q: choose tumbling, hopping, session or count", w.Type)
	}
	if w.Grace < 0 {
		bad("window.grace must not be negative")
	}
	switch s.Mode {
	case ModeEvents:
	case ModeTable:
		if w.Type == Session || w.Type == Count {
			bad("mode table works with tumbling and hopping windows: a retraction must find the window its row was counted in, which session and count windows do not determine")
		}
		if s.Time.Root != "after" && s.Time.Root != "before" {
			bad("mode table needs time to be a column of the row (e.g. after.created_at), so that before and after each fall in their own row's window; %s is the time of the change", s.Time)
		}
	default:
		bad("mode %q: choose events or table", s.Mode)
	}
	if len(s.Aggs) == 0 {
		bad("aggregates is empty")
	}
	names := map[string]bool{}
	for _, g := range s.GroupBy {
		names[g.Field] = true
	}
	for i, a := range s.Aggs {
		if a.Name == "" {
			bad("aggregates[%d] needs a name", i)
		} else if !encode.ValidAvroName(a.Name) {
			bad("aggregates[%d]: the name %q is not a valid Avro field name (it names a field of the result schema): use letters, digits and '_', starting with a letter or '_'", i, a.Name)
		}
		if names[a.Name] || a.Name == "window_start" || a.Name == "window_end" || a.Name == "events" {
			bad("aggregates[%d]: the name %q is already taken by a group field or window_start, window_end, events", i, a.Name)
		}
		names[a.Name] = true
		known := false
		for _, f := range fns {
			known = known || f == a.Fn
		}
		if !known {
			bad("aggregates[%d] (%s): fn %q is not one of count, sum, min, max, avg, count_distinct, first, last", i, a.Name, a.Fn)
		}
		if a.Fn != FnCount && a.Field == (Path{}) {
			bad("aggregates[%d] (%s): %s needs a field", i, a.Name, a.Fn)
		}
	}
	return errors.Join(errs...)
}

// opSelected reports whether changes with op are counted.
func (s *Spec) opSelected(op byte) bool {
	return s.Ops == "" || strings.IndexByte(s.Ops, op) >= 0
}
