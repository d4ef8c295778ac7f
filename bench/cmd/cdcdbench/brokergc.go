package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// gcSample is the broker JVM's cumulative garbage-collection counters (jstat -gc): young and
// full collections, and the pauses of concurrent cycles (remark, cleanup), with their total
// seconds. ok is false when they could not be read.
type gcSample struct {
	ok                  bool
	young, full, conc   int
	youngS, fullS, conS float64
	// The JIT compiler's cumulative counters (jstat -compiler): methods compiled and seconds
	// spent compiling. A freshly started broker compiles for minutes under new traffic, on
	// the cores the phase needs. jitOK is false when they could not be read.
	jitOK    bool
	compiled int
	jitS     float64
}

// sampleBrokerGC reads the counters of JVM pid with jstat (pid 0: not asked, nothing read).
func sampleBrokerGC(ctx context.Context, pid int) gcSample {
	if pid <= 0 {
		return gcSample{}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "jstat", "-gc", strconv.Itoa(pid)).Output()
	if err != nil {
		return gcSample{}
	}
	s := parseJstatGC(string(out))
	s.jitOK, s.compiled, s.jitS = sampleBrokerJIT(cctx, pid)
	return s
}

// sampleBrokerJIT reads the JIT compiler's counters of JVM pid with jstat: methods compiled and
// seconds compiling (ok false: not read).
func sampleBrokerJIT(ctx context.Context, pid int) (ok bool, compiled int, secs float64) {
	if pid <= 0 {
		return false, 0, 0
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "jstat", "-compiler", strconv.Itoa(pid)).Output()
	if err != nil {
		return false, 0, 0
	}
	return parseJstatCompiler(string(out))
}

// parseJstatCompiler reads `jstat -compiler` output: methods compiled and seconds compiling.
func parseJstatCompiler(out string) (ok bool, compiled int, secs float64) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return false, 0, 0
	}
	names, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
	for i, n := range names {
		if i >= len(vals) {
			break
		}
		switch n {
		case "Compiled":
			v, err := strconv.Atoi(vals[i])
			if err != nil {
				return false, 0, 0
			}
			compiled = v
		case "Time":
			v, err := strconv.ParseFloat(vals[i], 64)
			if err != nil {
				return false, 0, 0
			}
			secs, ok = v, true
		}
	}
	return ok, compiled, secs
}

// parseJstatGC reads `jstat -gc` output: a header line and one line of values.
func parseJstatGC(out string) gcSample {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return gcSample{}
	}
	names, vals := strings.Fields(lines[0]), strings.Fields(lines[len(lines)-1])
	if len(names) != len(vals) {
		return gcSample{}
	}
	col := map[string]string{}
	for i, n := range names {
		col[n] = vals[i]
	}
	var s gcSample
	var err error
	num := func(name string) float64 {
		if err != nil {
			return 0
		}
		var v float64
		v, err = strconv.ParseFloat(col[name], 64)
		return v
	}
	s.young, s.youngS = int(num("YGC")), num("YGCT")
	s.full, s.fullS = int(num("FGC")), num("FGCT")
	s.conc, s.conS = int(num("CGC")), num("CGCT")
	s.ok = err == nil
	return s
}

// brokerGCNote says how much the broker's JVM stopped between two samples over a phase of took.
func brokerGCNote(a, b gcSample, took time.Duration) string {
	if !a.ok || !b.ok || took <= 0 {
		return ""
	}
	young, youngS := b.young-a.young, b.youngS-a.youngS
	stopped := youngS + (b.fullS - a.fullS) + (b.conS - a.conS)
	mean := "–"
	if young > 0 {
		mean = fmt.Sprintf("%.0f ms", youngS/float64(young)*1000)
	}
	n := fmt.Sprintf("broker JVM during the phase: %d young collections (mean pause %s)", young, mean)
	if full := b.full - a.full; full > 0 {
		n += fmt.Sprintf(", %d full", full)
	}
	n += fmt.Sprintf(", stopped %.0f ms in all (%.1f %% of the phase)", stopped*1000, stopped/took.Seconds()*100)
	if a.jitOK && b.jitOK {
		n += fmt.Sprintf("; its JIT compiled %d methods in %.1f s of compiler time", b.compiled-a.compiled, b.jitS-a.jitS)
	}
	return n
}
