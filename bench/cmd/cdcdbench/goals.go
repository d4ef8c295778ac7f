package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The goals of the tail and CPU work: cdcd against what the stack itself does with the same
// work, in the same run. Each one missed names where bench/README.md says what was tried and
// what limits it; a throughput phase that ran the machine out of CPU says so with its split.
const (
	goalTailVsBare       = 1.25 // steady p99 ≤ 1.25× the bare transactional pipeline's, every load
	goalCatchupCPU       = 2.5  // CPU s per million rows, PostgreSQL catch-up
	goalCatchupVsRecv    = 0.90 // catch-up rows/s ≥ 90 % of pg_recvlogical's
	goalBinlogVsSyncer   = 0.50 // MariaDB catch-up ≥ 50 % of go-mysql's bare BinlogSyncer
	goalSnapshotVsKafka  = 0.60 // PostgreSQL snapshot ≥ 60 % of a bare transactional producer
	readmeTail           = "bench/README.md, \"Where the single-row latency goes\" and \"Who waits for a CPU at 20k rows/s in 10-row transactions\""
	readmeCatchupCPU     = "bench/README.md, \"CPU per row of the PostgreSQL catch-up\""
	readmeBinlogCPU      = "bench/README.md, \"CPU of the MariaDB catch-up\""
	readmeSnapshotCPU    = "bench/README.md, \"CPU of the PostgreSQL snapshot\""
	labelCDCDNoTLS       = "cdcd, no TLS"
	labelRecvNoTLS       = "pg_recvlogical, no TLS"
	labelBareTxnPipeline = "bare slot consumer → Kafka, transactional"
)

// goalVerdict is "met", "n/a", or "**not met**" with what limits it.
func goalVerdict(ok, have bool, readme string, m *machineCPU) string {
	switch {
	case !have:
		return "n/a"
	case ok:
		return "met"
	}
	return "**not met**" + limits(readme, m)
}

// limits names what to read about a missed goal and, for a phase that left the machine no
// idle CPU, where the CPU went.
func limits(readme string, m *machineCPU) string {
	v := ": what was tried and what limits it: " + readme
	if m.saturated() {
		v += "; the machine had no idle CPU during the phase (" + m.String() + ")"
	}
	return v
}

// steadyShape names a steady scenario by its load, "5k×10" for "2-5000x10".
func steadyShape(id string) string {
	rest, ok := strings.CutPrefix(id, "2-")
	if !ok {
		return id
	}
	r, tx, _ := strings.Cut(rest, "x")
	n, err := strconv.Atoi(r)
	if err != nil {
		return id
	}
	return human(n) + "×" + tx
}

func (sc *scenarioResult) bare(label string) *toolResult {
	for _, r := range sc.Bare {
		if r != nil && r.Tool == label {
			return r
		}
	}
	return nil
}

// tailGoal compares cdcd's p99 with against's at each of scs: met where cdcd's is at most
// factor times it. ratio adds the ratio to each load's figures.
func tailGoal(name string, scs []*scenarioResult, against func(*scenarioResult) *toolResult, factor float64, ratio bool) [3]string {
	var parts, missed, split, waits []string
	for _, sc := range scs {
		c, o := latMs(sc.CDCD, 99), latMs(against(sc), 99)
		if math.IsNaN(c) || math.IsNaN(o) {
			continue
		}
		p := fmt.Sprintf("%s %.0f/%.0f ms", steadyShape(sc.ID), c, o)
		if ratio {
			p += fmt.Sprintf(" = %.2f×", c/o)
		}
		parts = append(parts, p)
		if c > factor*o {
			missed = append(missed, steadyShape(sc.ID))
			if s := commitSplit(sc.CDCD, against(sc)); s != "" {
				split = append(split, steadyShape(sc.ID)+" "+s)
			}
			if s := walsenderWait(sc.CDCD, against(sc)); s != "" {
				waits = append(waits, steadyShape(sc.ID)+" "+s)
			}
		}
	}
	v := goalVerdict(len(missed) == 0, len(parts) > 0, readmeTail, nil)
	if len(missed) > 0 {
		v = "**not met** at " + strings.Join(missed, ", ") + limits(readmeTail, nil)
		if len(split) > 0 {
			v += "; p99 on either side of the writer's commit acknowledgement (insert to acknowledgement, the writer's and PostgreSQL's part / acknowledgement to receipt), cdcd against the other: " + strings.Join(split, "; ")
		}
		if len(waits) > 0 {
			v += "; the walsender's wait for a CPU (s per s of the phase), cdcd's phase against the other's: " + strings.Join(waits, "; ")
		}
	}
	return [3]string{name, strings.Join(parts, "; "), v}
}

