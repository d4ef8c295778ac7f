package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

const (
	targetRowsPerSec = 100_000
	targetP99        = 50 * time.Millisecond
)

type report struct {
	opts     options
	env      *benchEnv
	started  time.Time
	finished time.Time
	rounds   []*roundResult
	profile  *roundResult
	logDir   string
}

// series collects one number per round.
type series struct {
	vals []float64
}

func (s *series) add(v float64, ok bool) {
	if ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
		s.vals = append(s.vals, v)
	}
}

func (s series) empty() bool { return len(s.vals) == 0 }

func (s series) median() float64 {
	v := slices.Clone(s.vals)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func (s series) min() float64 { return slices.Min(s.vals) }
func (s series) max() float64 { return slices.Max(s.vals) }

// spread is (max-min)/median in percent.
func (s series) spread() string {
	if len(s.vals) < 2 || s.median() == 0 {
		return "–"
	}
	return fmt.Sprintf("±%.0f%%", 50*(s.max()-s.min())/math.Abs(s.median()))
}

func (s series) each(f func(float64) string) string {
	if s.empty() {
		return "n/a"
	}
	parts := make([]string, len(s.vals))
	for i, v := range s.vals {
		parts[i] = f(v)
	}
	return strings.Join(parts, " / ")
}

type row struct {
	name, target string
	s            series
	fmt          func(float64) string
	pass         func(float64) bool // on the median; nil: no target
}

func fRate(v float64) string { return fmt.Sprintf("%.0f", v) }
func fSec(v float64) string  { return fmt.Sprintf("%.2f s", v) }
func fMs(v float64) string   { return fmt.Sprintf("%.1f ms", v) }
func fX(v float64) string    { return fmt.Sprintf("%.2f×", v) }
func fMiB(v float64) string  { return fmt.Sprintf("%.0f MiB", v) }
func fCores(v float64) string {
	return fmt.Sprintf("%.2f", v)
}

func durMs(d time.Duration) (float64, bool) { return float64(d) / float64(time.Millisecond), d >= 0 }

// measured are the rounds the statistics use: the undisturbed ones, or all when every round
// was disturbed.
func (rp *report) measured() []*roundResult {
	var ok []*roundResult
	for _, r := range rp.rounds {
		if len(r.disturbed()) == 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rp.rounds
	}
	return ok
}

func (rp *report) excluded() []int {
	var out []int
	if m := rp.measured(); len(m) < len(rp.rounds) {
		for _, r := range rp.rounds {
			if !slices.Contains(m, r) {
				out = append(out, r.Round)
			}
		}
	}
	return out
}

func (rp *report) rows() []row {
	var latCPU, latEvPerTxn, latCommit series
	var catch, steady, catchT, recvT, recvRate, ratio, cpu, cpuPerM, hwm, p50, p95, p99, ackP99, h50, h95, h99, wrate, cdcdCores, walCores, kafkaCores, sysCores, commitFrac, evPerTxn series
	for _, r := range rp.measured() {
		if c := r.Catchup; c != nil && c.Total > 0 {
			catch.add(c.RowsPerSec, true)
			steady.add(c.SteadyRowsPerSec, c.SteadyRowsPerSec > 0)
			catchT.add(c.Total.Seconds(), true)
			cpu.add(c.CPU, c.CPU >= 0)
			cpuPerM.add(c.CPU/float64(rp.opts.rows)*1e6, c.CPU >= 0)
			hwm.add(float64(c.HWMKB)/1024, c.HWMKB > 0)
			cdcdCores.add(c.CPU/c.Total.Seconds(), c.CPU >= 0)
			walCores.add(c.WalsenderCPU/c.Total.Seconds(), c.WalsenderCPU >= 0)
			kafkaCores.add(c.KafkaCPU/c.Total.Seconds(), c.KafkaCPU >= 0)
			sysCores.add(c.SysBusyCores, c.SysBusyCores > 0)
			commitFrac.add(100*c.CommitSecs/c.Total.Seconds(), c.Txns > 0)
			evPerTxn.add(c.Events/c.Txns, c.Txns > 0)
		}
		if b := r.Baseline; b != nil {
			recvT.add(b.Took.Seconds(), true)
			recvRate.add(b.RowsPerSec, true)
			if c := r.Catchup; c != nil && c.Total > 0 {
				ratio.add(c.Total.Seconds()/b.Took.Seconds(), true)
			}
		}
		if l := r.Latency; l != nil {
			p50.add(durMs(l.FromInsert.P50))
			p95.add(durMs(l.FromInsert.P95))
			p99.add(durMs(l.FromInsert.P99))
			ackP99.add(durMs(l.FromAck.P99))
			h50.add(durMs(l.Hist.P50))
			h95.add(durMs(l.Hist.P95))
			h99.add(durMs(l.Hist.P99))
			wrate.add(l.AchievedRate, l.AchievedRate > 0)
			latCPU.add(l.CDCDCPU, l.CDCDCPU >= 0)
			latEvPerTxn.add(float64(l.Received)/l.Txns, l.Txns > 0)
			latCommit.add(durMs(l.CommitMean))
		}
	}
	ge := func(t float64) func(float64) bool { return func(v float64) bool { return v >= t } }
	lt := func(t float64) func(float64) bool { return func(v float64) bool { return v < t } }
	tp99 := float64(targetP99) / float64(time.Millisecond)
	return []row{
		{"catch-up throughput, rows/s (cdcd start → all committed)", "≥ 100000", catch, fRate, ge(targetRowsPerSec)},
		{"  steady throughput, rows/s (first commit → all committed)", "", steady, fRate, nil},
		{"  catch-up time", "", catchT, fSec, nil},
		{"pg_recvlogical drain time (same backlog)", "", recvT, fSec, nil},
		{"  pg_recvlogical rows/s", "", recvRate, fRate, nil},
		{"ratio cdcd time / pg_recvlogical time", "", ratio, fX, nil},
		{"cdcd CPU seconds (catch-up)", "", cpu, fSec, nil},
		{"  cdcd CPU seconds per 1M rows", "", cpuPerM, fSec, nil},
		{"cdcd peak RSS (VmHWM after catch-up)", "", hwm, fMiB, nil},
		{"  avg cores busy during catch-up: cdcd", "", cdcdCores, fCores, nil},
		{"  … walsender (decoding)", "", walCores, fCores, nil},
		{"  … Kafka broker", "", kafkaCores, fCores, nil},
		{"  … whole machine (of " + fmt.Sprint(numCPU()) + ")", "", sysCores, fCores, nil},
		{"  Kafka txn flush+commit time, % of catch-up wall time", "", commitFrac, func(v float64) string { return fmt.Sprintf("%.0f%%", v) }, nil},
		{"  events per Kafka transaction", "", evPerTxn, fRate, nil},
		{"latency p50 (consumer receipt − c)", "", p50, fMs, nil},
		{"latency p95 (consumer receipt − c)", "", p95, fMs, nil},
		{"latency p99 (consumer receipt − c)", "< 50 ms", p99, fMs, lt(tp99)},
		{"  latency p99 (consumer receipt − writer's commit ack)", "", ackP99, fMs, nil},
		{"  cdcd_end_to_end_latency_seconds p50 (histogram estimate)", "", h50, fMs, nil},
		{"  cdcd_end_to_end_latency_seconds p95", "", h95, fMs, nil},
		{"  cdcd_end_to_end_latency_seconds p99", "", h99, fMs, nil},
		{"  writer rate achieved, rows/s", fmt.Sprint(rp.opts.rate), wrate, fRate, nil},
		{"  latency phase: events per Kafka transaction", "", latEvPerTxn, fRate, nil},
		{"  latency phase: mean Kafka flush+commit", "", latCommit, fMs, nil},
		{"  latency phase: cdcd CPU seconds", "", latCPU, fSec, nil},
	}
}

func verdict(r row) string {
	if r.pass == nil || r.s.empty() {
		return ""
	}
	if r.pass(r.s.median()) {
		return "met"
	}
	return "**missed**"
}

func (rp *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := rp.opts
	p("# cdcd benchmark — %s\n\n", rp.started.Format("2006-01-02 15:04 MST"))
	p("Run took %s. %d measured round(s)%s. Each value below lists every round (round 1 / round 2 / …); "+
		"*spread* is ±half the range relative to the median. The machine is shared with other engineers' test runs, so numbers are noisy.\n\n",
		rp.finished.Sub(rp.started).Round(time.Second), len(rp.rounds), map[bool]string{true: " plus one profiling round", false: ""}[rp.profile != nil])

	p("## Environment\n\n")
	e := rp.env
	p("- cdcd: `%s` (`%s`)\n", e.cdcdVersion, o.cdcdBin)
	p("- harness: %s; %d CPUs (%s); kernel %s; load average at start %s\n", e.goVersion, e.cpus, e.cpuModel, e.kernel, e.loadAvg)
	p("- PostgreSQL: %s\n  - %s\n", e.pgVersion, strings.Join(e.pgSettings, ", "))
	p("- Kafka: %s (broker pid %d); registry: %s\n", o.kafka, e.kafkaPID, o.registry)
	p("- pg_recvlogical: `%s`\n\n", e.recvlogical)

	p("## Method\n\n")
	p("- Table `public.%s (id bigint primary key, a int, b text /* 40 bytes */, c timestamptz)` in a fresh database per round.\n", benchTable)
	p("- cdcd is started once until `/readyz` is 200 and stopped with SIGTERM (creates slot and publication); a second pgoutput slot is created for pg_recvlogical.\n")
	p("- Backlog: %d inserts, COPY in transactions of %d rows (2 writer sessions, synchronous_commit=off for those sessions only), written while cdcd is stopped.\n", o.rows, o.txRows)
	p("- Catch-up: time from `cdcd run` exec to `sum(cdcd_events_published_total{pipeline=…}) = %d` (scraped every 100 ms; the counter is increased after each Kafka commit). CPU = utime+stime of cdcd from /proc; peak RSS = VmHWM. Walsender / Kafka CPU from their /proc entries over the same interval.\n", o.rows)
	if o.verify {
		p("- After catch-up, the topic is read from the start with read_committed and every id counted (exactly once check).\n")
	}
	p("- Baseline: `pg_recvlogical --start --no-loop -o proto_version=1 -o publication_names=<pub> --endpos=<LSN after backlog> -f /dev/null` on its own slot over the same backlog. Order alternates: odd rounds run cdcd first, even rounds pg_recvlogical first.\n")
	p("- Latency: cdcd caught up; %d connections commit INSERTs, %d row(s) per transaction (c = clock_timestamp()), paced by a 1 ms ticker at %d rows/s for %s; a read_committed consumer (franz-go, FetchMaxWait 100 ms) stamps records on receipt. *receipt − c* is an upper bound of source-commit→Kafka-commit (it adds the WAL flush of the commit and the consumer's fetch); *receipt − ack* subtracts the source commit but may undercount by the ack's trip. cdcd's own histogram is the delta over the phase, estimated like `histogram_quantile`.\n",
		o.latConns, max(1, o.latTxRows), o.rate, o.latDur)
	p("- Pipeline configuration (defaults unless listed): topic_partitions %d, heartbeat_interval 1s, status_interval 1s, exactly_once", o.partitions)
	if o.pipelineExtra != "" {
		p(", plus:\n\n```yaml\n%s```\n", o.pipelineExtra)
	}
	if rp.profile != nil {
		p("\n- Profiling round: cdcd is rebuilt from the working tree at run time (plus a pprof hook added with `go build -overlay`), so it may hold newer code than `%s`; its numbers are not in the table below.", o.cdcdBin)
	}
	if o.cdcdEnv != "" {
		p("\n- cdcd environment: `%s`", o.cdcdEnv)
	}
	p("\n\n")

	p("## Results\n\n")
	p("| metric | target | per round | median | spread | |\n|---|---|---|---|---|---|\n")
	for _, r := range rp.rows() {
		med := "n/a"
		if !r.s.empty() {
			med = r.fmt(r.s.median())
		}
		name := r.name
		if rest, ok := strings.CutPrefix(name, "  "); ok {
			name = "&emsp;" + rest
		}
		p("| %s | %s | %s | %s | %s | %s |\n", name, r.target, r.s.each(r.fmt), med, r.s.spread(), verdict(r))
	}
	if ex := rp.excluded(); len(ex) > 0 {
		p("\nRound(s) %v are left out of this table: the shared stack was disturbed while they measured (see their sections).\n", ex)
	}
	p("\n")

	for _, r := range rp.rounds {
		rp.roundSection(&b, r)
	}
	if rp.profile != nil {
		rp.roundSection(&b, rp.profile)
	}
	p("## Files\n\nLogs, configurations and profiles: `%s`.\n", rp.logDir)
	return b.String()
}

func (rp *report) roundSection(b *strings.Builder, r *roundResult) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	title := fmt.Sprintf("Round %d", r.Round)
	if r.Profiled {
		title = fmt.Sprintf("Profiling round (%d)", r.Round)
	}
	p("## %s — pipeline `%s`\n\n", title, r.Name)
	if r.Err != "" {
		p("**Failed:**\n\n```\n%s\n```\n\n", r.Err)
	}
	for _, w := range r.Warnings {
		p("- warning: %s\n", w)
	}
	for _, w := range r.disturbed() {
		p("- **disturbed:** %s\n", w)
	}
	if r.SetupReady > 0 {
		p("- first start (slot + publication): ready after %s\n", r.SetupReady.Round(time.Millisecond))
	}
	if r.Backlog.took > 0 {
		p("- backlog: %d rows written in %s (%.0f rows/s), %.1f MiB of WAL, end LSN %s\n", rp.opts.rows, r.Backlog.took.Round(time.Millisecond),
			float64(rp.opts.rows)/r.Backlog.took.Seconds(), float64(r.Backlog.walBytes)/(1<<20), r.Backlog.endLSN)
	}
	if bl := r.Baseline; bl != nil {
		p("- pg_recvlogical: %s (%.0f rows/s); walsender %.2f CPU s, pg_recvlogical %.2f CPU s; machine %.2f cores busy; ran %s cdcd\n",
			bl.Took.Round(time.Millisecond), bl.RowsPerSec, bl.WalsenderCPU, bl.RecvCPU, bl.SysBusyCores, map[bool]string{true: "before", false: "after"}[r.BaselineFirst])
	}
	if c := r.Catchup; c != nil && c.Total > 0 {
		p("- catch-up: %s total (ready after %s, first commit after %s) = %.0f rows/s, %.0f rows/s from the first commit\n",
			c.Total.Round(time.Millisecond), c.Ready.Round(time.Millisecond), c.FirstEvent.Round(time.Millisecond), c.RowsPerSec, c.SteadyRowsPerSec)
		p("- cdcd: %.2f CPU s (%.2f cores on average), peak RSS %.0f MiB (RSS at the end %.0f MiB); walsender %.2f CPU s; Kafka %.2f CPU s; machine %.2f cores busy\n",
			c.CPU, c.CPU/c.Total.Seconds(), float64(c.HWMKB)/1024, float64(c.RSSEndKB)/1024, c.WalsenderCPU, c.KafkaCPU, c.SysBusyCores)
		if c.Txns > 0 {
			p("- Kafka transactions: %.0f committed (%.0f events each on average); flush+commit took %.2f s in total (%.0f%% of the catch-up; meanwhile the session loop consumes nothing and the source can run ahead only by the items channel's capacity)\n",
				c.Txns, c.Events/c.Txns, c.CommitSecs, 100*c.CommitSecs/c.Total.Seconds())
		}
	}
	if cr := r.Count; cr != nil {
		p("- topic check (read_committed): %d records, %d distinct backlog ids, %d duplicates, %d unexpected, %d tombstones; read in %s\n",
			cr.records, cr.unique, cr.duplicates, cr.outside, cr.tombstones, cr.took.Round(time.Millisecond))
	}
	if l := r.Latency; l != nil {
		p("- latency phase: %d/%d records received (%d duplicates) — writer %s at %.0f tx/s, %d rows started >10 ms late; last record %s after the writer finished\n",
			l.Received, l.Rows, l.Dups, l.WriterTook.Round(time.Millisecond), l.AchievedRate, l.Late, l.Drain.Round(time.Millisecond))
		p("- cdcd in the latency phase: %.0f Kafka transactions (%.0f events each), mean flush+commit %s; cdcd %.2f CPU s, walsender %.2f CPU s, machine %.2f cores busy\n",
			l.Txns, float64(l.Received)/max(1, l.Txns), ms(l.CommitMean), l.CDCDCPU, l.WalCPU, l.SysBusyCores)
		if l.DecodeErr != "" {
			p("- latency decode error: %s\n", l.DecodeErr)
		}
		p("\n| latency | p50 | p95 | p99 | max | n |\n|---|---|---|---|---|---|\n")
		q := func(name string, x quantiles) {
			p("| %s | %s | %s | %s | %s | %d |\n", name, ms(x.P50), ms(x.P95), ms(x.P99), ms(x.Max), x.N)
		}
		q("consumer receipt − c (insert time)", l.FromInsert)
		q("consumer receipt − writer's commit ack", l.FromAck)
		q("writer's commit ack − c (source commit itself)", l.SourceCommit)
		q("cdcd_end_to_end_latency_seconds (estimate)", l.Hist)
	}
	if r.ShutdownTook > 0 || r.FinalHWMKB > 0 {
		p("\n- at the end: cdcd peak RSS %.0f MiB, %.2f CPU s in total; SIGTERM → exit %s\n", float64(r.FinalHWMKB)/1024, r.FinalCPU, r.ShutdownTook.Round(time.Millisecond))
	}
	if c := r.Catchup; c != nil && len(c.Timeline) > 0 {
		p("\n<details><summary>catch-up timeline (per second; CPU in cores)</summary>\n\n")
		p("| t | committed | rows/s | txns | cdcd | walsender | kafka | machine | cdcd RSS |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range c.Timeline {
			p("| %.1f s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f MiB |\n", t.at.Seconds(), t.events, t.rate, t.commitsDelta, t.cdcd, t.wal, t.kafka, t.sys, float64(t.rssKB)/1024)
		}
		p("\n</details>\n")
	}
	if r.CPUTop != "" {
		p("\n### CPU profile of cdcd during catch-up (flat)\n\n```\n%s\n```\n\n### Cumulative\n\n```\n%s\n```\n", r.CPUTop, r.CPUCum)
	}
	if r.StallDump != "" {
		p("\n<details><summary>goroutines of cdcd 1.5 s after ready, nothing committed yet</summary>\n\n```\n%s\n```\n\n</details>\n", r.StallDump)
	}
	for _, tv := range []struct{ title, body string }{
		{"runnable but not running (CPU contention), cumulative", r.TraceSched},
		{"blocked on the network, cumulative", r.TraceNet},
		{"blocked on channels and mutexes, cumulative", r.TraceSync},
		{"in system calls, cumulative", r.TraceSyscall},
	} {
		if tv.body != "" {
			p("\n### Execution trace of the latency phase: time %s\n\n```\n%s\n```\n", tv.title, tv.body)
		}
	}
	if r.LatCPUTop != "" {
		p("\n### CPU profile of cdcd during the latency phase (flat)\n\n```\n%s\n```\n\n### Cumulative\n\n```\n%s\n```\n", r.LatCPUTop, r.LatCPUCum)
	}
	if r.HeapTop != "" {
		p("\n### Heap in use at the end of catch-up\n\n```\n%s\n```\n", r.HeapTop)
	}
	p("\n")
}

// summary is the short form for stdout.
func (rp *report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncdcd benchmark %s — %d round(s), %d rows backlog, latency %d tx/s for %s\n",
		rp.started.Format("2006-01-02 15:04"), len(rp.rounds), rp.opts.rows, rp.opts.rate, rp.opts.latDur)
	if ex := rp.excluded(); len(ex) > 0 {
		fmt.Fprintf(&b, "  (round(s) %v left out: the stack was disturbed while they measured)\n", ex)
	}
	for _, r := range rp.rows() {
		if strings.HasPrefix(r.name, "  …") {
			continue
		}
		med := "n/a"
		if !r.s.empty() {
			med = r.fmt(r.s.median())
		}
		v := verdict(r)
		if v != "" {
			v = "  [" + strings.Trim(v, "*") + " target " + r.target + "]"
		}
		fmt.Fprintf(&b, "  %-62s %-28s median %s %s%s\n", strings.TrimSpace(r.name), r.s.each(r.fmt), med, r.s.spread(), v)
	}
	for _, r := range append(slices.Clone(rp.rounds), rp.profile) {
		if r != nil && r.Err != "" {
			fmt.Fprintf(&b, "  round %d FAILED: %s\n", r.Round, firstLine(r.Err))
		}
	}
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
