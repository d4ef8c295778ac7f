// Package checks is the shape of a prerequisite check: what `cdcd check` prints and what a
// pipeline verifies before it starts streaming. Each failed check says how to fix it.
package checks

import (
	"fmt"
	"io"
	"strings"
)

// Status of one check.
type Status int

const (
	OK Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	}
	return "FAIL"
}

// Result is one check's outcome.
type Result struct {
	Scope  string // e.g. "pipeline shop / postgres"
	Name   string // e.g. "wal_level"
	Status Status
	Detail string // what was found
	Fix    string // how to fix it, when not OK
}

// Report collects results.
type Report struct {
	Results []Result
	scope   string
}

// Scoped returns a report writer whose results carry scope, appending to r.
func (r *Report) Scoped(scope string) *Scoped { return &Scoped{r: r, scope: scope} }

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, x := range r.Results {
		if x.Status == Fail {
			return true
		}
	}
	return false
}

// Errors returns the failed checks as one error, or nil.
func (r *Report) Errors() error {
	var msgs []string
	for _, x := range r.Results {
		if x.Status == Fail {
			msgs = append(msgs, fmt.Sprintf("%s: %s: %s (fix: %s)", x.Scope, x.Name, x.Detail, x.Fix))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("prerequisites not met:\n  %s", strings.Join(msgs, "\n  "))
}

// Print writes one line per result, fixes indented below failures and warnings.
func (r *Report) Print(w io.Writer) {
	for _, x := range r.Results {
		fmt.Fprintf(w, "%-4s  %s: %s: %s\n", x.Status, x.Scope, x.Name, x.Detail)
		if x.Status != OK && x.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", x.Fix)
		}
	}
}

// Scoped adds results under one scope.
type Scoped struct {
	r     *Report
	scope string
}

func (s *Scoped) add(st Status, name, detail, fix string) {
	s.r.Results = append(s.r.Results, Result{Scope: s.scope, Name: name, Status: st, Detail: detail, Fix: fix})
}

// OK records a passed check.
func (s *Scoped) OK(name, detail string) { s.add(OK, name, detail, "") }

// Warn records a check that passed with a concern.
func (s *Scoped) Warn(name, detail, fix string) { s.add(Warn, name, detail, fix) }

// Fail records a failed check.
func (s *Scoped) Fail(name, detail, fix string) { s.add(Fail, name, detail, fix) }
