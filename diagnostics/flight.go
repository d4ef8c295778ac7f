// Package diagnostics holds tools for finding a problem in cdcd itself, all off by default.
//
// The flight recorder keeps the last seconds of Go's execution trace in memory
// (runtime/trace.FlightRecorder, a few percent of CPU) and writes that window to a file when a
// change's end-to-end latency passes a threshold, so a stall that happens once an hour can be
// read afterwards with `go tool trace FILE`: which goroutine waited on what, GC pauses, network
// waits, scheduler delays.
//
// Invariants: a trace is never written more often than once per Cooldown, at most MaxFiles
// traces are kept in Dir (the oldest are removed), and Observe never blocks its caller (the
// commit path): the write runs on its own goroutine, and a second slow commit while one is
// being written is skipped.
package diagnostics

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FlightConfig configures a FlightRecorder.
type FlightConfig struct {
	// Threshold is the end-to-end latency (source commit -> Kafka commit) above which the
	// window is written. Required.
	Threshold time.Duration
	// Dir receives the trace files (created if missing). Required.
	Dir string
	// Window is how much recent execution the recorder keeps (MinAge); default 10s.
	Window time.Duration
	// MaxBytes bounds the in-memory window (a hint to the runtime, see FlightRecorderConfig);
	// default 32 MiB.
	MaxBytes uint64
	// Cooldown is the least time between two traces; default 1m.
	Cooldown time.Duration
	// MaxFiles is how many trace files are kept in Dir; the oldest are removed. Default 10.
	MaxFiles int
}

// Defaults of FlightConfig's optional fields.
const (
	DefaultFlightWindow   = 10 * time.Second
	DefaultFlightMaxBytes = 32 << 20
	DefaultFlightCooldown = time.Minute
	DefaultFlightMaxFiles = 10
)

// Counter is the one method of a Prometheus counter the recorder uses.
type Counter interface{ Inc() }

// FlightRecorder writes the recent execution trace when a latency passes the threshold.
type FlightRecorder struct {
	cfg     FlightConfig
	fr      *trace.FlightRecorder
	log     *slog.Logger
	written Counter // may be nil

	last    atomic.Int64 // unix nanos of the last trace started (0: none)
	writing atomic.Bool
	wg      sync.WaitGroup
	now     func() time.Time
}

// StartFlightRecorder checks cfg, creates Dir and starts recording. written, if not nil,
// counts the traces written.
func StartFlightRecorder(cfg FlightConfig, log *slog.Logger, written Counter) (*FlightRecorder, error) {
	if cfg.Threshold <= 0 {
		return nil, errors.New("flight recorder: threshold must be positive")
	}
	if cfg.Dir == "" {
		return nil, errors.New("flight recorder: no directory for its traces")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultFlightWindow
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultFlightMaxBytes
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultFlightCooldown
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultFlightMaxFiles
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("flight recorder: creating %s: %w (fix: diagnostics.flight_recorder.dir must be a writable directory)", cfg.Dir, err)
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: cfg.Window, MaxBytes: cfg.MaxBytes})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("flight recorder: starting: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("flight recorder on", "threshold", cfg.Threshold, "dir", cfg.Dir, "window", cfg.Window)
	return &FlightRecorder{cfg: cfg, fr: fr, log: log, written: written, now: time.Now}, nil
}

// Observe reports one end-to-end latency of pipeline. Over the threshold, and once the
// cooldown since the last trace has passed, the recorder writes its window to a new file in
// the background. Safe for concurrent use; never blocks. A nil recorder does nothing.
func (r *FlightRecorder) Observe(pipeline string, latency time.Duration) {
	if r == nil || latency < r.cfg.Threshold {
		return
	}
	now := r.now()
	last := r.last.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < r.cfg.Cooldown {
		return
	}
	if !r.writing.CompareAndSwap(false, true) {
		return
	}
	if !r.last.CompareAndSwap(last, now.UnixNano()) {
		r.writing.Store(false)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.writing.Store(false)
		path, err := r.write(pipeline, now)
		if err != nil {
			r.log.Warn("flight recorder: writing trace", "pipeline", pipeline, "latency", latency, "err", err)
			return
		}
		if r.written != nil {
			r.written.Inc()
		}
		r.log.Warn("end-to-end latency over the flight recorder's threshold: trace written (read it with go tool trace)",
			"pipeline", pipeline, "latency", latency, "threshold", r.cfg.Threshold, "file", path)
		r.prune()
	}()
}

// write writes the window to Dir under a name that sorts by time: a temporary file renamed
// when complete, so a reader never sees half a trace.
func (r *FlightRecorder) write(pipeline string, at time.Time) (string, error) {
	name := fmt.Sprintf("%s%s-%s%s", filePrefix, at.UTC().Format("20060102T150405.000Z"), safeName(pipeline), fileSuffix)
	tmp, err := os.CreateTemp(r.cfg.Dir, ".partial-*")
	if err != nil {
		return "", err
	}
	if _, err := r.fr.WriteTo(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	path := filepath.Join(r.cfg.Dir, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}

const (
	filePrefix = "cdcd-flight-"
	fileSuffix = ".trace"
)

// prune keeps the newest MaxFiles traces.
func (r *FlightRecorder) prune() {
	files, err := Traces(r.cfg.Dir)
	if err != nil || len(files) <= r.cfg.MaxFiles {
		return
	}
	for _, f := range files[:len(files)-r.cfg.MaxFiles] {
		if err := os.Remove(f); err != nil {
			r.log.Warn("flight recorder: removing old trace", "file", f, "err", err)
		}
	}
}

// Traces lists the trace files in dir, oldest first.
func Traces(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasPrefix(n, filePrefix) && strings.HasSuffix(n, fileSuffix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out) // names start with the UTC time
	return out, nil
}

// Stop waits for a trace being written and stops recording. A nil recorder does nothing.
func (r *FlightRecorder) Stop() {
	if r == nil {
		return
	}
	r.wg.Wait()
	r.fr.Stop()
}

func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, s)
}
