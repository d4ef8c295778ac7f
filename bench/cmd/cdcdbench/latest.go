package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Targets of issue 13, checked in the report (never faked: a missing number is "n/a").
const (
	targetCatchupVsDebezium = 4.0  // cdcd catch-up rows/s ≥ 4× Debezium's
	targetCatchupVsLimit    = 0.60 // ≥ 60 % of pg_recvlogical
	targetSnapshotVsDbz     = 5.0
	targetRSSFraction       = 0.2     // cdcd peak RSS ≤ 1/5 of Debezium's
	targetSnapshotRate      = 200_000 // rows/s, PostgreSQL and MariaDB snapshots of 5M rows
	targetSnapshotVsCopy    = 0.5     // ≥ half of COPY (FORMAT binary)
	targetBinlogRate        = 150_000 // rows/s, MariaDB binlog catch-up
	targetWindowRate        = 200_000 // events/s consumed and committed by a window job
	// MariaDB snapshot of a composite-key table: the one-column key's rate ÷ the composite
	// key's at most this (issue 21: the key predicate must let the chunk query use the index).
	targetCompositeSlowdown = 1.5
)

// write renders bench/results/latest.md (or -latest) and its charts, and a copy of both in the
// suite's run directory.
func (s *suite) write() error {
	dir := filepath.Dir(s.o.latest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sort.SliceStable(s.scenarios, func(i, j int) bool { return s.scenarios[i].ID[0] < s.scenarios[j].ID[0] })
	charts, cerr := s.charts(dir)
	if cerr != nil {
		logf("charts: %v", cerr)
	}
	if err := s.writeProfiles(dir); err != nil {
		return err
	}
	md := s.markdown(charts)
	if err := os.WriteFile(s.o.latest, []byte(md), 0o644); err != nil {
		return err
	}
	_ = os.WriteFile(filepath.Join(s.dir, filepath.Base(s.o.latest)), []byte(md), 0o644)
	fmt.Println("\ntargets:")
	for _, t := range s.targets() {
		fmt.Printf("  %-50s %-10s %s\n", t[0], t[1], strings.ReplaceAll(t[2], "**", ""))
	}
	fmt.Printf("\nreport: %s\ncharts: %s\nlogs:   %s\n", s.o.latest, strings.Join(charts, ", "), s.dir)
	return cerr
}

func (s *suite) charts(dir string) ([]string, error) {
	var out []string
	// Throughput: rows/s per throughput scenario.
	var labels []string
	var c, d, l []float64
	for _, sc := range s.scenarios {
		if sc.Kind == "latency" {
			continue
		}
		labels = append(labels, "#"+sc.ID)
		c = append(c, rate(sc.CDCD))
		d = append(d, rate(sc.Debezium))
		l = append(l, rate(sc.Limit))
	}
	if len(labels) > 0 {
		p := filepath.Join(dir, "throughput.png")
		if err := groupedBars(p, "Throughput per scenario (rows/s, log scale; no bar = not measured)", "rows/s", labels,
			[]barGroup{{"cdcd", colCDCD, c}, {"Debezium (#6: Kafka Streams)", colDebezium, d}, {"limit (source's own reader)", colLimit, l}}, true); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	// Latency: p50/p95/p99 per steady scenario and tool.
	labels = nil
	var p50c, p95c, p99c, p99d, p50d, p95d, p99l, p99t []float64
	for _, sc := range s.scenarios {
		if sc.Kind != "latency" {
			continue
		}
		labels = append(labels, strings.TrimPrefix(sc.ID, "2-"))
		p50c, p95c, p99c = append(p50c, latMs(sc.CDCD, 50)), append(p95c, latMs(sc.CDCD, 95)), append(p99c, latMs(sc.CDCD, 99))
		p50d, p95d, p99d = append(p50d, latMs(sc.Debezium, 50)), append(p95d, latMs(sc.Debezium, 95)), append(p99d, latMs(sc.Debezium, 99))
		p99l = append(p99l, latMs(sc.Limit, 99))
		p99t = append(p99t, math.NaN())
		for _, b := range sc.Bare {
			if strings.HasSuffix(b.Tool, "transactional") {
				p99t[len(p99t)-1] = latMs(b, 99)
			}
		}
	}
	if len(labels) > 0 {
		p := filepath.Join(dir, "latency.png")
		if err := groupedBars(p, "Latency insert → read_committed receipt (ms, log scale), by rows/s x rows per transaction", "ms", labels,
			[]barGroup{
				{"cdcd p50", shade(colCDCD, 0.45), p50c}, {"cdcd p95", shade(colCDCD, 0.7), p95c}, {"cdcd p99", colCDCD, p99c},
				{"Debezium p50", shade(colDebezium, 0.45), p50d}, {"Debezium p95", shade(colDebezium, 0.7), p95d}, {"Debezium p99", colDebezium, p99d},
				{"bare slot consumer p99 (limit)", colLimit, p99l},
				{"bare consumer → Kafka transactional p99", shade(colLimit, 0.6), p99t},
			}, true); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	// Peak RSS per scenario.
	labels, c, d = nil, nil, nil
	for _, sc := range s.scenarios {
		if sc.CDCD.ok() || sc.Debezium.ok() {
			labels = append(labels, "#"+sc.ID)
			c = append(c, rssMiB(sc.CDCD))
			d = append(d, rssMiB(sc.Debezium))
		}
	}
	if len(labels) > 0 {
		p := filepath.Join(dir, "rss.png")
		if err := groupedBars(p, "Peak resident memory per scenario (MiB)", "MiB", labels,
			[]barGroup{{"cdcd", colCDCD, c}, {"Debezium (#6: Kafka Streams)", colDebezium, d}}, false); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

func rate(r *toolResult) float64 {
	if !r.ok() {
		return math.NaN()
	}
	return r.rowsPerSec()
}

func latMs(r *toolResult, q int) float64 {
	if !r.ok() || r.Lat == nil || r.Lat.N == 0 {
		return math.NaN()
	}
	d := map[int]time.Duration{50: r.Lat.P50, 95: r.Lat.P95, 99: r.Lat.P99}[q]
	return float64(d) / float64(time.Millisecond)
}

func rssMiB(r *toolResult) float64 {
	if !r.ok() || r.PeakRSSKB <= 0 {
		return math.NaN()
	}
	return float64(r.PeakRSSKB) / 1024
}

func (s *suite) markdown(charts []string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	e := s.env
	o := s.o
	p("# cdcd vs Debezium — benchmark results\n\n")
	p("Generated by `make bench` (`scripts/bench.sh`, harness `bench/cmd/cdcdbench -suite`) on %s, in %s. ",
		s.started.UTC().Format("2006-01-02 15:04 UTC"), s.finished.Sub(s.started).Round(time.Second))
	p("Every tool runs alone while it is measured, on the same PostgreSQL, MariaDB, Kafka and schema registry; ")
	p("*limit* is what the source's own reader does with the same work (nothing can be faster than the source). ")
	p("Numbers are from one run on a shared 2-core machine: read them with the load average below in mind.\n\n")
	if s.stopped != "" {
		p("**%s**\n\n", s.stopped)
	}
	for _, c := range charts {
		p("![%s](%s)\n", strings.TrimSuffix(filepath.Base(c), ".png"), filepath.Base(c))
	}
	p("\n## Targets\n\n| target | measured | verdict |\n|---|---|---|\n")
	for _, t := range s.targets() {
		p("| %s | %s | %s |\n", t[0], t[1], t[2])
	}
	p("\n## Results\n\n")
	p("| # | scenario | tool | rows | time | rows/s | MB/s | p50 | p95 | p99 | peak RSS | CPU s / M rows | notes |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range s.scenarios {
		for _, r := range append(append([]*toolResult{sc.CDCD, sc.Debezium, sc.Limit}, sc.Bare...), sc.Also...) {
			if r == nil {
				continue
			}
			if !r.ok() {
				p("| %s | %s | %s | %s |||||||||\n", sc.ID, sc.Title, r.Tool, mdCell(r.Status))
				continue
			}
			lat := func(d func(q *quantiles) time.Duration) string {
				if r.Lat == nil || r.Lat.N == 0 {
					return "–"
				}
				return ms(d(r.Lat))
			}
			mb := "–"
			if v := r.mbPerSec(); v > 0 {
				mb = fmt.Sprintf("%.1f", v)
			}
			rss := "–"
			if r.PeakRSSKB > 0 {
				rss = fmt.Sprintf("%.0f MiB", float64(r.PeakRSSKB)/1024)
			}
			cpu := "–"
			if v := r.cpuPerMRows(); v >= 0 {
				cpu = fmt.Sprintf("%.1f", v)
			}
			rows := fmt.Sprint(r.Rows)
			rps := fmt.Sprintf("%.0f", r.rowsPerSec())
			if sc.Kind == "latency" {
				rps = fmt.Sprintf("%.0f (achieved)", r.Achieved)
			}
			p("| %s | %s | %s | %s | %.2f s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sc.ID, sc.Title, r.Tool, rows, r.Took.Seconds(), rps, mb,
				lat(func(q *quantiles) time.Duration { return q.P50 }), lat(func(q *quantiles) time.Duration { return q.P95 }),
				lat(func(q *quantiles) time.Duration { return q.P99 }), rss, cpu, mdCell(strings.Join(r.Notes, "; ")))
		}
		for _, n := range sc.Notes {
			p("| %s | | *note* | %s |||||||||\n", sc.ID, mdCell(n))
		}
	}
	p("\n## Ratios (cdcd ÷ Debezium, cdcd ÷ limit)\n\n| # | scenario | rows/s vs Debezium | rows/s vs limit | p99 vs Debezium | peak RSS vs Debezium | CPU per row vs Debezium |\n|---|---|---|---|---|---|---|\n")
	for _, sc := range s.scenarios {
		thr := ratio(rate(sc.CDCD), rate(sc.Debezium))
		lim := ratio(rate(sc.CDCD), rate(sc.Limit))
		if sc.Kind == "latency" {
			thr, lim = "–", "–"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", sc.ID, sc.Title, thr, lim,
			ratio(latMs(sc.CDCD, 99), latMs(sc.Debezium, 99)), ratio(rssMiB(sc.CDCD), rssMiB(sc.Debezium)),
			ratio(cpuRow(sc.CDCD), cpuRow(sc.Debezium)))
	}
	p("\n## What is measured\n\n")
	p("- **rows/s**: rows ÷ the scenario's interval. Catch-up (1, 5) and snapshot (3): from the tool's process start (JVM and Connect start-up included for Debezium, cdcd's start-up for cdcd) to the receipt of the last row by a `read_committed` consumer that reads the topic from the start (in 1, from its end when the tool starts: the warm-up's records are before it); the limit from its process start to its exit. One big transaction (4): from the source commit to the receipt of the last row. Steady (2): the rate the paced writer achieved.\n")
	p("- **MB/s**: bytes of keys and values the consumer read ÷ the same interval, in each tool's own format (cdcd: Confluent-framed Avro; Debezium: JSON), so it is not comparable across tools; rows/s is.\n")
	p("- **p50/p95/p99**: receipt by a `read_committed` consumer (franz-go, fetch max wait 100 ms, started at the topic's end) minus column `c = clock_timestamp()` of the insert, which is before the commit: an upper bound of commit → receipt (the commit itself, a WAL flush with `synchronous_commit=on`, is inside it). The writer: %d connections, rows spread evenly over time, one transaction sent when its last row is due.\n", o.latConns)
	p("- **peak RSS**: the tool's process VmHWM (JVM included for Debezium), for scenarios on a running process reset at the scenario's start (`/proc/<pid>/clear_refs`), plus sampled VmRSS every 200 ms.\n")
	p("- **CPU s / M rows**: user+system CPU seconds of the tool's process (all threads) over the interval ÷ rows × 1,000,000. The broker's, PostgreSQL's and the consumer's CPU are not in it.\n")
	p("- **Delivery**: cdcd runs `exactly_once` (Kafka transactions, offsets in the same transaction). Debezium runs in Kafka Connect *standalone*, which has no exactly-once source support (that needs a distributed worker): it is at-least-once with an idempotent producer, so it does *less* work per record than cdcd.\n")
	if s.has("6") {
		p("- **State bytes per key (6)**: a key is one group's window. cdcd: `cdcd_window_state_bytes` (its state in changelog form: keys and values of the latest record per key) ÷ `cdcd_window_open_windows`, scraped from /metrics every %d ms during its run, at the sample with the most state bytes (1 s windows with no grace: little is open at a time). Both tools' changelog topics are read to their end after the run (read_committed): bytes per record with a value (one key's state as a restore reads it, key + value) and bytes written per key (every record, tombstones included, ÷ distinct keys). Kafka Streams: also its state directory (RocksDB files) after the run ÷ the keys of its window store's changelog. **Restore**: `window.BenchmarkRestore` (window/restore_bench_test.go, `go test -bench BenchmarkRestore -benchtime 1x -benchmem` in the cdcd module, CDCD_TEST_KAFKA = the stack's broker) writes -restore-keys keys of state to a changelog and times a new job's restore of it; state = the restored state in changelog form, as the benchmark logs it (whole MiB).\n", stateSampleEvery.Milliseconds())
	}
	if s.o.goalProfiles && (s.has("1") || s.has("3") || s.has("5")) {
		var files []string
		for _, gp := range s.measuredProfiles() {
			files = append(files, gp.link())
		}
		why := s.profileErr
		if why == "" && len(files) == 0 {
			why = "the profiling pass measured none of them (see the logs)"
		}
		if why != "" {
			p("- **CPU profiles**: none: %s.\n", why)
		} else {
			p("- **CPU profiles**: after the measured scenarios, the phases of the CPU goals ran once more with cdcd alone (no limit, no Debezium beside it), built with a hook that profiles its CPU from process start to the last record read back; the top of each profile: %s.\n", strings.Join(files, ", "))
		}
	}
	p("- **Record format**: cdcd Avro through the schema registry. Debezium: JSON without schemas (JsonConverter, `schemas.enable=false`). The Apicurio Avro converter on Maven Central for this registry's version (3.0.9) cannot be resolved (its parent POM is not published); the 2.6.x converter resolves but speaks Apicurio's own wire format, not the Confluent framing cdcd's consumers read, so the comparison uses Debezium's cheapest converter: this favours Debezium.\n")

	p("\n## Settings\n\n")
	p("Harness flags: rows=%d tx-rows=%d rates=%v latency-duration=%s latency-conns=%d bigtx-rows=%d snapshot-rows=%d mysql-rows=%d window-events=%d restore-keys=%d partitions=%d.\n\n",
		o.rows, o.txRows, o.rates, o.latDur, o.latConns, o.bigTxRows, o.snapRows, o.mysqlRows, o.windowEvents, o.restoreKeys, o.partitions)
	keys := make([]string, 0, len(s.settings))
	for k := range s.settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p("### %s\n\n```\n%s\n```\n\n", k, strings.Join(s.settings[k], "\n"))
	}
	p("## Machine and stack\n\n")
	p("- %d CPUs (%s), %s memory; kernel %s; load average at start %s, at the end %s\n", e.cpus, e.cpuModel, memTotal(), e.kernel, e.loadAvg, loadAvg())
	p("- cdcd: %s (commit %s)\n", e.cdcdVersion, gitHead(o.repo))
	p("- PostgreSQL: %s; %s\n", e.pgVersion, strings.Join(e.pgSettings, ", "))
	p("- left on the stack by other runs: %s\n", e.stackLeftovers())
	for _, tool := range []string{"cdcd", "Debezium"} {
		if w := s.catchupWarmups[tool]; w != nil {
			p("- %s's warm-up: %s\n", tool, w)
		}
		if w := s.warmups[tool]; w != nil {
			p("- %s's warm-up: %s\n", tool, w)
		}
	}
	if s.paths != nil {
		p("- Kafka %s (the stack's single KRaft node), Kafka Connect %s, Debezium %s, %s\n", s.paths.KafkaVersion, s.paths.KafkaVersion, s.paths.DebeziumVersion, javaVersion())
	}
	p("- harness %s; logs and configurations in `%s`\n", e.goVersion, s.dir)
	return b.String()
}

func (s *suite) targets() [][3]string {
	var out [][3]string
	find := s.scenario
	verdict := func(ok bool, have bool) string {
		switch {
		case !have:
			return "n/a"
		case ok:
			return "met"
		}
		return "**not met**"
	}
	if sc := find("1"); sc != nil {
		v := rate(sc.CDCD) / rate(sc.Debezium)
		out = append(out, [3]string{"catch-up ≥ 4× Debezium", fmtRatio(v), verdict(v >= targetCatchupVsDebezium, !math.IsNaN(v))})
		v = rate(sc.CDCD) / rate(sc.Limit)
		out = append(out, [3]string{"catch-up ≥ 60 % of pg_recvlogical", fmtPct(v), verdict(v >= targetCatchupVsLimit, !math.IsNaN(v))})
	}
	if sc := find("2-5000x1"); sc != nil {
		v := latMs(sc.CDCD, 99)
		measured, verd := fmt.Sprintf("%.1f ms", v), verdict(v < 50, !math.IsNaN(v))
		if b := sc.CDCD; b.ok() && b.Beside != nil && b.Beside.N > 0 {
			// PostgreSQL's own delivery of the same rows at the same time bounds what any
			// consumer of the slot could reach under this load.
			pg := float64(b.Beside.P99) / float64(time.Millisecond)
			measured += fmt.Sprintf(" (PostgreSQL's own delivery of the same rows, beside it: p99 %.1f ms)", pg)
			if v >= 50 && pg >= 50 {
				verd += ": out of reach on this machine at this load, PostgreSQL alone exceeds 50 ms"
			}
		} else if l := sc.Limit; l.ok() && l.Lat != nil {
			// The bare slot consumer, run alone on the same load: PostgreSQL's own delivery.
			pg := latMs(l, 99)
			measured += fmt.Sprintf(" (a bare consumer of the slot alone, same load: p99 %.1f ms)", pg)
			if v >= 50 && pg >= 50 {
				verd += ": out of reach on this machine at this load, PostgreSQL's own delivery alone exceeds 50 ms"
			}
		}
		// The bare consumer followed by a bare Kafka producer: what Kafka adds at this load. When
		// even that misses 50 ms, with transactions and without, no tool writing to this Kafka
		// reaches the target here.
		var bare []string
		bareMiss := len(sc.Bare) > 0
		for _, b := range sc.Bare {
			if !b.ok() || b.Lat == nil || b.Lat.N == 0 {
				bareMiss = false
				continue
			}
			p99 := latMs(b, 99)
			bare = append(bare, fmt.Sprintf("%s: p99 %.1f ms", strings.TrimPrefix(b.Tool, "bare slot consumer → "), p99))
			bareMiss = bareMiss && p99 >= 50
		}
		if len(bare) > 0 {
			measured += "; the bare consumer feeding Kafka directly, same load: " + strings.Join(bare, ", ")
		}
		if v >= 50 && bareMiss && !strings.Contains(verd, "out of reach") {
			verd += ": out of reach on this machine at this load, a bare slot consumer writing straight to Kafka exceeds 50 ms with transactions and without"
		}
		out = append(out, [3]string{"p99 < 50 ms at 5k single-row tx/s", measured, verd})
	}
	if sc := find("3"); sc != nil {
		v := rate(sc.CDCD) / rate(sc.Debezium)
		out = append(out, [3]string{"snapshot ≥ 5× Debezium", fmtRatio(v), verdict(v >= targetSnapshotVsDbz, !math.IsNaN(v))})
		v = rate(sc.CDCD)
		out = append(out, [3]string{"snapshot ≥ 200k rows/s", fmtRate(v), verdict(v >= targetSnapshotRate, !math.IsNaN(v))})
		v = rate(sc.CDCD) / rate(sc.Limit)
		out = append(out, [3]string{"snapshot ≥ 50 % of COPY binary", fmtPct(v), verdict(v >= targetSnapshotVsCopy, !math.IsNaN(v))})
	}
	if sc := find("5"); sc != nil {
		v := rate(sc.CDCD)
		out = append(out, [3]string{"MariaDB binlog catch-up ≥ 150k rows/s", fmtRate(v) + " (" + fmtPct(v/rate(sc.Limit)) + " of BinlogSyncer)", verdict(v >= targetBinlogRate, !math.IsNaN(v))})
	}
	if sc := find("7"); sc != nil {
		v := rate(sc.CDCD)
		out = append(out, [3]string{"MariaDB snapshot ≥ 200k rows/s", fmtRate(v), verdict(v >= targetSnapshotRate, !math.IsNaN(v))})
		if ck := sc.also(compositeLabel); ck != nil {
			c := rate(ck)
			slow := v / c
			measured := fmt.Sprintf("%s (one-column key %s, composite %s)", fmtRatio(slow), fmtRate(v), fmtRate(c))
			out = append(out, [3]string{"MariaDB composite-key snapshot within 1.5× of the one-column key",
				measured, verdict(slow <= targetCompositeSlowdown, !math.IsNaN(slow))})
		}
	}
	if sc := find("6"); sc != nil {
		v := rate(sc.CDCD)
		out = append(out, [3]string{"window job ≥ 200k events/s (2M events, tumbling count+sum)",
			fmt.Sprintf("%.0f events/s (%s Kafka Streams)", v, fmtRatio(v/rate(sc.Debezium))), verdict(v >= targetWindowRate, !math.IsNaN(v))})
	}
	out = append(out, s.goalTargets(find)...)
	worst := math.NaN()
	for _, sc := range s.scenarios {
		if sc.Kind == "window" {
			continue // Kafka Streams, not Debezium
		}
		if v := rssMiB(sc.CDCD) / rssMiB(sc.Debezium); !math.IsNaN(v) && (math.IsNaN(worst) || v > worst) {
			worst = v
		}
	}
	out = append(out, [3]string{"peak RSS ≤ 1/5 of Debezium's (worst scenario)", fmtPct(worst), verdict(worst <= targetRSSFraction, !math.IsNaN(worst))})
	return out
}

func fmtRate(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f rows/s", v)
}

func cpuRow(r *toolResult) float64 {
	if v := r.cpuPerMRows(); v > 0 {
		return v
	}
	return math.NaN()
}

func ratio(a, b float64) string { return fmtRatio(a / b) }

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", v)
}

func fmtPct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f %%", 100*v)
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func memTotal() string {
	if kb, err := procStatusKBFile("/proc/meminfo", "MemTotal"); err == nil {
		return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	return "?"
}

func procStatusKBFile(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			var n int64
			_, err := fmt.Sscan(strings.TrimSpace(v), &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("%s has no %s", path, key)
}

func gitHead(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func javaVersion() string {
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		return "java ?"
	}
	return firstLine(strings.TrimSpace(string(out)))
}
