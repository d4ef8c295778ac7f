package main

import (
	"os"
	"os/exec"
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

func TestClassifyWalsender(t *testing.T) {
	title := "postgres: walsender postgres 127.0.0.1(51234) START_REPLICATION"
	if got := classifyProcess("postgres", func() []byte { return []byte(title) }); got != "PostgreSQL walsenders" {
		t.Fatalf("a walsender's title classified as %q", got)
	}
	if got := classifyProcess("postgres", func() []byte { return []byte("postgres: postgres bench 127.0.0.1(5) idle") }); got != "PostgreSQL" {
		t.Fatalf("a backend classified as %q", got)
	}
}

func TestParseSchedstatAndPressure(t *testing.T) {
	if d, n := parseSchedstat("156854 1915351 2\n"); d != 1915351 || n != 2 {
		t.Fatalf("parseSchedstat = %d, %d", d, n)
	}
	if d, n := parseSchedstat(""); d != 0 || n != 0 {
		t.Fatalf("parseSchedstat of nothing = %d, %d", d, n)
	}
	psi := "some avg10=40.69 avg60=23.38 avg300=16.72 total=8391040355\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	if got := parsePressureSome(psi); got != 8391040355 {
		t.Fatalf("parsePressureSome = %d", got)
	}
	if _, tot, st := parseCPULine("cpu  1930777 727 619974 1441556 51969 0 163363 136456 0 0"); st != 136456 || tot != 1930777+727+619974+1441556+51969+163363+136456 {
		t.Fatalf("parseCPULine: steal %d of %d", st, tot)
	}
	if _, tot, st := parseCPULine("cpu 1 2 3"); st != 0 || tot != 0 {
		t.Fatalf("parseCPULine of a short line: steal %d of %d", st, tot)
	}
	if got := parsePressureSome("full avg10=0 total=5\n"); got != -1 {
		t.Fatalf("parsePressureSome without a some line = %d, want -1", got)
	}
}

// One more spinning process than the machine has cores: the split must see them wait for a
// CPU, and say so in its note.
func TestCPUSplitSeesRunQueueWait(t *testing.T) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skip("the kernel keeps no schedstat (CONFIG_SCHED_INFO): nothing to measure")
	}
	var spinners []*exec.Cmd
	for range runtime.NumCPU() + 1 {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		spinners = append(spinners, cmd)
	}
	defer func() {
		for _, s := range spinners {
			_ = s.Process.Kill()
			_ = s.Wait()
		}
	}()
	c := newCPUSplit(os.Getpid(), "measured", false)
	start := time.Now()
	time.Sleep(time.Second)
	c.sample()
	secs := time.Since(start).Seconds()
	m := c.machine(secs)
	// n+1 runnable spinners on n cores: at any moment at least one of them waits.
	if w := m.waitOf("other"); w < 0.5 {
		t.Fatalf("spinners waited %.2f s per s for a CPU, want at least 0.5 (%s)", w, m)
	}
	// Each spinner is taken off its CPU at least once per scheduler slice (a few ms) to let
	// the one waiting run.
	if !strings.Contains(m.String(), "put on a CPU (times per s): ") {
		t.Fatalf("no wake-ups in %q", m.String())
	}
	m.steal = 0.25
	if !strings.Contains(m.String(), "waiting for a CPU (s per s): other ") || !strings.Contains(m.String(), "the hypervisor took 0.25 (steal)") {
		t.Fatalf("note = %q", m.String())
	}
	if m.hasPressure && m.pressure < 0.5 {
		t.Fatalf("CPU pressure %.2f with more spinners than cores, want at least 0.5", m.pressure)
	}
}
