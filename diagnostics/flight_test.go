package diagnostics

import (
	"bytes"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

type count struct{ n atomic.Int64 }

func (c *count) Inc() { c.n.Add(1) }

// start starts a recorder on a fresh directory with a clock the test moves. Only one flight
// recorder may run at a time in a process, so these tests are not parallel.
func start(t *testing.T, cfg FlightConfig) (*FlightRecorder, *count, *time.Time) {
	t.Helper()
	cfg.Dir = t.TempDir()
	c := &count{}
	r, err := StartFlightRecorder(cfg, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	return r, c, &clock
}

func traces(t *testing.T, r *FlightRecorder) []string {
	t.Helper()
	r.wg.Wait()
	fs, err := Traces(r.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestFlightRecorderWritesATraceOnlyOverTheThreshold(t *testing.T) {
	r, c, _ := start(t, FlightConfig{Threshold: 500 * time.Millisecond})
	r.Observe("shop", 499*time.Millisecond)
	if fs := traces(t, r); len(fs) != 0 {
		t.Fatalf("a latency under the threshold wrote %v", fs)
	}
	r.Observe("shop/eu", 700*time.Millisecond)
	fs := traces(t, r)
	if len(fs) != 1 || c.n.Load() != 1 {
		t.Fatalf("over the threshold: files %v, counter %d; want one of each", fs, c.n.Load())
	}
	b, err := os.ReadFile(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	// An execution trace starts with its header ("go 1.NN trace") and holds events beyond it.
	if !bytes.HasPrefix(b, []byte("go 1.")) || !bytes.Contains(b[:16], []byte("trace")) || len(b) < 1024 {
		t.Fatalf("%s is not an execution trace (%d bytes, starts %q)", fs[0], len(b), b[:min(len(b), 16)])
	}
	// And the toolchain's own reader parses it.
	if out, err := exec.Command("go", "tool", "trace", "-d=parsed", fs[0]).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("Sync")) {
		t.Fatalf("go tool trace cannot read %s: %v\n%.500s", fs[0], err, out)
	}
	if !bytes.Contains([]byte(fs[0]), []byte("-shop_eu.trace")) {
		t.Errorf("file %s does not name the pipeline safely", fs[0])
	}
}

func TestFlightRecorderCooldownAndMaxFiles(t *testing.T) {
	r, c, clock := start(t, FlightConfig{Threshold: time.Millisecond, Cooldown: time.Minute, MaxFiles: 2})
	r.Observe("p", time.Second)
	traces(t, r)
	r.Observe("p", time.Second) // within the cooldown
	if fs := traces(t, r); len(fs) != 1 {
		t.Fatalf("a second slow commit within the cooldown wrote a trace: %v", fs)
	}
	var names []string
	for range 3 {
		*clock = clock.Add(time.Minute)
		r.Observe("p", time.Second)
		names = traces(t, r)
	}
	if c.n.Load() != 4 {
		t.Fatalf("counter %d, want 4 traces written", c.n.Load())
	}
	if len(names) != 2 {
		t.Fatalf("kept %d traces, want MaxFiles=2: %v", len(names), names)
	}
	// The newest are kept: the last one written is the clock's time.
	if want := clock.UTC().Format("20060102T150405.000Z"); !bytes.Contains([]byte(names[1]), []byte(want)) {
		t.Errorf("newest kept trace %s is not the last written (%s)", names[1], want)
	}
}

func TestFlightRecorderRefusesBadConfig(t *testing.T) {
	if _, err := StartFlightRecorder(FlightConfig{Dir: t.TempDir()}, nil, nil); err == nil {
		t.Error("a zero threshold was accepted")
	}
	if _, err := StartFlightRecorder(FlightConfig{Threshold: time.Second}, nil, nil); err == nil {
		t.Error("an empty directory was accepted")
	}
	f := t.TempDir() + "/file"
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StartFlightRecorder(FlightConfig{Threshold: time.Second, Dir: f + "/sub"}, nil, nil); err == nil {
		t.Error("a directory under a file was accepted")
	}
	var r *FlightRecorder
	r.Observe("p", time.Hour) // a nil recorder (the option off) does nothing
	r.Stop()
}
