package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/diagnostics"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

func validateCommand(path string, stdout io.Writer) error {
	cfg, err := loadValid(path)
	if err != nil {
		return err
	}
	printWarnings(stdout, path, cfg)
	if len(cfg.Windows) > 0 {
		fmt.Fprintf(stdout, "%s: valid (%d pipeline(s), %d window job(s))\n", path, len(cfg.Pipelines), len(cfg.Windows))
	} else {
		fmt.Fprintf(stdout, "%s: valid (%d pipeline(s))\n", path, len(cfg.Pipelines))
	}
	return nil
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runCommand runs every pipeline and window job until SIGTERM/SIGINT, then drains within shutdown_timeout.
func runCommand(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := loadValid(path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	logWarnings(log, cfg)
	tuneGC(cfg)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, version)
	wm := metrics.NewWindowJobs(reg)
	mym := metrics.NewMySQL(reg)
	names := make([]string, 0, len(cfg.Pipelines)+len(cfg.Windows))
	for _, p := range cfg.Pipelines {
		if !cfg.Fleet.Enabled { // a fleet instance tracks those assigned to it
			names = append(names, p.Name)
		}
	}
	for _, w := range cfg.Windows {
		names = append(names, health.WindowKey(w.Name))
	}
	hr := health.NewRegistry(names...)
	hr.SetRedactor(outputSecrets.String)
	flight, err := startFlightRecorder(cfg.Diagnostics, log, m)
	if err != nil {
		return &exitError{1, err}
	}
	defer flight.Stop()

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listening on http.listen %s: %w (fix: free the port or choose another http.listen)", cfg.HTTP.Listen, err)
	}
	srv := &http.Server{Handler: opsMux(reg, hr, cfg.HTTP.FailLivenessAfter.D), ReadHeaderTimeout: 5 * time.Second}
	var httpG errgroup.Group
	httpG.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
		return nil
	})
	closeHTTP := func() {
		shCtx, shCancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(shCtx)
		shCancel()
		_ = srv.Close()
		_ = httpG.Wait()
	}
	log.Info("cdcd started", "version", version, "config", path, "http", ln.Addr().String(), "pipelines", len(cfg.Pipelines), "window_jobs", len(cfg.Windows))
	if cfg.Fleet.Enabled {
		log.Info("fleet mode: this instance runs the pipelines its group assigns to it", "group", cfg.Fleet.Group, "instance", fleetInstance(cfg))
	}

	// Each pipeline runs under its own supervisor, which retries what is retriable. A pipeline
	// that stops on a fatal error stays stopped and unready (/readyz says why) while the others
	// go on; the process keeps serving /metrics and /readyz for the person on call. Every
	// goroutine (supervisors, slot monitors) is joined before cdcd exits.
	var runners []*pipelineRunner
	for i := range cfg.Pipelines {
		if cfg.Fleet.Enabled {
			break // the fleet runs the pipelines assigned to this instance
		}
		p := &cfg.Pipelines[i]
		r, err := newPipeline(cfg, p, deps{log: log.With("pipeline", p.Name), metrics: m, mysql: mym, health: hr, flight: flight})
		if err != nil {
			closeHTTP()
			return fmt.Errorf("pipeline %s: %w", p.Name, err)
		}
		runners = append(runners, r)
	}
	// A window job retries what is retriable itself; one that stops on a fatal error stays
	// stopped and unready, like a pipeline.
	jobs := make([]*windowRunner, len(cfg.Windows))
	for i := range cfg.Windows {
		w := &cfg.Windows[i]
		j, err := newWindowJob(cfg, w, log, hr, wm)
		if err != nil {
			closeHTTP()
			return fmt.Errorf("window job %s: %w", w.Name, err)
		}
		jobs[i] = j
	}
	var g errgroup.Group
	if len(cfg.Pipelines) > 0 {
		g.Go(func() error { warnOffsetsTopic(ctx, cfg, log); return nil })
	}
	if cfg.Fleet.Enabled {
		d := deps{log: log, metrics: m, mysql: mym, health: hr, flight: flight}
		if err := startFleet(ctx, &g, cfg, d, reg, stderr); err != nil {
			closeHTTP()
			return err
		}
	}
	for _, r := range runners {
		for _, w := range r.watch {
			g.Go(func() error { defer exitOnPanic(stderr); w(ctx); return nil })
		}
		g.Go(func() error {
			defer exitOnPanic(stderr)
			if err := r.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("pipeline stopped; fix the cause and restart cdcd", "pipeline", r.name, "err", err)
			}
			return nil
		})
	}

	for _, j := range jobs {
		g.Go(func() error { defer exitOnPanic(stderr); j.watch(ctx); return nil })
		g.Go(func() error {
			defer exitOnPanic(stderr)
			if err := j.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("window job stopped; fix the cause and restart cdcd", "window_job", j.name, "err", err)
			}
			return nil
		})
	}

	<-ctx.Done()
	log.Info("shutting down: draining pipelines and window jobs", "timeout", cfg.ShutdownTimeout.D.String())
	drained := make(chan struct{})
	go func() { _ = g.Wait(); close(drained) }()
	timedOut := false
	t := time.NewTimer(cfg.ShutdownTimeout.D)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		timedOut = true
	}
	closeHTTP()
	if timedOut {
		return fmt.Errorf("pipelines did not drain within shutdown_timeout %s; they resume from the last committed position on restart", cfg.ShutdownTimeout.D)
	}
	log.Info("cdcd stopped")
	return nil
}

