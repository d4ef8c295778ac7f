package main

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestClassifyProcess(t *testing.T) {
	cases := []struct{ comm, cmdline, want string }{
		{"postgres", "", "PostgreSQL"},
		{"mariadbd", "", "MariaDB"},
		{"java", "java\x00-Xmx512m\x00kafka.Kafka\x00server.properties", "Kafka broker"},
		{"java", "java\x00org.apache.kafka.connect.cli.ConnectStandalone\x00w.properties", "Kafka Connect"},
		{"java", "java\x00-jar\x00apicurio-registry-app-runner.jar", "schema registry"},
		{"java", "java\x00Other", "other JVM"},
		{"bash", "", "other"},
	}
	for _, c := range cases {
		if got := classifyProcess(c.comm, func() []byte { return []byte(c.cmdline) }); got != c.want {
			t.Errorf("classifyProcess(%q, %q) = %q, want %q", c.comm, c.cmdline, got, c.want)
		}
	}
}

// The split counts the CPU the harness itself burns during the phase under its own name, and
// not the CPU it used before the phase began.
func TestCPUSplitCountsThePhaseOnly(t *testing.T) {
	spin := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
	}
	spin(300 * time.Millisecond) // before: must not count
	c := newCPUSplit(os.Getpid(), "measured", false)
	start := time.Now()
	spin(400 * time.Millisecond)
	c.sample()
	secs := time.Since(start).Seconds()
	groups, busy := c.cores(secs)
	var self float64
	for _, g := range groups {
		if g.name == "measured" {
			self = g.cores
		}
	}
	// One goroutine spinning: about one core (the clock ticks at 100 Hz, and the test may share
	// the machine), never the 0.3 s before the start on top.
	if self < 0.5 || self > 1.3 {
		t.Fatalf("measured process used %.2f cores over %.2f s, want about 1 (groups %v)", self, secs, groups)
	}
	if busy < 0.5 || busy > float64(runtime.NumCPU())+0.1 {
		t.Fatalf("machine busy %.2f cores, want between 0.5 and %d", busy, runtime.NumCPU())
	}
	if n := c.note(secs); !strings.Contains(n, "measured ") || !strings.Contains(n, "cores busy") {
		t.Fatalf("note = %q", n)
	}
}
