package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDaemon serves /readyz and /metrics from a script: each /readyz look takes the next step.
type fakeDaemon struct {
	mu     sync.Mutex
	steps  []string // /readyz bodies; the last repeats
	chunks []float64
	starts []float64 // process_start_time_seconds per step (none: not served)
	n      int
}

func (f *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.n, len(f.steps)-1)
	switch r.URL.Path {
	case "/readyz":
		f.n++
		if f.steps[i] == "" { // the daemon restarting: nothing listens
			http.Error(w, "", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, f.steps[i])
	case "/metrics":
		c := f.chunks[min(i, len(f.chunks)-1)]
		if len(f.starts) > 0 {
			fmt.Fprintf(w, "process_start_time_seconds %g\n", f.starts[min(i, len(f.starts)-1)])
		}
		fmt.Fprintf(w, "# TYPE cdcd_snapshot_chunks_total counter\ncdcd_snapshot_chunks_total{pipeline=\"other\",table=\"public.orders\"} 99\ncdcd_snapshot_chunks_total{pipeline=\"shop\",table=\"public.orders\"} %g\n", c)
	default:
		http.NotFound(w, r)
	}
}

func step(phase, reason, snapshot string) string {
	return fmt.Sprintf(`{"ready":true,"pipelines":[{"name":"shop","ready":true,"phase":%q,"reason":%q,"snapshot":[%s]}]}`, phase, reason, snapshot)
}

func progress(rows, chunks, pending int) string {
	return fmt.Sprintf(`{"table":"public.orders","reason":"requested","rows":%d,"rows_estimated":1000,"chunks":%d,"chunks_pending":%d,"started":%q}`,
		rows, chunks, pending, time.Now().Add(-2*time.Second).Format(time.RFC3339Nano))
}

func runWait(t *testing.T, f *fakeDaemon, tty bool) (string, error) {
	t.Helper()
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := &snapshotWait{url: srv.URL, tty: tty, interval: time.Millisecond, logEvery: time.Nanosecond, pickup: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mark, err := w.mark(ctx, "shop", "public.orders")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = w.wait(ctx, "shop", "public.orders", mark, &out)
	return out.String(), err
}

func TestSnapshotWaitShowsProgressUntilTheEnd(t *testing.T) {
	f := &fakeDaemon{
		steps: []string{
			step("streaming", "", ""), // not taken up yet
			step("snapshotting", "", progress(0, 0, 4)),
			step("snapshotting", "", progress(500, 2, 2)),
			step("snapshotting", "", progress(1000, 4, 0)),
			step("streaming", "", ""), // done
		},
		chunks: []float64{7, 7, 9, 11, 11},
	}
	out, err := runWait(t, f, false)
	if err != nil {
		t.Fatalf("wait: %v\n%s", err, out)
	}
	for _, want := range []string{"waiting for pipeline shop", "public.orders: 500 rows of about 1000 (50.0%), 2 chunk(s) done, 2 pending", "rows/s", "snapshot of public.orders done: 4 chunk(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// On a terminal the progress line is rewritten in place.
	f.n = 0
	out, err = runWait(t, f, true)
	if err != nil || !strings.Contains(out, "\r\033[Kpublic.orders: 1000 rows") {
		t.Errorf("terminal output %q, err %v", out, err)
	}
}

// A snapshot that starts and ends between two looks still counts as done (its chunks moved).
func TestSnapshotWaitSeesAQuickSnapshot(t *testing.T) {
	f := &fakeDaemon{steps: []string{step("streaming", "", ""), step("streaming", "", "")}, chunks: []float64{3, 4}}
	out, err := runWait(t, f, false)
	if err != nil || !strings.Contains(out, "done: 1 chunk(s)") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestSnapshotWaitFailsWithThePipeline(t *testing.T) {
	f := &fakeDaemon{
		steps: []string{
			step("snapshotting", "", progress(100, 1, 3)),
			step("failed", "table public.orders key {id=42}: schema rejected (fix: ...)", ""),
		},
		chunks: []float64{1, 1},
	}
	out, err := runWait(t, f, false)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code == 0 || !strings.Contains(err.Error(), "schema rejected") {
		t.Fatalf("err %v (want a non-zero exit naming the cause), output:\n%s", err, out)
	}
}

// --wait needs the running daemon: without one it fails before requesting anything.
func TestSnapshotWaitNeedsTheDaemon(t *testing.T) {
	w := &snapshotWait{url: "http://" + freeAddr(t)}
	if _, err := w.mark(context.Background(), "shop", "public.orders"); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("err %v", err)
	}
}

func TestListenURL(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:9187": "http://127.0.0.1:9187", "0.0.0.0:9187": "http://127.0.0.1:9187", ":9187": "http://127.0.0.1:9187", "[::1]:9187": "http://[::1]:9187"} {
		if got := listenURL(in); got != want {
			t.Errorf("listenURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A daemon restarted in the middle of the snapshot resumes it later: until it is listed again
// (or the new process's chunks move), the snapshot is not done, even though the first look
// after the restart does not list it and the chunk counters start again from zero.
func TestSnapshotWaitFollowsADaemonRestart(t *testing.T) {
	f := &fakeDaemon{
		steps: []string{
			step("snapshotting", "", progress(300, 1, 3)),
			"", // restarting
			step("starting", "", ""),
			step("streaming", "", ""), // restarted, snapshot not resumed yet
			step("snapshotting", "", progress(1000, 4, 0)),
			step("streaming", "", ""), // done
		},
		// /metrics answers after a /readyz look with the next step's values.
		chunks: []float64{1, 1, 0, 0, 0, 4, 4},
		starts: []float64{100, 100, 200, 200, 200, 200, 200},
	}
	out, err := runWait(t, f, false)
	if err != nil {
		t.Fatalf("wait: %v\n%s", err, out)
	}
	if !strings.Contains(out, "public.orders: 1000 rows") || !strings.Contains(out, "snapshot of public.orders done") {
		t.Fatalf("--wait said done before the restarted daemon resumed and finished the snapshot:\n%s", out)
	}
	if !strings.Contains(out, "cdcd restarted") {
		t.Errorf("output does not say that cdcd restarted:\n%s", out)
	}
}

// A restart that is quicker than one look is seen by the process's start time.
func TestSnapshotWaitSeesAQuickRestart(t *testing.T) {
	f := &fakeDaemon{
		steps: []string{
			step("snapshotting", "", progress(300, 1, 3)),
			step("streaming", "", ""), // restarted between looks, not resumed yet
			step("streaming", "", ""),
			step("snapshotting", "", progress(1000, 4, 0)),
			step("streaming", "", ""),
		},
		chunks: []float64{1, 0, 0, 0, 4, 4},
		starts: []float64{100, 200, 200, 200, 200, 200},
	}
	out, err := runWait(t, f, false)
	if err != nil || !strings.Contains(out, "public.orders: 1000 rows") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