// opsMux serves the status page (/), /metrics, /readyz and /healthz; liveness fails once a pipeline has been failed
// for failLivenessAfter (http.fail_liveness_after; 0: never).
func opsMux(reg *prometheus.Registry, hr *health.Registry, failLivenessAfter time.Duration) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/healthz", hr.LiveHandler(failLivenessAfter))
	mux.Handle("/readyz", hr.ReadyHandler())
	mux.Handle("/", hr.StatusHandler(reg))
	return mux
}

// healthcheckCommand probes /healthz of a running cdcd: a minimal container image has no curl.
func healthcheck(url string) error {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s", url, resp.Status)
	}
	return nil
}

// deps are what the daemon hands every pipeline.
type deps struct {
	log     *slog.Logger
	metrics *metrics.Metrics
	mysql   *metrics.MySQL // binlog metrics of MySQL pipelines
	health  *health.Registry
	flight  *diagnostics.FlightRecorder // nil unless diagnostics.flight_recorder is set
}

// startFlightRecorder starts the execution-trace flight recorder if the configuration asks for
// it (nil, nil otherwise).
func startFlightRecorder(d config.Diagnostics, log *slog.Logger, m *metrics.Metrics) (*diagnostics.FlightRecorder, error) {
	fr := d.FlightRecorder
	if fr == nil {
		return nil, nil
	}
	return diagnostics.StartFlightRecorder(diagnostics.FlightConfig{Threshold: fr.Threshold.D, Dir: fr.Dir, Window: fr.Window.D,
		MaxBytes: uint64(fr.MaxBytes.N), Cooldown: fr.Cooldown.D, MaxFiles: fr.MaxFiles}, log, m.FlightTraces)
}

// tuneGC bounds memory unless the operator set GOGC or GOMEMLIMIT: Go's default pacing
// (GOGC=100) under a soft limit computed from the configuration (memoryBudget), so a large
// backlog, a big transaction or a snapshot cannot grow the heap past what the configuration
// lets cdcd hold. (GOGC=400 under the same limit spent 5-10 % less CPU on a snapshot but held
// about twice the memory while streaming.)
func tuneGC(cfg *config.Config) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memoryBudget(cfg))
}

// Parts of the memory budget (see memoryBudget).
const (
	memBase           = 48 << 20 // the runtime, clients, registry caches, metrics
	memPerMySQL       = 16 << 20 // binlog events read ahead of the pipeline
	memPerPipeline    = 16 << 20 // changes in flight between the source and the sink
	memPerWindowJob   = 96 << 20 // open windows and their groups
	memSnapshotCopies = 2        // a chunk's rows as read, and decoded
)

// memoryBudget is the soft memory limit cdcd runs under: what its configuration lets it hold
// at once (each pipeline's transaction buffer, the records of an open Kafka transaction, the
// snapshot chunks being read, the window jobs' state) plus a base. The heap normally stays at
// twice what is live (GOGC=100); the limit caps it when what is live grows.
func memoryBudget(cfg *config.Config) int64 {
	limit := int64(memBase)
	for _, p := range cfg.Pipelines {
		limit += memPerPipeline + p.Batch.MaxBytes.N
		switch {
		case p.Source.Postgres != nil:
			limit += p.Source.Postgres.TxMemoryLimit.N
		case p.Source.MySQL != nil:
			limit += memPerMySQL
		}
		if p.Snapshot.Mode != "never" {
			limit += int64(max(p.Snapshot.Parallelism, 1)) * p.Snapshot.ChunkMaxBytes.N * memSnapshotCopies
		}
	}
	return limit + int64(len(cfg.Windows))*memPerWindowJob
}
