// Package health tracks whether each pipeline is connected and streaming, and each window
// job running, for /readyz.
//
// A pipeline is ready only while its supervisor says so: connected to its source and to Kafka
// and making progress. A window job (entry window:<name>) is ready only while it runs:
// restored and consuming. Every not-ready state carries the reason an operator needs.
package health

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/redact"
)

// State of one pipeline.
type State struct {
	Ready  bool      `json:"ready"`
	Phase  string    `json:"phase"`            // starting | standby | streaming | retrying | stopped | failed
	Reason string    `json:"reason,omitempty"` // why it is not ready, with the fix when known
	Since  time.Time `json:"since"`
	// Conditions are problems found by watchers while the pipeline runs (e.g. "stalled":
	// delivering nothing); any condition makes the pipeline unready.
	Conditions map[string]string `json:"conditions,omitempty"`
	// Snapshot lists the tables whose snapshot is queued or being read; while it is not
	// empty a streaming pipeline's phase is "snapshotting" (it stays ready: the stream flows).
	Snapshot []SnapshotTable `json:"snapshot,omitempty"`
}

// SnapshotTable is one table's snapshot progress.
type SnapshotTable struct {
	Table         string    `json:"table"`
	Reason        string    `json:"reason"` // initial | added | requested
	Where         string    `json:"where,omitempty"`
	Rows          uint64    `json:"rows"`
	RowsEstimated int64     `json:"rows_estimated"`
	Chunks        uint64    `json:"chunks"`
	ChunksPending int       `json:"chunks_pending"`
	Started       time.Time `json:"started"`
}

// Registry holds the state of every pipeline. Safe for concurrent use.
type Registry struct {
	mu     sync.Mutex
	states map[string]State
	now    func() time.Time
	redact func(string) string // see SetRedactor
	fleet  *Fleet              // see SetFleet; nil unless in fleet mode
}

// SetRedactor sets how reasons are cleaned of secrets before they are stored (and served on
// /readyz): a reason is usually an error's text, and errors can carry a connection string.
// Without one, credentials are masked by their form (redact.String).
func (r *Registry) SetRedactor(f func(string) string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redact = f
}

// clean redacts a reason; r.mu is held.
func (r *Registry) clean(reason string) string {
	if r.redact != nil {
		return r.redact(reason)
	}
	return redact.String(reason)
}

// NewRegistry returns a registry that knows the given pipelines, all "starting".
func NewRegistry(pipelines ...string) *Registry {
	r := &Registry{states: map[string]State{}, now: time.Now}
	for _, p := range pipelines {
		r.states[p] = State{Phase: "starting", Reason: "not connected yet", Since: r.now()}
	}
	return r
}

// Set records a pipeline's state; Since changes only when the phase or readiness changes.
func (r *Registry) Set(pipeline string, ready bool, phase, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.states[pipeline]
	s := State{Ready: ready, Phase: phase, Reason: r.clean(reason), Since: r.now(), Conditions: old.Conditions, Snapshot: old.Snapshot}
	if ok && old.Ready == ready && old.Phase == phase {
		s.Since = old.Since
	}
	r.states[pipeline] = s
}

// windowPrefix marks window jobs' entries.
const windowPrefix = "window:"

// WindowKey is the entry of window job name: window:<name>.
func WindowKey(name string) string { return windowPrefix + name }

// SetWindow records a window job's phase (starting | restoring | running | waiting |
// retrying | failed) and why; it is ready only while running.
func (r *Registry) SetWindow(job, phase, reason string) {
	r.Set(WindowKey(job), phase == "running", phase, reason)
}

// describe names an entry for messages: "pipeline shop" or "window job orders".
func describe(name string) string {
	if job, ok := strings.CutPrefix(name, windowPrefix); ok {
		return "window job " + job
	}
	return "pipeline " + name
}

// SetCondition records (reason != "") or clears (reason == "") a named condition.
func (r *Registry) SetCondition(pipeline, name, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.states[pipeline]
	if reason == "" {
		delete(s.Conditions, name)
	} else {
		if s.Conditions == nil {
			s.Conditions = map[string]string{}
		}
		s.Conditions[name] = r.clean(reason)
	}
	r.states[pipeline] = s
}

// SetSnapshot records a pipeline's snapshot progress (nil or empty: no snapshot runs).
func (r *Registry) SetSnapshot(pipeline string, tables []SnapshotTable) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.states[pipeline]
	s.Snapshot = append([]SnapshotTable(nil), tables...)
	r.states[pipeline] = s
}

// Snapshot returns a copy of every pipeline's state and whether all are ready.
func (r *Registry) Snapshot() (map[string]State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]State, len(r.states))
	all := len(r.states) > 0
	if r.fleet != nil {
		all = r.fleet.Joined && r.fleet.Problem == ""
	}
	for k, v := range r.states {
		if len(v.Conditions) > 0 {
			c := make(map[string]string, len(v.Conditions))
			for ck, cv := range v.Conditions {
				c[ck] = cv
			}
			v.Conditions = c
			v.Ready = false
		}
		if len(v.Snapshot) > 0 {
			v.Snapshot = append([]SnapshotTable(nil), v.Snapshot...)
			if v.Phase == "streaming" {
				v.Phase = "snapshotting"
			}
		}
		out[k] = v
		all = all && v.Ready
	}
	return out, all
}

// ReadyHandler answers 200 when every pipeline is ready and 503 otherwise, with a JSON body
// giving each pipeline's state and reason.
func (r *Registry) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		states, ready := r.Snapshot()
		names := make([]string, 0, len(states))
		for n := range states {
			names = append(names, n)
		}
		sort.Strings(names)
		type entry struct {
			Name string `json:"name"`
			State
		}
		body := struct {
			Ready     bool    `json:"ready"`
			Fleet     *Fleet  `json:"fleet,omitempty"`
			Pipelines []entry `json:"pipelines"`
		}{Ready: ready, Fleet: r.Fleet(), Pipelines: []entry{}}
		for _, n := range names {
			body.Pipelines = append(body.Pipelines, entry{n, states[n]})
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}
