package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/window"
)

// Window is a windowed aggregation job over cdcd topics: it reads change topics in a Kafka
// consumer group and writes one aggregate per group and window to its output topic, exactly
// once (see package window).
type Window struct {
	Name  string      `yaml:"name"`
	Input WindowInput `yaml:"input"`
	// Time is the event time: source.ts_ms (default), ts_ms, or after.<column>.
	Time string `yaml:"time"`
	// GroupBy are fields of the change; empty: one global group.
	GroupBy    []string    `yaml:"group_by"`
	Window     WindowShape `yaml:"window"`
	Aggregates []Aggregate `yaml:"aggregates"`
	Mode       string      `yaml:"mode"` // events (default) | table
	Emit       string      `yaml:"emit"` // final (default) | updates
	Output     WindowTopic `yaml:"output"`
	Late       WindowTopic `yaml:"late"` // default <output>.late
	// OnError is what happens to an input record the job can never process (an update without
	// a before image in table mode, a field a new schema lacks, a record that is not cdcd's
	// Avro): fail (default) stops the job with the fix; dlq writes it to DLQ.Topic, in the
	// same transaction as the job's progress, and goes on.
	OnError string      `yaml:"on_error"`
	DLQ     WindowTopic `yaml:"dlq"` // default <output>.dlq
	// IdleTimeout: once the job has caught up with a partition that stays quiet this long, its
	// stream time follows the wall clock so windows close (default 30s; 0s: only event time
	// closes windows).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// InstanceID makes this instance's transactional id unique; keep it stable across
	// restarts and different between instances (default: the hostname).
	InstanceID string `yaml:"instance_id"`
	// Partitions of the job's internal topics (0: the largest input's partition count).
	Partitions int `yaml:"partitions"`
	// CommitInterval bounds how long one transaction collects input (default 100ms).
	CommitInterval Duration `yaml:"commit_interval"`
	// StaticMembership joins the job's consumer group as a static member whose
	// group.instance.id is instance_id (KIP-345): a restarted instance takes its partitions
	// back at once, without a rebalance of the others; one that stays away longer than
	// session_timeout loses them to the other instances. Needs instance_id stable per instance
	// and different between instances (the hostname default is, on most deployments).
	StaticMembership bool `yaml:"static_membership"`
	// SessionTimeout is how long the group waits for an instance that stopped answering before
	// it moves the instance's partitions (default 45s; the broker accepts
	// group.min.session.timeout.ms..group.max.session.timeout.ms, 6s..30m by default).
	SessionTimeout Duration    `yaml:"session_timeout"`
	State          WindowState `yaml:"state"`
}

