// Command cdcdbench measures cdcd end to end against the real local stack (PostgreSQL, Kafka,
// schema registry) and writes a Markdown report.
//
// One round is:
//
//  1. a fresh database with one table (id bigint pk, a int, b text ~40 bytes, c timestamptz);
//     cdcd is started once until /readyz answers 200 and stopped (SIGTERM), which creates the
//     pipeline's slot and publication; a second pgoutput slot is created for the baseline;
//  2. a backlog of -rows inserts (COPY, -tx-rows rows per transaction) written while cdcd is
//     stopped;
//  3. baseline: pg_recvlogical drains the backlog from its own pgoutput slot to /dev/null
//     with --endpos = the WAL position after the backlog;
//  4. catch-up: `cdcd run` starts and the time until cdcd_events_published_total reaches
//     -rows is measured (rows/s, CPU seconds, peak RSS, and the CPU of the walsender and the
//     Kafka broker over the same interval); the topic is then counted read_committed;
//  5. latency: with cdcd caught up, a paced writer commits single-row transactions at -rate
//     rows/s for -latency-duration, storing clock_timestamp() in c; a read_committed consumer
//     stamps each record on receipt; p50/p95/p99 of receipt - c are reported, next to cdcd's
//     own cdcd_end_to_end_latency_seconds histogram;
//  6. cleanup: cdcd stopped, slots dropped, database dropped, topics and subjects deleted.
//
// The order of steps 3 and 4 alternates between rounds so neither always reads a colder WAL.
// With -profile, one extra catch-up round runs a profiling build of cdcd (the same sources
// plus one file added with `go build -overlay`, never written into the tree) and the CPU and
// heap profiles are summarized in the report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	repo        string
	cdcdBin     string
	pgDSN       string
	kafka       string
	registry    string
	recvlogical string
	outDir      string

	rows   int
	txRows int

	rate       int
	latTxRows  int
	latDur     time.Duration
	latConns   int
	repeat     int
	profile    bool
	noBaseline bool
	noBare     bool
	warmup     time.Duration
	// catchupWarmup bounds the broker's warm-up before each tool's catch-up (0: none)
	catchupWarmup time.Duration
	noTLSPair     bool
	kafkaPID      int
	noLatency     bool
	verify        bool
	keep          bool

	// goalProfiles: after the measured scenarios, profile cdcd in the phases of the CPU goals
	// once more (goalprofile.go).
	goalProfiles bool
	// profiling (internal, set for that pass only): cdcd is a profiling build whose catch-ups
	// save its CPU profile, and no limit or other tool runs beside it.
	profiling bool

	catchupTimeout time.Duration
	pipelineExtra  string
	configExtra    string
	partitions     int
	cdcdEnv        string

	// -suite: cdcd against Debezium and the sources' limits
	suite         bool
	scenarios     string
	noDebezium    bool
	rates         []int
	txShapes      []int
	bigTxRows     int
	snapRows      int
	mysqlRows     int
	mysqlSnapRows int
	windowEvents  int
	restoreKeys   int
	mysqlDSN      string
	connectPort   string
	connectHeap   string
	connectExtra  string
	debeziumExtra string
	latest        string
	suiteTimeout  time.Duration
	probeBeside   bool

	fleetPipelines int
	fleetRate      int
	fleetDuration  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "root of the cdcd module (for the profiling build)")
	flag.StringVar(&o.cdcdBin, "cdcd", "bin/cdcd", "cdcd binary to measure (build it with `make build`)")
	flag.StringVar(&o.pgDSN, "pg-dsn", envOr("CDCD_TEST_PG_DSN", "postgres://postgres@127.0.0.1:55432/postgres"), "PostgreSQL admin DSN (URL form); a database per round is created next to it")
	flag.StringVar(&o.kafka, "kafka", envOr("CDCD_TEST_KAFKA", "127.0.0.1:19092"), "Kafka bootstrap broker")
	flag.StringVar(&o.registry, "registry", envOr("CDCD_TEST_REGISTRY", "http://127.0.0.1:18081/apis/ccompat/v7"), "Confluent-compatible schema registry URL")
	flag.StringVar(&o.recvlogical, "pg-recvlogical", "", "pg_recvlogical binary (default: /usr/lib/postgresql/<server major>/bin/pg_recvlogical, else PATH)")
	flag.StringVar(&o.outDir, "out", "bench/results", "directory for REPORT-<date>.md, logs and profiles")
	flag.IntVar(&o.rows, "rows", 1_000_000, "backlog rows (inserts)")
	flag.IntVar(&o.txRows, "tx-rows", 1000, "rows per backlog transaction")
	flag.IntVar(&o.rate, "rate", 5000, "latency phase: rows per second")
	flag.IntVar(&o.latTxRows, "latency-tx-rows", 1, "latency phase: rows per transaction (1: single-row transactions)")
	flag.DurationVar(&o.latDur, "latency-duration", 30*time.Second, "latency phase: how long the paced writer runs")
	flag.IntVar(&o.latConns, "latency-conns", 24, "latency phase: writer connections (each commit waits for its WAL flush)")
	flag.IntVar(&o.repeat, "repeat", 2, "measured rounds")
	flag.BoolVar(&o.profile, "profile", false, "add one catch-up round with a CPU/heap-profiling build of cdcd")
	flag.BoolVar(&o.noBaseline, "no-baseline", false, "skip the pg_recvlogical baseline")
	flag.DurationVar(&o.warmup, "steady-warmup", 4*time.Minute, "suite, scenario 2: before its first steady phase each tool runs the steady phases' loads in turn (10 s each, read back read_committed), unmeasured, until a whole cycle of them leaves the broker's JIT compiler under 0.5 s a round (needs -kafka-pid), for at most this long (0 = none)")
	flag.DurationVar(&o.catchupWarmup, "catchup-warmup", 3*time.Minute, "suite, scenario 1: before its catch-up each tool streams rounds of 200k rows written as fast as PostgreSQL takes them (read back read_committed), unmeasured, until two rounds in a row leave the broker's JIT compiler under 0.5 s each (needs -kafka-pid), for at most this long (0 = none)")
	flag.IntVar(&o.kafkaPID, "kafka-pid", 0, "suite, scenario 2: the broker's process id; each steady phase then notes its JVM's garbage-collection pauses (jstat), 0 = none")
	flag.BoolVar(&o.noBare, "no-bare", false, "suite, scenario 2: skip the bare slot consumer → Kafka pipelines (transactional and not) beside the bare slot consumer")
	flag.BoolVar(&o.goalProfiles, "goal-profiles", true, "suite: after the measured scenarios, run cdcd's PostgreSQL catch-up (with and without TLS), PostgreSQL snapshot and MariaDB catch-up once more with a CPU-profiling build, and write each profile's top next to the report (profiles/*.txt), where the CPU goals' rows point")
	flag.BoolVar(&o.noTLSPair, "no-tls-pair", false, "suite, scenario 1: skip the second catch-up of cdcd and pg_recvlogical over connections without TLS")
	flag.BoolVar(&o.noLatency, "no-latency", false, "skip the latency phase")
	flag.BoolVar(&o.verify, "verify", true, "after catch-up, count the topic read_committed (exactly -rows, no duplicates)")
	flag.BoolVar(&o.keep, "keep", false, "keep databases, slots, topics and subjects (for inspection)")
	flag.DurationVar(&o.catchupTimeout, "catchup-timeout", 10*time.Minute, "give up on a catch-up after this long")
	flag.StringVar(&o.configExtra, "config-extra", "", "YAML added at the top level of cdcd's PostgreSQL configurations (e.g. \"diagnostics:\\n  flight_recorder:\\n    threshold: 300ms\\n    dir: /tmp/flight\\n\")")
	flag.StringVar(&o.pipelineExtra, "pipeline-extra", "", "YAML appended at pipeline level (e.g. \"    batch:\\n      max_events: 50000\\n\")")
	flag.IntVar(&o.partitions, "partitions", 3, "kafka.topic_partitions of the pipeline's topics")
	flag.StringVar(&o.cdcdEnv, "cdcd-env", "", "extra environment of the cdcd process, comma-separated K=V (e.g. GOGC=400)")
	flag.BoolVar(&o.suite, "suite", false, "run the comparison suite (cdcd vs Debezium vs the limit, scenarios 1-7) and write -latest with charts")
	flag.StringVar(&o.scenarios, "scenarios", "", "suite: comma-separated scenarios to run (1 catch-up, 2 steady rates, 3 snapshot, 4 big transaction, 5 MariaDB, 6 window job and state restore, 7 MariaDB snapshot, 8 fleet); default all")
	flag.IntVar(&o.fleetPipelines, "fleet-pipelines", 12, "suite, scenario 8: PostgreSQL pipelines (a database each) spread over three fleet instances")
	flag.IntVar(&o.fleetRate, "fleet-rate", 600, "suite, scenario 8: rows/s in all, single-row transactions spread evenly over the pipelines")
	flag.DurationVar(&o.fleetDuration, "fleet-duration", 20*time.Second, "suite, scenario 8: how long the steady load runs before the SIGKILL")
	flag.BoolVar(&o.noDebezium, "no-debezium", false, "suite: measure cdcd and the limits only")
	rates := flag.String("rates", "1000,5000,20000", "suite, scenario 2: steady rates in rows/s")
	shapes := flag.String("tx-shapes", "1,10", "suite, scenario 2: rows per transaction of the steady phases")
	flag.IntVar(&o.bigTxRows, "bigtx-rows", 2_000_000, "suite, scenario 4: rows of the one big transaction")
	flag.IntVar(&o.snapRows, "snapshot-rows", 5_000_000, "suite, scenario 3: rows of the snapshotted table")
	flag.IntVar(&o.mysqlRows, "mysql-rows", 1_000_000, "suite, scenario 5: MariaDB backlog rows")
	flag.IntVar(&o.mysqlSnapRows, "mysql-snapshot-rows", 5_000_000, "suite, scenario 7: rows of the snapshotted MariaDB table")
	flag.IntVar(&o.windowEvents, "window-events", 2_000_000, "suite, scenario 6: input change events of the window job")
	flag.IntVar(&o.restoreKeys, "restore-keys", envInt("CDCD_BENCH_RESTORE_KEYS", 1_000_000), "suite, scenario 6: keys of window state that window.BenchmarkRestore writes to a changelog and restores, timed (default $CDCD_BENCH_RESTORE_KEYS, else 1000000; 0: skip)")
	flag.StringVar(&o.mysqlDSN, "mysql-dsn", envOr("CDCD_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:33306)/"), "MariaDB DSN (user:password@tcp(host:port)/)")
	flag.StringVar(&o.connectPort, "connect-port", "18083", "suite: Kafka Connect REST port (empty: any free port)")
	flag.StringVar(&o.connectHeap, "connect-heap", "2g", "suite: -Xmx of the Kafka Connect and Kafka Streams JVMs")
	flag.StringVar(&o.connectExtra, "connect-extra", "", "suite: extra Kafka Connect worker settings, comma-separated k=v (e.g. producer.linger.ms=0)")
	flag.StringVar(&o.debeziumExtra, "debezium-extra", "", "suite: extra Debezium connector settings, comma-separated k=v (e.g. poll.interval.ms=1)")
	flag.StringVar(&o.latest, "latest", "bench/results/latest.md", "suite: the report (charts are written next to it)")
	flag.BoolVar(&o.probeBeside, "probe-beside", false, "suite, scenario 2: run a bare slot consumer beside cdcd during its steady phases (same rows, same time): PostgreSQL's share of cdcd's latency under that load (it adds its own load to cdcd's runs, not to Debezium's, so it is off by default)")
	flag.DurationVar(&o.suiteTimeout, "suite-timeout", 40*time.Minute, "suite: stop everything after this long and report what did not run")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.suite && !set["latency-duration"] {
		o.latDur = 20 * time.Second // 12 steady phases: keep the suite within its bound
	}
	o.rates, o.txShapes = positiveInts(*rates), positiveInts(*shapes)

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "cdcdbench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(o options) error {
	if o.rows <= 0 || o.txRows <= 0 || o.repeat < 0 || o.rate <= 0 || o.latConns <= 0 {
		return errors.New("-rows, -tx-rows, -rate and -latency-conns must be positive, -repeat not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	bin, err := filepath.Abs(o.cdcdBin)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("cdcd binary %s not found: run `make build` first (or pass -cdcd)", bin)
	}
	o.cdcdBin = bin
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	started := time.Now()
	stamp := started.Format("20060102-150405")
	logDir := filepath.Join(o.outDir, "run-"+stamp)

	env, err := probeEnv(ctx, o)
	if err != nil {
		return err
	}
	if o.recvlogical == "" {
		o.recvlogical = findRecvlogical(env.pgMajor)
	}
	env.recvlogical = o.recvlogical
	if env.brokerPartitions > leftoverPartitions || len(env.idleSlots) > 0 {
		logf("the stack carries other runs' leftovers: %s", env.stackLeftovers())
	}
	if o.suite {
		return runSuite(ctx, o, env)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}

	var rounds []*roundResult
	for i := 1; i <= o.repeat; i++ {
		if ctx.Err() != nil {
			break
		}
		r := &roundResult{Round: i, BaselineFirst: i%2 == 0}
		rounds = append(rounds, r)
		runRound(ctx, o, env, r, roundSpec{bin: o.cdcdBin, logDir: logDir, baseline: !o.noBaseline, latency: !o.noLatency, verify: o.verify})
	}
	var prof *roundResult
	if o.profile && ctx.Err() == nil {
		prof = &roundResult{Round: len(rounds) + 1, Profiled: true}
		pbin, cleanup, err := buildProfilingBinary(ctx, o.repo, logDir)
		if err != nil {
			prof.Err = fmt.Sprintf("building the profiling binary: %v", err)
		} else {
			runRound(ctx, o, env, prof, roundSpec{bin: pbin, logDir: logDir, profile: true, latency: !o.noLatency})
			cleanup()
		}
	}

	rep := report{opts: o, env: env, started: started, finished: time.Now(), rounds: rounds, profile: prof, logDir: logDir}
	md := rep.markdown()
	path := filepath.Join(o.outDir, "REPORT-"+started.Format("2006-01-02")+".md")
	if _, err := os.Stat(path); err == nil {
		// Several runs a day: keep each report.
		path = filepath.Join(o.outDir, "REPORT-"+started.Format("2006-01-02")+"-"+started.Format("150405")+".md")
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(rep.summary())
	fmt.Printf("\nreport: %s\nlogs:   %s\n", path, logDir)
	var failed []string
	for _, r := range append(rounds, prof) {
		if r != nil && r.Err != "" {
			failed = append(failed, fmt.Sprintf("round %d: %s", r.Round, r.Err))
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d round(s) failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

func positiveInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}
