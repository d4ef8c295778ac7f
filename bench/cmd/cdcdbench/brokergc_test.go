package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Output of `jstat -gc` on the stack's broker (Java 17, G1).
const jstatSample = `    S0C         S1C         S0U         S1U          EC           EU           OC           OU          MC         MU       CCSC      CCSU     YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT   
        0.0      3072.0         0.0      2504.0     201728.0       9216.0     319488.0     258886.5    60352.0    59103.0    7488.0    6687.2    724    15.516     0     0.000   129     2.453    17.969
`

func TestParseJstatGC(t *testing.T) {
	s := parseJstatGC(jstatSample)
	if !s.ok || s.young != 724 || s.youngS != 15.516 || s.full != 0 || s.conc != 129 || s.conS != 2.453 {
		t.Fatalf("parsed %+v", s)
	}
	for _, bad := range []string{"", "YGC YGCT\n", "YGC YGCT FGC FGCT CGC CGCT\n1 x 0 0 0 0\n", "YGC YGCT\n1\n"} {
		if s := parseJstatGC(bad); s.ok {
			t.Errorf("%q parsed as %+v", bad, s)
		}
	}
}

func TestBrokerGCNote(t *testing.T) {
	a := gcSample{ok: true, young: 724, youngS: 15.516, conc: 129, conS: 2.453}
	b := gcSample{ok: true, young: 734, youngS: 15.806, full: 1, fullS: 0.1, conc: 130, conS: 2.463}
	want := "broker JVM during the phase: 10 young collections (mean pause 29 ms), 1 full, stopped 400 ms in all (2.0 % of the phase)"
	if got := brokerGCNote(a, b, 20*time.Second); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := brokerGCNote(gcSample{}, b, time.Second); got != "" {
		t.Errorf("without a first sample: %q", got)
	}
	a.jitOK, a.compiled, a.jitS = true, 13979, 51.79
	b.jitOK, b.compiled, b.jitS = true, 14310, 55.09
	if got := brokerGCNote(a, b, 20*time.Second); got != want+"; its JIT compiled 331 methods in 3.3 s of compiler time" {
		t.Errorf("with the JIT's counters: %s", got)
	}
}

// Output of `jstat -compiler` on the stack's broker (Java 17).
const jstatCompilerSample = `Compiled Failed Invalid   Time   FailedType FailedMethod
   13979      1       0    51.79          1 org/apache/kafka/raft/internals/RecordsIterator hasNext
`

func TestParseJstatCompiler(t *testing.T) {
	if ok, n, secs := parseJstatCompiler(jstatCompilerSample); !ok || n != 13979 || secs != 51.79 {
		t.Fatalf("parsed %v %d %v", ok, n, secs)
	}
	for _, bad := range []string{"", "Compiled Time\n", "Compiled Time\nx 1.0\n", "Compiled Time\n3 y\n"} {
		if ok, _, _ := parseJstatCompiler(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseLoadAvg(t *testing.T) {
	if v, ok := parseLoadAvg("4.52 3.10 2.07 3/512 12345\n"); !ok || v != 4.52 {
		t.Fatalf("parseLoadAvg = %v, %v", v, ok)
	}
	if _, ok := parseLoadAvg(""); ok {
		t.Fatal("an empty loadavg parsed")
	}
	w := &procWatch{loadSum: 9, loadMax: 5, loadN: 3}
	if n := w.loadNote(); !strings.Contains(n, "mean 3.0, max 5.0") {
		t.Fatalf("loadNote = %q", n)
	}
}

// The report says how long the broker had run and how much it had compiled at the start.
func TestStackLeftoversBrokerJVM(t *testing.T) {
	e := &benchEnv{brokerTopics: 4, brokerPartitions: 9}
	if s := e.stackLeftovers(); strings.Contains(s, "JVM") {
		t.Errorf("unknown broker age: %s", s)
	}
	e.brokerUp, e.brokerJIT = 754*time.Second, gcSample{jitOK: true, compiled: 13979, jitS: 51.79}
	want := "4 topics, 9 partitions on the broker at the start; the broker's JVM had run 13m0s and compiled 13979 methods in 52 s of JIT time"
	if s := e.stackLeftovers(); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

// The note on cdcd's transactions counts the long commits a p99 hides.
func TestKafkaTxnNoteCountsSlowCommits(t *testing.T) {
	bounds := []float64{0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, math.Inf(1)}
	set := func(counts []float64) metricSet {
		var m metricSet
		for i, b := range bounds {
			le := strconv.FormatFloat(b, 'g', -1, 64)
			if math.IsInf(b, 1) {
				le = "+Inf"
			}
			m = append(m, sample{name: "cdcd_kafka_transaction_commit_duration_seconds_bucket", labels: map[string]string{"pipeline": "p", "le": le}, value: counts[i]})
		}
		return append(m, sample{name: "cdcd_kafka_transaction_commit_duration_seconds_count", labels: map[string]string{"pipeline": "p"}, value: counts[len(counts)-1]})
	}
	before := set([]float64{0, 0, 0, 0, 0, 0, 0, 0})
	// 1,000 commits: 997 within 4 ms, one of 64-128 ms and two of 128-256 ms.
	after := set([]float64{997, 997, 997, 997, 997, 998, 1000, 1000})
	note := kafkaTxnNote(before, after, "p", 1000)
	if !strings.Contains(note, ", 3 over 64 ms (the longest ≤ 256 ms)") || !strings.Contains(note, "p99 4.0 ms") {
		t.Errorf("note: %s", note)
	}
	if note := kafkaTxnNote(before, set([]float64{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}), "p", 1000); strings.Contains(note, "over 64 ms") {
		t.Errorf("no slow commit: %s", note)
	}
}