// WindowState bounds a job's in-memory window state.
type WindowState struct {
	// MaxBytes is the most window state (its changelog form) one instance of the job may hold
	// (default 1GiB). A transaction that would take the state past it is aborted and the job
	// stops with an error naming the size and the fix; it never swaps, spills or drops state.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// WindowInput names what a job reads.
type WindowInput struct {
	Topics []string `yaml:"topics"`
	// Ops are the change ops counted: c, u, d, r (default all four).
	Ops []string `yaml:"ops"`
}

// WindowShape is a job's window: tumbling {size}, hopping {size, advance}, session {gap},
// count {events}; grace for all but count.
type WindowShape struct {
	Type    string   `yaml:"type"`
	Size    Duration `yaml:"size"`
	Advance Duration `yaml:"advance"`
	Gap     Duration `yaml:"gap"`
	Events  int      `yaml:"events"`
	Grace   Duration `yaml:"grace"`
	// TimeZone (an IANA zone name, default UTC) reads times without zone (timestamp without
	// time zone, date) and aligns time windows: a daily window starts at local midnight.
	TimeZone string `yaml:"time_zone"`
}

// Aggregate is one output column of a job.
type Aggregate struct {
	Name  string `yaml:"name"`
	Fn    string `yaml:"fn"`
	Field string `yaml:"field"` // not for count
}

// WindowTopic names a topic a job writes.
type WindowTopic struct {
	Topic string `yaml:"topic"`
}

// Window job defaults.
const (
	DefaultWindowTime           = "source.ts_ms"
	DefaultWindowIdleTimeout    = 30 * time.Second
	DefaultWindowCommitInterval = 100 * time.Millisecond
	DefaultWindowSessionTimeout = 45 * time.Second
	DefaultWindowStateMaxBytes  = 1 << 30
)

func (w *Window) applyDefaults() {
	if w.Time == "" {
		w.Time = DefaultWindowTime
	}
	if w.Mode == "" {
		w.Mode = string(window.ModeEvents)
	}
	if w.Emit == "" {
		w.Emit = "final"
	}
	if w.Late.Topic == "" && w.Output.Topic != "" {
		w.Late.Topic = w.Output.Topic + ".late"
	}
	if w.OnError == "" {
		w.OnError = "fail"
	}
	if w.OnError == "dlq" && w.DLQ.Topic == "" && w.Output.Topic != "" {
		w.DLQ.Topic = w.Output.Topic + ".dlq"
	}
	defDur(&w.IdleTimeout, DefaultWindowIdleTimeout)
	defDur(&w.CommitInterval, DefaultWindowCommitInterval)
	defDur(&w.SessionTimeout, DefaultWindowSessionTimeout)
	defSize(&w.State.MaxBytes, DefaultWindowStateMaxBytes)
}

// Spec is the job as package window runs it. The configuration must have been validated
// (Load and Parse do that); the error reports what does not map.
func (w *Window) Spec() (*window.Spec, error) {
	s, ps := w.spec()
	var errs []error
	for _, p := range ps {
		errs = append(errs, errors.New(p.String()))
	}
	return s, errors.Join(errs...)
}

// spec maps the YAML onto a window.Spec; the problems are the values that do not map (a
// field path, a time zone), keyed like window.Spec's own.
func (w *Window) spec() (*window.Spec, []window.Problem) {
	s := &window.Spec{Name: w.Name, Topics: append([]string(nil), w.Input.Topics...), Ops: strings.Join(w.Input.Ops, ""),
		Mode: window.Mode(w.Mode), EmitUpdates: w.Emit == "updates", Output: w.Output.Topic, Late: w.Late.Topic,
		DeadLetter:  w.DLQ.Topic,
		IdleTimeout: w.IdleTimeout.D,
		Window: window.WindowSpec{Type: window.WindowType(w.Window.Type), Size: w.Window.Size.D, Advance: w.Window.Advance.D,
			Gap: w.Window.Gap.D, Events: w.Window.Events, Grace: w.Window.Grace.D}}
	var ps []window.Problem
	const fixPath = "write after.<column>, before.<column>, source.<field>, ts_ms or op"
	if z := w.Window.TimeZone; z != "" {
		loc, err := time.LoadLocation(z)
		if err != nil || z == "Local" {
			ps = append(ps, window.Problem{Key: "window.time_zone", Message: fmt.Sprintf("%s is not a time zone", quote(z)),
				Fix: "name an IANA zone such as Europe/Berlin or America/New_York, or leave it out for UTC"})
		}
		s.TimeZone = loc
	}
	var err error
	if s.Time, err = window.ParsePath(w.Time); err != nil {
		ps = append(ps, window.Problem{Key: "time", Message: err.Error(), Fix: fixPath})
	}
	for i, g := range w.GroupBy {
		p, err := window.ParsePath(g)
		if err != nil {
			ps = append(ps, window.Problem{Key: fmt.Sprintf("group_by[%d]", i), Message: err.Error(), Fix: fixPath})
		}
		s.GroupBy = append(s.GroupBy, p)
	}
	for i, a := range w.Aggregates {
		as := window.AggSpec{Name: a.Name, Fn: window.Fn(a.Fn)}
		if a.Field != "" {
			if as.Field, err = window.ParsePath(a.Field); err != nil {
				ps = append(ps, window.Problem{Key: fmt.Sprintf("aggregates[%d].field", i), Message: err.Error(), Fix: fixPath})
			}
		}
		s.Aggs = append(s.Aggs, as)
	}
	return s, ps
}

var windowTypes = []string{string(window.Tumbling), string(window.Hopping), string(window.Session), string(window.Count)}

// validateWindows checks every window job; names must be unique among jobs and pipelines
// (both name Kafka groups, transactional ids and /readyz entries).
func (c *Config) validateWindows(ps *problems) {
	pipelines := map[string]int{}
	for i, p := range c.Pipelines {
		pipelines[p.Name] = i
	}
	names := map[string]int{}
	outputs := map[string]string{}
	for i := range c.Windows {
		c.validateWindow(ps, i, pipelines, names, outputs)
	}
}

// validateWindow checks what the YAML of job i can get wrong (a value that does not parse, a
// key of another window type, names and topics shared with other jobs and pipelines, the
// instance's settings) and adds window.Spec's problems with the job's rules, each once.
func (c *Config) validateWindow(ps *problems, i int, pipelines, names map[string]int, outputs map[string]string) {
	w := &c.Windows[i]
	at := func(k string) string { return join(fmt.Sprintf("windows[%d]", i), k) }
	var own problems
	if w.Name != "" {
		if !pipelineNameRE.MatchString(w.Name) {
			own.add(at("name"), fmt.Sprintf("%s is not a valid window job name", quote(w.Name)), "use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 63 characters")
		} else if j, dup := names[w.Name]; dup {
			own.add(at("name"), fmt.Sprintf("window job name %s is already used by windows[%d]", quote(w.Name), j), "give every window job its own name")
		} else {
			names[w.Name] = i
		}
		if j, dup := pipelines[w.Name]; dup {
			own.add(at("name"), fmt.Sprintf("window job name %s is already the name of pipelines[%d]", quote(w.Name), j), "give the job a name no pipeline has (both appear in /readyz, metrics and logs)")
		}
	}
	for j, op := range w.Input.Ops {
		if !oneOf(op, "c", "u", "d", "r") {
			own.add(at(fmt.Sprintf("input.ops[%d]", j)), fmt.Sprintf("%s is not a change op", quote(op)), "use c (create), u (update), d (delete) or r (snapshot read)")
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"window.size", w.Window.Size}, {"window.advance", w.Window.Advance}, {"window.gap", w.Window.Gap}, {"window.grace", w.Window.Grace}} {
		if d.v.IsSet() {
			checkDur(&own, at(d.key), d.v, 0)
		}
	}
	// A key of another window type is a mistake that would be silently ignored.
	if oneOf(w.Window.Type, windowTypes...) {
		for _, k := range []struct {
			key, types string
			set        bool
		}{{"size", "tumbling hopping", w.Window.Size.IsSet()}, {"advance", "hopping", w.Window.Advance.IsSet()},
			{"gap", "session", w.Window.Gap.IsSet()}, {"events", "count", w.Window.Events != 0}, {"grace", "tumbling hopping session", w.Window.Grace.IsSet()}} {
			if k.set && !strings.Contains(k.types, w.Window.Type) {
				own.add(at("window."+k.key), fmt.Sprintf("%s does not apply to a %s window", k.key, w.Window.Type),
					fmt.Sprintf("remove it; a %s window takes %s", w.Window.Type, windowKeys(w.Window.Type)))
			}
		}
	}
	if !oneOf(w.Emit, "final", "updates") {
		own.add(at("emit"), fmt.Sprintf("unknown emit %s", quote(w.Emit)), "use final (one result when the window closes) or updates (a result on every change)")
	}
	if !oneOf(w.OnError, "fail", "dlq") {
		own.add(at("on_error"), fmt.Sprintf("unknown on_error %s", quote(w.OnError)), "use fail (stop the job on a record it can never process) or dlq (dead-letter the record and go on)")
	} else if w.OnError == "fail" && w.DLQ.Topic != "" {
		own.add(at("dlq.topic"), "is set, but on_error is fail, so nothing would be written to it", "set on_error: dlq, or remove dlq")
	}
	for _, t := range []struct{ key, topic string }{{"output.topic", w.Output.Topic}, {"late.topic", w.Late.Topic}, {"dlq.topic", w.DLQ.Topic}} {
		if t.topic == "" {
			continue
		}
		if prev, dup := outputs[t.topic]; dup {
			own.add(at(t.key), fmt.Sprintf("topic %s is already written by %s", t.topic, prev), "give every window job output and late topics of its own")
		} else {
			outputs[t.topic] = fmt.Sprintf("%s of window job %s", t.key, w.Name)
		}
	}
	checkDur(&own, at("idle_timeout"), w.IdleTimeout, 0)
	if !w.IdleTimeout.Bad && w.IdleTimeout.D > 0 && w.IdleTimeout.D < 100*time.Millisecond {
		own.add(at("idle_timeout"), "is shorter than 100ms", "use 1s or more (30s is the default), or 0s to close windows by event time only")
	}
	checkDur(&own, at("commit_interval"), w.CommitInterval, time.Millisecond)
	checkDur(&own, at("session_timeout"), w.SessionTimeout, time.Second)
	checkSize(&own, at("state.max_bytes"), w.State.MaxBytes, 1)
	if w.Partitions < 0 {
		own.add(at("partitions"), "must not be negative", "use 0 (the largest input topic's partition count) or a positive count")
	}
	if w.InstanceID != "" && !instanceIDRE.MatchString(w.InstanceID) {
		own.add(at("instance_id"), fmt.Sprintf("%s is not a valid instance id", quote(w.InstanceID)), "use letters, digits, '.', '_' and '-' (it becomes part of a Kafka transactional id)")
	}
	spec, conv := w.spec()
	for _, p := range append(conv, spec.Problems()...) {
		if !related(at(p.Key), own) {
			own.add(at(p.Key), p.Message, p.Fix)
		}
	}
	*ps = append(*ps, own...)
}

// related reports whether a problem is already reported at path, above it or below it.
func related(path string, ps []Problem) bool {
	if coveredBy(path, ps) {
		return true
	}
	for _, p := range ps {
		if strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[") {
			return true
		}
	}
	return false
}

var instanceIDRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

func windowKeys(typ string) string {
	switch typ {
	case "tumbling":
		return "size and grace"
	case "hopping":
		return "size, advance and grace"
	case "session":
		return "gap and grace"
	}
	return "events"
}
