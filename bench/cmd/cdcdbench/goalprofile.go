package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The CPU goals (goals.go) name what limits each one missed; the profiles show it. After the
// measured scenarios the suite runs the phases of those goals once more, cdcd alone (no
// limit, no Debezium), with a build that profiles its CPU from process start (profile.go), and
// writes the top of each profile next to the report, in profiles/<phase>.txt. The measured
// phases themselves run the plain build.

// goalProfile is the profile of one phase of the profiling pass.
type goalProfile struct {
	slug     string // the file's name: profiles/<slug>.txt
	title    string
	measured *toolResult // the same phase in the measured run, for comparison
	r        *toolResult // the profiling pass's run (r.Profile: the pprof file)
	top, cum string      // go tool pprof -top, flat and cumulative
}

const (
	profPGCatchup      = "pg-catchup"
	profPGCatchupNoTLS = "pg-catchup-no-tls"
	profPGSnapshot     = "pg-snapshot"
	profMariaDBCatchup = "mariadb-catchup"
	profilesDir        = "profiles"
)

// profileGoals runs the profiling pass over the wanted scenarios among 1, 3 and 5.
func (s *suite) profileGoals(ctx context.Context, want func(string) bool) {
	if !want("1") && !want("3") && !want("5") {
		return
	}
	logf("CPU profiles: building cdcd with the profiling hook")
	bin, cleanup, err := buildProfilingBinary(ctx, s.o.repo, s.dir)
	if err != nil {
		logf("CPU profiles: %v", err)
		s.profileErr = err.Error()
		return
	}
	defer cleanup()
	o := s.o
	o.cdcdBin, o.profiling = bin, true
	o.noDebezium, o.noBaseline, o.catchupWarmup = true, true, 0
	p := &suite{o: o, env: s.env, paths: s.paths, dir: s.dir, stamp: s.stamp + "p", started: time.Now(),
		settings: map[string][]string{}, warmups: map[string]*toolWarmup{}, catchupWarmups: map[string]*toolWarmup{}}
	only := func(id string) func(string) bool { return func(x string) bool { return x == id } }
	if want("1") && ctx.Err() == nil {
		logf("CPU profiles: PostgreSQL catch-up, with TLS and without")
		p.pgStreaming(ctx, only("1"))
	}
	if want("3") && ctx.Err() == nil {
		logf("CPU profiles: PostgreSQL snapshot")
		p.snapshot(ctx)
	}
	if want("5") && ctx.Err() == nil {
		logf("CPU profiles: MariaDB catch-up")
		p.mysql(ctx)
	}
	p.runCleanups(ctx)
	add := func(slug, title, id string, pick func(*scenarioResult) *toolResult) {
		psc, msc := p.scenario(id), s.scenario(id)
		if psc == nil {
			return
		}
		gp := &goalProfile{slug: slug, title: title, r: pick(psc)}
		if msc != nil {
			gp.measured = pick(msc)
		}
		if gp.r.ok() && gp.r.Profile != "" {
			gp.top = pprofTop(ctx, gp.r.Profile)
			gp.cum = pprofTop(ctx, gp.r.Profile, "-cum")
		}
		s.profiles = append(s.profiles, gp)
	}
	cdcd := func(sc *scenarioResult) *toolResult { return sc.CDCD }
	add(profPGCatchup, "PostgreSQL catch-up (scenario 1, TLS)", "1", cdcd)
	add(profPGCatchupNoTLS, "PostgreSQL catch-up without TLS (scenario 1, sslmode=disable)", "1",
		func(sc *scenarioResult) *toolResult { return sc.also(labelCDCDNoTLS) })
	add(profPGSnapshot, "PostgreSQL snapshot (scenario 3)", "3", cdcd)
	add(profMariaDBCatchup, "MariaDB catch-up (scenario 5)", "5", cdcd)
}

// measuredProfiles are the profiles the pass took (a phase whose profile failed has none),
// in the order of their files' names.
func (s *suite) measuredProfiles() []*goalProfile {
	var have []*goalProfile
	for _, gp := range s.profiles {
		if gp.top != "" {
			have = append(have, gp)
		}
	}
	sort.Slice(have, func(i, j int) bool { return have[i].slug < have[j].slug })
	return have
}

// link is gp's file as a Markdown link relative to the report.
func (gp *goalProfile) link() string {
	f := profilesDir + "/" + gp.slug + ".txt"
	return "[" + f + "](" + f + ")"
}

// profileRefs names the profiles of a missed goal, as links relative to the report.
func (s *suite) profileRefs(slugs ...string) string {
	var refs []string
	have := s.measuredProfiles()
	for _, slug := range slugs {
		for _, gp := range have {
			if gp.slug == slug {
				refs = append(refs, gp.link())
			}
		}
	}
	if len(refs) == 0 {
		return ""
	}
	return "; cdcd's CPU profile in the phase, from this run: " + strings.Join(refs, ", ")
}

// withProfiles adds the profiles of slugs to verdict v when it is a missed goal.
func (s *suite) withProfiles(v string, slugs ...string) string {
	if !strings.HasPrefix(v, "**not met**") {
		return v
	}
	return v + s.profileRefs(slugs...)
}

// text renders gp as its profiles/<slug>.txt.
func (gp *goalProfile) text(runStarted time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cdcd's CPU profile: %s\n", gp.title)
	fmt.Fprintf(&b, "From the benchmark suite of %s (its report: ../latest.md): after the measured scenarios, the\n", runStarted.UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("phase ran once more with cdcd alone, built with a hook that profiles its CPU from process\n")
	b.WriteString("start (bench/cmd/cdcdbench/profile.go); the profile ends when the last record was read back.\n\n")
	line := func(what string, r *toolResult) {
		if !r.ok() {
			return
		}
		fmt.Fprintf(&b, "%s: %s rows in %.2f s = %s, cdcd %.1f CPU s per million rows", what, human(r.Rows), r.Took.Seconds(), fmtRate(rate(r)), cpuRow(r))
		if r.Machine != nil {
			fmt.Fprintf(&b, "; the machine: %s", r.Machine)
		}
		b.WriteString("\n")
	}
	line("The measured phase", gp.measured)
	line("The profiled phase", gp.r)
	fmt.Fprintf(&b, "\n## go tool pprof -top\n\n%s\n\n## go tool pprof -top -cum\n\n%s\n", gp.top, gp.cum)
	return b.String()
}

// writeProfiles replaces dir/profiles/*.txt with this run's profiles: a file from an earlier
// run never stays beside a report that does not refer to it.
func (s *suite) writeProfiles(dir string) error {
	pd := filepath.Join(dir, profilesDir)
	old, _ := filepath.Glob(filepath.Join(pd, "*.txt"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	have := s.measuredProfiles()
	if len(have) == 0 {
		return nil
	}
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return err
	}
	for _, gp := range have {
		if err := os.WriteFile(filepath.Join(pd, gp.slug+".txt"), []byte(gp.text(s.started)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