// commitSplit gives both phases' p99 on either side of the writer's commit acknowledgement,
// "3 / 40 against 2 / 30 ms": whether a gap between two phases' tails lies in PostgreSQL's
// commits under each phase's load, or after them.
func commitSplit(a, b *toolResult) string {
	if !a.ok() || !b.ok() || !a.hasCommitSplit() || !b.hasCommitSplit() {
		return ""
	}
	f := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return fmt.Sprintf("%.0f / %.0f against %.0f / %.0f ms", f(a.Commit.P99), f(a.LatAck.P99), f(b.Commit.P99), f(b.LatAck.P99))
}

// walsenderWait gives how long the walsenders waited for a CPU in both phases, "0.48 against
// 0.22": on saturated cores a walsender kept waiting falls behind, and every pipeline's
// latency includes its delivery.
func walsenderWait(a, b *toolResult) string {
	if !a.ok() || !b.ok() || a.Machine == nil || b.Machine == nil || len(a.Machine.waits) == 0 || len(b.Machine.waits) == 0 {
		return ""
	}
	const g = "PostgreSQL walsenders"
	return fmt.Sprintf("%.2f against %.2f", a.Machine.waitOf(g), b.Machine.waitOf(g))
}

func (s *suite) goalTargets(find func(string) *scenarioResult) [][3]string {
	var out [][3]string
	// The tail against Kafka's own transactional limit, at every steady load.
	var all []*scenarioResult
	for _, sc := range s.scenarios {
		if strings.HasPrefix(sc.ID, "2-") {
			all = append(all, sc)
		}
	}
	out = append(out, tailGoal("steady p99 ≤ 1.25× the bare transactional pipeline's, every load (cdcd/bare)", all,
		func(sc *scenarioResult) *toolResult { return sc.bare(labelBareTxnPipeline) }, goalTailVsBare, true))
	// The tail against Debezium's where cdcd batches well: 10-row transactions at 1k and 5k/s.
	var tens []*scenarioResult
	for _, id := range []string{"2-1000x10", "2-5000x10"} {
		if sc := find(id); sc != nil {
			tens = append(tens, sc)
		}
	}
	out = append(out, tailGoal("steady p99 ≤ Debezium's at 1k and 5k rows/s in 10-row transactions (cdcd/Debezium)", tens,
		func(sc *scenarioResult) *toolResult { return sc.Debezium }, 1, false))

	if sc := find("1"); sc != nil {
		cpu := cpuRow(sc.CDCD)
		measured := fmtCPU(cpu)
		if n := sc.also(labelCDCDNoTLS); n.ok() {
			measured += "; without TLS " + fmtCPU(cpuRow(n))
		}
		out = append(out, [3]string{"PostgreSQL catch-up ≤ 2.5 CPU s per million rows", measured,
			s.withProfiles(goalVerdict(cpu <= goalCatchupCPU, !math.IsNaN(cpu), readmeCatchupCPU, machineOf(sc.CDCD)), profPGCatchup, profPGCatchupNoTLS)})
		v := rate(sc.CDCD) / rate(sc.Limit)
		measured = fmtPct(v)
		if n, r := sc.also(labelCDCDNoTLS), sc.also(labelRecvNoTLS); n.ok() && r.ok() {
			measured += "; without TLS " + fmtPct(rate(n)/rate(r)) + fmt.Sprintf(" (%s against %s)", fmtRate(rate(n)), fmtRate(rate(r)))
		}
		out = append(out, [3]string{"PostgreSQL catch-up ≥ 90 % of pg_recvlogical", measured,
			s.withProfiles(goalVerdict(v >= goalCatchupVsRecv, !math.IsNaN(v), readmeCatchupCPU, machineOf(sc.CDCD)), profPGCatchup, profPGCatchupNoTLS)})
	}
	if sc := find("5"); sc != nil {
		v := rate(sc.CDCD) / rate(sc.Limit)
		out = append(out, [3]string{"MariaDB catch-up ≥ 50 % of go-mysql's BinlogSyncer", fmtPct(v),
			s.withProfiles(goalVerdict(v >= goalBinlogVsSyncer, !math.IsNaN(v), readmeBinlogCPU, machineOf(sc.CDCD)), profMariaDBCatchup)})
	}
	if sc := find("3"); sc != nil {
		v := math.NaN()
		if sc.KafkaLimit > 0 {
			v = rate(sc.CDCD) / sc.KafkaLimit
		}
		out = append(out, [3]string{"PostgreSQL snapshot ≥ 60 % of a bare transactional producer", fmtPct(v),
			s.withProfiles(goalVerdict(v >= goalSnapshotVsKafka, !math.IsNaN(v), readmeSnapshotCPU, machineOf(sc.CDCD)), profPGSnapshot)})
	}
	return out
}

func machineOf(r *toolResult) *machineCPU {
	if !r.ok() {
		return nil
	}
	return r.Machine
}

func fmtCPU(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f CPU s", v)
}
