package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// snapshotWait follows a requested snapshot on the running daemon (cdcd snapshot --wait): its
// /readyz lists the tables a pipeline is snapshotting with their progress, and /metrics counts
// each table's chunks, so a snapshot that started and ended between two looks is seen too.
type snapshotWait struct {
	url      string        // the daemon's base URL, http://host:port
	tty      bool          // rewrite one progress line in place; else a line every logEvery
	interval time.Duration // between looks
	logEvery time.Duration
	pickup   time.Duration // how long the pipeline may take to take the request up
	client   *http.Client
}

// snapshotMark is what the daemon's metrics said of the table before the request, and when
// the daemon's process started (process_start_time_seconds; 0 when not served).
type snapshotMark struct {
	chunks, duration float64
	started          float64
}

// restartedSince tells whether the daemon that answered with m is another process than the
// one that answered with before: by the start time, or, without one, by the daemon having not
// answered in between.
func restartedSince(before, m snapshotMark, unanswered bool) bool {
	if before.started != 0 && m.started != 0 {
		return before.started != m.started
	}
	return unanswered
}

// listenURL is the base URL of http.listen, as seen from this host.
func listenURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (w *snapshotWait) get(ctx context.Context, path string) (*http.Response, error) {
	c := w.client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(w.url, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// mark reads the table's snapshot metrics before the request; it also checks that the daemon
// answers, so --wait fails before requesting anything when it cannot follow.
func (w *snapshotWait) mark(ctx context.Context, pipeline, table string) (snapshotMark, error) {
	if w == nil {
		return snapshotMark{}, nil
	}
	m, err := w.metrics(ctx, pipeline, table)
	if err != nil {
		return snapshotMark{}, fmt.Errorf("--wait: cannot reach the running cdcd at %s: %w (fix: start cdcd run first, or give its address with --url)", w.url, err)
	}
	return m, nil
}

func (w *snapshotWait) metrics(ctx context.Context, pipeline, table string) (snapshotMark, error) {
	resp, err := w.get(ctx, "/metrics")
	if err != nil {
		return snapshotMark{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return snapshotMark{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var m snapshotMark
	labels := []string{`pipeline="` + pipeline + `"`, `table="` + table + `"`}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "process_start_time_seconds "):
			if v, err := strconv.ParseFloat(strings.TrimSpace(line[len("process_start_time_seconds "):]), 64); err == nil {
				m.started = v
			}
			continue
		case strings.HasPrefix(line, "cdcd_snapshot_chunks_total{"):
			dst = &m.chunks
		case strings.HasPrefix(line, "cdcd_snapshot_duration_seconds{"):
			dst = &m.duration
		default:
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 || !strings.Contains(line[:end], labels[0]) || !strings.Contains(line[:end], labels[1]) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64); err == nil {
			*dst = v
		}
	}
	return m, sc.Err()
}

type readyEntry struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"`
	Reason   string `json:"reason"`
	Snapshot []struct {
		Table         string    `json:"table"`
		Rows          uint64    `json:"rows"`
		RowsEstimated int64     `json:"rows_estimated"`
		Chunks        uint64    `json:"chunks"`
		ChunksPending int       `json:"chunks_pending"`
		Started       time.Time `json:"started"`
	} `json:"snapshot"`
}

// notInFleetInstance: the fleet instance --wait follows does not run the pipeline (any more).
type notInFleetInstance struct{ error }

func (w *snapshotWait) readyz(ctx context.Context, pipeline string) (*readyEntry, error) {
	resp, err := w.get(ctx, "/readyz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Fleet *struct {
			Group    string `json:"group"`
			Instance string `json:"instance"`
		} `json:"fleet"`
		Pipelines []readyEntry `json:"pipelines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /readyz: %w", err)
	}
	for i := range body.Pipelines {
		if body.Pipelines[i].Name == pipeline {
			return &body.Pipelines[i], nil
		}
	}
	if f := body.Fleet; f != nil {
		// The pipeline runs on another instance of the fleet, or moved there meanwhile (the
		// snapshot goes on there).
		return nil, &notInFleetInstance{fmt.Errorf("the cdcd at %s (instance %s of fleet %s) does not run pipeline %s now (fix: cdcd fleet status --config FILE names the instance that runs it; give its address to --url)",
			w.url, f.Instance, f.Group, pipeline)}
	}
	return nil, fmt.Errorf("the cdcd at %s runs no pipeline %s (fix: --url names the cdcd that runs it)", w.url, pipeline)
}

// wait shows the snapshot's progress until it ends. It fails when the pipeline fails, when the
// pipeline does not take the request up within pickup, or when ctx ends (Ctrl-C: the snapshot
// itself goes on).
func (w *snapshotWait) wait(ctx context.Context, pipeline, table string, before snapshotMark, out io.Writer) error {
	if w == nil {
		return nil
	}
	interval, logEvery, pickup := w.interval, w.logEvery, w.pickup
	if interval == 0 {
		interval = 500 * time.Millisecond
	}
	if logEvery == 0 {
		logEvery = 5 * time.Second
	}
	if pickup == 0 {
		pickup = 5 * time.Minute
	}
	start := time.Now()
	seen := false // the table was listed as snapshotting
	var lastLog time.Time
	var last string
	show := func(line string, final bool) {
		switch {
		case w.tty:
			fmt.Fprintf(out, "\r\033[K%s", line)
			if final {
				fmt.Fprintln(out)
			}
		case final || time.Since(lastLog) >= logEvery:
			fmt.Fprintln(out, line)
			lastLog = time.Now()
		}
	}
	var unreachable error
	unanswered := false // the daemon did not answer since the last look at its metrics
	for {
		e, err := w.readyz(ctx, pipeline)
		switch {
		case err != nil && ctx.Err() != nil:
			show(last, true)
			return &exitError{1, fmt.Errorf("stopped waiting (the snapshot of %s goes on in pipeline %s): %w", table, pipeline, ctx.Err())}
		case errors.As(err, new(*notInFleetInstance)):
			show(last, true)
			return &exitError{1, err}
		case err != nil:
			// The daemon restarting: a requested snapshot is taken up again after a restart.
			unanswered = true
			if unreachable == nil {
				unreachable = err
				show(fmt.Sprintf("%s: cdcd does not answer (%v); waiting", table, err), false)
			}
			if time.Since(start) > pickup && !seen {
				show(last, true)
				return &exitError{1, fmt.Errorf("cdcd at %s does not answer: %w", w.url, err)}
			}
		default:
			unreachable = nil
			if e.Phase == "failed" {
				show(last, true)
				return &exitError{1, fmt.Errorf("pipeline %s failed during the snapshot of %s: %s", pipeline, table, e.Reason)}
			}
			listed := false
			for _, t := range e.Snapshot {
				if t.Table != table {
					continue
				}
				listed, seen = true, true
				last = progressLine(table, t.Rows, t.RowsEstimated, t.Chunks, t.ChunksPending, t.Started)
				if e.Phase == "retrying" && e.Reason != "" {
					last += " (pipeline retrying: " + e.Reason + ")"
				}
				show(last, false)
			}
			if !listed {
				m, err := w.metrics(ctx, pipeline, table)
				if err == nil && restartedSince(before, m, unanswered) {
					// A restarted daemon resumes a requested snapshot from its log; its counters
					// start again from zero, and the table is listed again once resumed.
					before, seen, last, start = snapshotMark{started: m.started}, false, "", time.Now()
					show(fmt.Sprintf("%s: cdcd restarted; waiting for pipeline %s to resume the snapshot", table, pipeline), false)
				}
				if err == nil {
					unanswered = false
				}
				moved := err == nil && (m.chunks != before.chunks || m.duration != before.duration)
				if seen || moved {
					done := fmt.Sprintf("snapshot of %s done", table)
					if err == nil {
						done += fmt.Sprintf(": %s chunk(s) in %s", strconv.FormatFloat(m.chunks-before.chunks, 'f', 0, 64), time.Since(start).Round(100*time.Millisecond))
					}
					if last != "" {
						show(last, true)
					}
					fmt.Fprintln(out, done)
					return nil
				}
				if time.Since(start) > pickup {
					return &exitError{1, fmt.Errorf("pipeline %s did not take up the snapshot of %s within %s (phase %s: %s); the request stays in the log and is taken up when the pipeline reaches it", pipeline, table, pickup, e.Phase, e.Reason)}
				}
				if last == "" {
					show(fmt.Sprintf("%s: waiting for pipeline %s to take the request up (phase %s)", table, pipeline, e.Phase), false)
				}
			}
		}
		select {
		case <-ctx.Done():
			show(last, true)
			return &exitError{1, fmt.Errorf("stopped waiting (the snapshot of %s goes on in pipeline %s): %w", table, pipeline, ctx.Err())}
		case <-time.After(interval):
		}
	}
}

// progressLine is one look at a table's snapshot: rows, percent of the estimate, chunks, rate.
func progressLine(table string, rows uint64, estimated int64, chunks uint64, pending int, started time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows", table, rows)
	if estimated > 0 {
		fmt.Fprintf(&b, " of about %d (%.1f%%)", estimated, min(100, 100*float64(rows)/float64(estimated)))
	}
	fmt.Fprintf(&b, ", %d chunk(s) done, %d pending", chunks, pending)
	if el := time.Since(started).Seconds(); !started.IsZero() && el > 0 {
		fmt.Fprintf(&b, ", %.0f rows/s", float64(rows)/el)
	}
	return b.String()
}
