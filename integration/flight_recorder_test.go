package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// diagnostics.flight_recorder on a running cdcd: a commit slower than the threshold (1ms here,
// so every commit qualifies) writes one execution trace that the toolchain reads, counted in
// cdcd_flight_recorder_traces_total; the cooldown keeps it at one.
func TestFlightRecorderWritesATraceOfASlowCommit(t *testing.T) {
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_flight", `CREATE TABLE f (id int PRIMARY KEY, v text)`)
	name := uniqueName("flight")
	dir := filepath.Join(t.TempDir(), "traces")
	yaml := pipelineYAML(s, name, dsn, []string{"public.f"}, "")
	yaml = strings.Replace(yaml, "pipelines:\n", "diagnostics:\n  flight_recorder:\n    threshold: 1ms\n    dir: "+dir+"\n    cooldown: 1h\npipelines:\n", 1)
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)
	for i := range 5 {
		if _, err := db.Exec(ctx, `INSERT INTO f VALUES ($1, 'v')`, i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for d.metric("cdcd_flight_recorder_traces_total") < 1 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // later commits fall within the cooldown
	if n := d.metric("cdcd_flight_recorder_traces_total"); n != 1 {
		t.Fatalf("cdcd_flight_recorder_traces_total = %v, want 1 (one trace per cooldown)", n)
	}
	files, err := filepath.Glob(filepath.Join(dir, "cdcd-flight-*-"+name+".trace"))
	if err != nil || len(files) != 1 {
		t.Fatalf("traces in %s: %v (%v), want one naming the pipeline", dir, files, err)
	}
	out, err := exec.Command("go", "tool", "trace", "-d=parsed", files[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Sync") {
		t.Fatalf("go tool trace cannot read %s: %v\n%.500s", files[0], err, out)
	}
	if !strings.Contains(d.Logs(), "flight recorder") {
		t.Errorf("the log does not say a trace was written:\n%s", d.Logs())
	}
}
