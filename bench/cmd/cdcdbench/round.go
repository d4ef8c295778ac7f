package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type roundSpec struct {
	bin      string
	logDir   string
	baseline bool
	latency  bool
	verify   bool
	profile  bool
}

type roundResult struct {
	Round         int
	Profiled      bool
	BaselineFirst bool
	Name          string
	Err           string
	Warnings      []string

	Backlog  backlogResult
	Catchup  *catchupResult
	Count    *countResult
	Baseline *baselineResult
	Latency  *latencyResult

	SetupReady   time.Duration // first start: exec -> /readyz 200 (slot creation)
	FinalHWMKB   int64
	FinalCPU     float64
	ShutdownTook time.Duration

	ProfileDir string
	CPUTop     string
	CPUCum     string
	HeapTop    string
	StallDump  string
	LatCPUTop  string
	LatCPUCum  string
	// go tool trace -pprof views of an execution trace taken inside the latency phase
	TraceSched, TraceNet, TraceSync, TraceSyscall string
}

// disturbed lists what happened to the shared stack while the round measured.
func (r *roundResult) disturbed() []string {
	var out []string
	if r.Catchup != nil {
		out = append(out, r.Catchup.Disturbances...)
	}
	if r.Latency != nil {
		out = append(out, r.Latency.Disturbances...)
	}
	return out
}

func (r *roundResult) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Warnings = append(r.Warnings, msg)
	logf("round %d: warning: %s", r.Round, msg)
}

// tick is one second of the catch-up timeline.
type tick struct {
	at           time.Duration
	events       float64
	rate         float64 // events/s over the last interval
	cdcd, wal    float64 // CPU cores (1.0 = one core busy) over the last interval
	kafka, sys   float64
	rssKB        int64
	commitsDelta float64
}

type catchupResult struct {
	Total, Ready, FirstEvent time.Duration
	Events                   float64
	RowsPerSec               float64 // rows / (process start -> all committed)
	SteadyRowsPerSec         float64 // rows / (first committed -> all committed)
	HWMKB, RSSEndKB          int64
	CPU                      float64 // cdcd user+system seconds
	WalsenderCPU, KafkaCPU   float64
	SysBusyCores             float64 // average busy cores of the whole machine
	Txns                     float64
	CommitSecs               float64 // sum of cdcd's flush+commit durations
	Disturbances             []string
	Timeline                 []tick
}

type baselineResult struct {
	Took         time.Duration
	RowsPerSec   float64
	WalsenderCPU float64
	RecvCPU      float64
	SysBusyCores float64
}

type latencyResult struct {
	Rows, Received, Dups int
	WriterTook           time.Duration
	AchievedRate         float64
	Late                 int
	Drain                time.Duration // writer done -> last record received
	// receipt - c (c = clock_timestamp() at insert, before the commit)
	FromInsert quantiles
	// receipt - the writer's commit acknowledgement
	FromAck quantiles
	// commit acknowledgement - c: what the source commit itself took
	SourceCommit quantiles
	// cdcd_end_to_end_latency_seconds (source commit -> Kafka commit), delta over the phase
	Hist           quantiles
	HistCount      float64
	Txns           float64
	CommitMean     time.Duration // mean flush+commit of cdcd's Kafka transactions
	CommitCount    float64
	CDCDCPU        float64
	WalCPU         float64
	SysBusyCores   float64
	DecodeErr      string
	NegativeFromAc int
	Disturbances   []string
}

type quantiles struct {
	P50, P95, P99, Max time.Duration
	N                  int
}

func computeQuantiles(ds []time.Duration) quantiles {
	if len(ds) == 0 {
		return quantiles{P50: -1, P95: -1, P99: -1, Max: -1}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[max(0, min(len(ds)-1, i))]
	}
	return quantiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1], N: len(ds)}
}

const backlogFirstID = 1

func pipelineConfig(o options, name, dsn, httpAddr string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_partitions: %d
schema_registry:
  url: %q
http:
  listen: %q
log:
  level: info
  format: text
shutdown_timeout: 10s
%spipelines:
  - name: %s
    source:
      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [public.%s]
        heartbeat_interval: 1s
        status_interval: 1s
    topics:
      prefix: %s
%s`, o.kafka, o.partitions, o.registry, httpAddr, o.configExtra, name, dsn, name, name, benchTable, name, o.pipelineExtra)
}

// runRound runs one round; failures are recorded in r.Err and everything is cleaned up.
func runRound(ctx context.Context, o options, env *benchEnv, r *roundResult, spec roundSpec) {
	r.Name = safeName(fmt.Sprintf("bench_%s_r%d", time.Now().Format("150405"), r.Round))
	if spec.profile {
		r.Name += "_prof"
	}
	db := "cdcdbench_" + r.Name
	logf("round %d (%s): starting", r.Round, r.Name)
	var d *daemon
	defer func() {
		if d != nil {
			d.kill()
		}
		if o.keep {
			logf("round %d: -keep: leaving database %s, its slots, topic %s.public.%s and its subjects", r.Round, db, r.Name, benchTable)
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
		defer cancel()
		if err := dropDatabase(cctx, o.pgDSN, db); err != nil {
			r.warn("cleanup: %v", err)
		}
		if err := deleteTopicsAndSubjects(cctx, o.kafka, o.registry, []string{r.Name + ".public." + benchTable}); err != nil {
			r.warn("cleanup: %v", err)
		}
	}()
	err := func() error {
		dsn, err := dbDSN(o.pgDSN, db)
		if err != nil {
			return err
		}
		if err := createDatabase(ctx, o.pgDSN, db); err != nil {
			return err
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return err
		}
		cfgPath := filepath.Join(spec.logDir, r.Name+".yaml")
		if err := os.WriteFile(cfgPath, []byte(pipelineConfig(o, r.Name, dsn, httpAddr)+"    snapshot: never\n"), 0o600); err != nil {
			return err
		}
		logPath := filepath.Join(spec.logDir, r.Name+".cdcd.log")
		var denv []string
		for _, kv := range strings.Split(o.cdcdEnv, ",") {
			if kv = strings.TrimSpace(kv); kv != "" {
				denv = append(denv, kv)
			}
		}
		var pprofAddr string
		if spec.profile {
			if pprofAddr, err = freeAddr(); err != nil {
				return err
			}
			denv = append(denv, "CDCD_BENCH_PPROF="+pprofAddr)
		}

		// 1. The slot and the publication: one start until ready, then SIGTERM.
		logf("round %d: creating slot and publication (cdcd start until /readyz, then SIGTERM)", r.Round)
		d, err = startDaemon(spec.bin, cfgPath, httpAddr, logPath, denv)
		if err != nil {
			return err
		}
		// Creating a logical slot waits for every transaction running in the cluster to end
		// (other sessions on a shared server can make that slow).
		readyAfter, err := d.waitReady(ctx, 5*time.Minute)
		if err != nil {
			return fmt.Errorf("first start: %w", err)
		}
		r.SetupReady = readyAfter
		if _, err := d.stop(30 * time.Second); err != nil {
			return fmt.Errorf("first stop: %w", err)
		}
		d = nil
		recvSlot := r.Name + "_recv"
		if spec.baseline {
			if err := createRecvSlot(ctx, dsn, recvSlot); err != nil {
				return err
			}
		}

		// 2. The backlog, with cdcd stopped.
		logf("round %d: writing %d rows in transactions of %d", r.Round, o.rows, o.txRows)
		r.Backlog, err = writeBacklog(ctx, dsn, backlogFirstID, o.rows, o.txRows)
		if err != nil {
			return err
		}
		logf("round %d: backlog written in %s (%.0f rows/s, %.1f MiB of WAL, end %s)", r.Round, r.Backlog.took.Round(time.Millisecond),
			float64(o.rows)/r.Backlog.took.Seconds(), float64(r.Backlog.walBytes)/(1<<20), r.Backlog.endLSN)

		runBaseline := func() error {
			logf("round %d: baseline: pg_recvlogical draining the backlog", r.Round)
			b, err := runRecvlogical(ctx, env.recvlogical, dsn, recvSlot, r.Name, r.Backlog.endLSN, o.rows)
			if err != nil {
				return err
			}
			r.Baseline = b
			logf("round %d: baseline: %s (%.0f rows/s; walsender %.2f s CPU, pg_recvlogical %.2f s CPU)", r.Round,
				b.Took.Round(time.Millisecond), b.RowsPerSec, b.WalsenderCPU, b.RecvCPU)
			// Free the WAL the baseline slot holds.
			return dropSlot(ctx, dsn, recvSlot)
		}
		if spec.baseline && r.BaselineFirst {
			if err := runBaseline(); err != nil {
				return err
			}
		}

		// 3. Catch-up.
		logf("round %d: catch-up: starting cdcd", r.Round)
		d, err = startDaemon(spec.bin, cfgPath, httpAddr, logPath, denv)
		if err != nil {
			return err
		}
		var onStall func()
		if spec.profile {
			// Where does cdcd wait before its first commit? A goroutine dump tells.
			onStall = func() {
				path := filepath.Join(spec.logDir, r.Name+".stall-goroutines.txt")
				if err := fetchTo(ctx, "http://"+pprofAddr+"/debug/pprof/goroutine?debug=1", path, 10*time.Second); err != nil {
					r.warn("goroutine dump: %v", err)
					return
				}
				r.StallDump = cdcdStacks(path)
			}
		}
		c, err := measureCatchup(ctx, o, d, dsn, r.Name, float64(o.rows), onStall)
		if c != nil {
			r.Catchup = c
		}
		if err != nil {
			return err
		}
		logf("round %d: catch-up: %d rows in %s = %.0f rows/s (steady %.0f rows/s); cdcd %.1f CPU s, peak RSS %.0f MiB", r.Round, o.rows,
			c.Total.Round(time.Millisecond), c.RowsPerSec, c.SteadyRowsPerSec, c.CPU, float64(c.HWMKB)/1024)
		if spec.profile {
			r.ProfileDir = spec.logDir
			cpu := filepath.Join(spec.logDir, r.Name+".cpu.pprof")
			heap := filepath.Join(spec.logDir, r.Name+".heap.pprof")
			if err := fetchTo(ctx, "http://"+pprofAddr+"/bench/cpu/stop", cpu, 30*time.Second); err != nil {
				r.warn("CPU profile: %v", err)
			} else {
				r.CPUTop = pprofTop(ctx, cpu)
				r.CPUCum = pprofTop(ctx, cpu, "-cum")
			}
			if err := fetchTo(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", heap, 30*time.Second); err != nil {
				r.warn("heap profile: %v", err)
			} else {
				r.HeapTop = pprofTop(ctx, heap, "-sample_index=inuse_space")
			}
		}
		if spec.verify {
			logf("round %d: verifying the topic read_committed", r.Round)
			cr, err := countTopic(ctx, o.kafka, r.Name+".public."+benchTable, backlogFirstID, o.rows, 3*time.Minute, 2*time.Second)
			r.Count = &cr
			if err != nil {
				return fmt.Errorf("verifying the topic: %w", err)
			}
			if cr.duplicates > 0 || cr.outside > 0 {
				r.warn("topic holds %d duplicate(s) and %d unexpected record(s) besides the %d expected", cr.duplicates, cr.outside, cr.unique)
			}
			logf("round %d: topic holds %d records (%d distinct ids, %d duplicates), read in %s", r.Round, cr.records, cr.unique, cr.duplicates, cr.took.Round(time.Millisecond))
		}
		if spec.baseline && !r.BaselineFirst {
			if err := runBaseline(); err != nil {
				return err
			}
		}

		// 4. Latency, with cdcd caught up.
		if spec.latency {
			if spec.profile {
				if err := fetchTo(ctx, "http://"+pprofAddr+"/bench/cpu/start", os.DevNull, 10*time.Second); err != nil {
					r.warn("CPU profile of the latency phase: %v", err)
				}
			}
			var traced chan struct{}
			if spec.profile {
				// An execution trace of the middle of the phase: where goroutines wait (for the
				// CPU, the network, each other) explains a latency tail that a CPU profile does not.
				traced = make(chan struct{})
				go func() {
					defer close(traced)
					secs := max(1, int(o.latDur.Seconds())-4)
					select {
					case <-time.After(2 * time.Second):
					case <-ctx.Done():
						return
					}
					path := filepath.Join(spec.logDir, r.Name+".latency.trace")
					if err := fetchTo(ctx, fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%d", pprofAddr, secs), path, time.Duration(secs+30)*time.Second); err != nil {
						r.warn("execution trace of the latency phase: %v", err)
						return
					}
					r.TraceSched, r.TraceNet = traceView(ctx, path, "sched"), traceView(ctx, path, "net")
					r.TraceSync, r.TraceSyscall = traceView(ctx, path, "sync"), traceView(ctx, path, "syscall")
				}()
			}
			lr, err := measureLatency(ctx, o, d, dsn, r.Name)
			if traced != nil {
				<-traced
			}
			if spec.profile {
				cpu := filepath.Join(spec.logDir, r.Name+".latency.cpu.pprof")
				if err := fetchTo(ctx, "http://"+pprofAddr+"/bench/cpu/stop", cpu, 30*time.Second); err != nil {
					r.warn("CPU profile of the latency phase: %v", err)
				} else {
					r.LatCPUTop = pprofTop(ctx, cpu)
					r.LatCPUCum = pprofTop(ctx, cpu, "-cum")
				}
			}
			if lr != nil {
				r.Latency = lr
			}
			if err != nil {
				return fmt.Errorf("latency phase: %w", err)
			}
		}

		if v, err := procStatusKB(d.pid(), "VmHWM"); err == nil {
			r.FinalHWMKB = v
		}
		if v, err := procCPU(d.pid()); err == nil {
			r.FinalCPU = v
		}
		took, err := d.stop(30 * time.Second)
		r.ShutdownTook = took
		d = nil
		if err != nil {
			r.warn("%v", err)
		}
		return nil
	}()
	if err != nil {
		r.Err = err.Error()
		logf("round %d: FAILED: %v", r.Round, err)
	}
}

func dropSlot(ctx context.Context, dsn, slot string) error {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for i := 0; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = c.Exec(cctx, "SELECT pg_drop_replication_slot($1)", slot)
		cancel()
		if err == nil || i >= 50 || !strings.Contains(err.Error(), "is active") {
			break
		}
		time.Sleep(100 * time.Millisecond) // the walsender is still exiting
	}
	if err != nil {
		return fmt.Errorf("dropping slot %s: %w", slot, err)
	}
	return nil
}

// measureCatchup samples cdcd until it committed want events.
// onStall, if set, is called once when nothing is committed 1.5 s after the pipeline is ready.
func measureCatchup(ctx context.Context, o options, d *daemon, dsn, name string, want float64, onStall func()) (*catchupResult, error) {
	admin, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.Background())
	res := &catchupResult{}
	match := map[string]string{"pipeline": name}
	var cdcdM, walM, kafkaM cpuMeter
	cdcdM.attachNew(d.pid())
	kafkaM.attach(findProcess("kafka.Kafka"))
	sysB0, sysT0 := sysCPU()
	deadline := d.started.Add(o.catchupTimeout)
	var (
		lastTick    time.Time = d.started
		lastEvents  float64
		lastCommits float64
		lastCDCD    float64
		lastWal     float64
		lastKafka   = kafkaM.first
		lastSysB    = sysB0
		lastSysT    = sysT0
		lastErr     error
	)
	for {
		if !d.alive() {
			return res, d.exitedErr()
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("catch-up: cdcd committed %.0f of %.0f events within -catchup-timeout %s (last scrape error: %v); last log lines:\n%s",
				lastEvents, want, o.catchupTimeout, lastErr, tail(d.logPath, 10))
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		ms, err := d.scrape(ctx)
		now := time.Now()
		if err != nil {
			lastErr = err
		} else {
			ev := ms.sum("cdcd_events_published_total", match)
			if res.Ready == 0 && ms.sum("cdcd_pipeline_ready", match) == 1 {
				res.Ready = now.Sub(d.started)
			}
			if res.FirstEvent == 0 && ev > 0 {
				res.FirstEvent = now.Sub(d.started)
			}
			if onStall != nil && ev == 0 && res.Ready > 0 && now.Sub(d.started) > res.Ready+1500*time.Millisecond {
				onStall()
				onStall = nil
			}
			if walM.pid == 0 {
				walM.attachNew(slotActivePID(ctx, admin, name))
			}
			cdcdM.read()
			walM.read()
			if kafkaM.gone() {
				old := kafkaM.pid
				kafkaM.switchTo(findProcess("kafka.Kafka"))
				res.Disturbances = append(res.Disturbances, fmt.Sprintf("the Kafka broker process restarted during catch-up (pid %d → %d, noticed %.1f s after cdcd started)", old, kafkaM.pid, now.Sub(d.started).Seconds()))
			}
			kafkaM.read()
			commits := ms.sum("cdcd_kafka_transactions_total", map[string]string{"pipeline": name, "outcome": "commit"})
			if now.Sub(lastTick) >= time.Second || ev >= want {
				dt := now.Sub(lastTick).Seconds()
				sb, st := sysCPU()
				t := tick{at: now.Sub(d.started), events: ev, rate: (ev - lastEvents) / dt,
					cdcd: (cdcdM.last - lastCDCD) / dt, wal: (walM.last - lastWal) / dt, kafka: (kafkaM.last - lastKafka) / dt,
					commitsDelta: commits - lastCommits}
				if st > lastSysT {
					t.sys = float64(env2cores(sb-lastSysB, st-lastSysT))
				}
				t.rssKB, _ = procStatusKB(d.pid(), "VmRSS")
				res.Timeline = append(res.Timeline, t)
				lastTick, lastEvents, lastCommits, lastCDCD, lastWal, lastKafka, lastSysB, lastSysT = now, ev, commits, cdcdM.last, walM.last, kafkaM.last, sb, st
			}
			if ev >= want {
				res.Total = now.Sub(d.started)
				res.Events = ev
				res.Txns = commits
				res.CommitSecs = ms.histogram("cdcd_kafka_transaction_commit_duration_seconds", match).sum
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.RowsPerSec = want / res.Total.Seconds()
	if span := res.Total - res.FirstEvent; span > 0 {
		res.SteadyRowsPerSec = want / span.Seconds()
	}
	res.HWMKB, _ = procStatusKB(d.pid(), "VmHWM")
	res.RSSEndKB, _ = procStatusKB(d.pid(), "VmRSS")
	cdcdM.read()
	walM.read()
	kafkaM.read()
	res.CPU, res.WalsenderCPU, res.KafkaCPU = cdcdM.used(), walM.used(), kafkaM.used()
	if sb, st := sysCPU(); st > sysT0 {
		res.SysBusyCores = env2cores(sb-sysB0, st-sysT0)
	}
	return res, nil
}

// env2cores converts busy/total jiffies of all CPUs into average busy cores.
func env2cores(busy, total uint64) float64 {
	return float64(busy) / float64(total) * float64(numCPU())
}

// runRecvlogical drains slot to /dev/null up to endLSN.
func runRecvlogical(ctx context.Context, bin, dsn, slot, publication, endLSN string, rows int) (*baselineResult, error) {
	admin, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.Background())
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "-d", dsn, "--slot", slot, "--start", "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+publication,
		"--endpos", endLSN, "-f", "/dev/null")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	sysB0, sysT0 := sysCPU()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var walM cpuMeter
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case err := <-done:
			took := time.Since(t0)
			walM.read()
			if err != nil {
				return nil, fmt.Errorf("pg_recvlogical: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
			b := &baselineResult{Took: took, RowsPerSec: float64(rows) / took.Seconds(), WalsenderCPU: walM.used()}
			if ps := cmd.ProcessState; ps != nil {
				b.RecvCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
			}
			if sb, st := sysCPU(); st > sysT0 {
				b.SysBusyCores = env2cores(sb-sysB0, st-sysT0)
			}
			return b, nil
		case <-tk.C:
			if walM.pid == 0 {
				walM.attachNew(slotActivePID(cctx, admin, slot))
			}
			walM.read()
		}
	}
}

// measureLatency runs the paced writer against the caught-up pipeline.
func measureLatency(ctx context.Context, o options, d *daemon, dsn, name string) (*latencyResult, error) {
	match := map[string]string{"pipeline": name}
	firstID := int64(backlogFirstID + o.rows + 1_000_000)
	w := &latencyWriter{dsn: dsn, firstID: firstID, rate: o.rate, dur: o.latDur, conns: o.latConns, txRows: o.latTxRows}
	n := w.total()
	logf("latency: %d single-row transactions at %d/s over %d connections, cdcd caught up", n, o.rate, o.latConns)
	lc, err := newLatencyConsumer(ctx, o.kafka, o.registry, name+".public."+benchTable, firstID, n, formatAvro)
	if err != nil {
		return nil, err
	}
	before, err := d.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("scraping /metrics: %w", err)
	}
	admin, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.Background())
	var cdcdM, walM cpuMeter
	kafkaPID := findProcess("kafka.Kafka")
	cdcdM.attach(d.pid())
	walM.attach(slotActivePID(ctx, admin, name))
	sysB0, sysT0 := sysCPU()

	cctx, cancel := context.WithTimeout(ctx, o.latDur+10*time.Minute)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- lc.run(cctx) }()
	time.Sleep(500 * time.Millisecond) // let the consumer connect and issue its first fetch

	res := &latencyResult{Rows: n}
	werr := w.run(ctx)
	res.WriterTook = w.finished.Sub(w.started)
	res.AchievedRate = float64(w.sent) / res.WriterTook.Seconds()
	res.Late = w.late
	if werr != nil {
		cancel()
		<-consumed
		return res, werr
	}
	// Wait for the records while they keep coming: give up after 30 s without progress (or
	// when the consumer's context ends).
	var cerr error
	progress, lastGot := time.Now(), lc.received()
	tk := time.NewTicker(250 * time.Millisecond)
wait:
	for {
		select {
		case cerr = <-consumed:
			break wait
		case <-tk.C:
			if got := lc.received(); got != lastGot {
				progress, lastGot = time.Now(), got
			} else if time.Since(progress) > 30*time.Second {
				cancel()
				cerr = <-consumed
				if cerr == nil {
					cerr = fmt.Errorf("only %d of %d records arrived; none for 30 s", lc.received(), n)
				}
				break wait
			}
		}
	}
	tk.Stop()
	cdcdM.read()
	walM.read()
	res.CDCDCPU, res.WalCPU = cdcdM.used(), walM.used()
	if now := findProcess("kafka.Kafka"); now != kafkaPID {
		res.Disturbances = append(res.Disturbances, fmt.Sprintf("the Kafka broker process changed during the latency phase (pid %d → %d)", kafkaPID, now))
	}
	if sb, st := sysCPU(); st > sysT0 {
		res.SysBusyCores = env2cores(sb-sysB0, st-sysT0)
	}
	after, err := d.scrape(ctx)
	if err == nil {
		h := after.histogram("cdcd_end_to_end_latency_seconds", match).sub(before.histogram("cdcd_end_to_end_latency_seconds", match))
		sec := func(q float64) time.Duration { return time.Duration(h.quantile(q) * float64(time.Second)) }
		res.Hist = quantiles{P50: sec(0.5), P95: sec(0.95), P99: sec(0.99), N: int(h.count)}
		if len(h.bounds) > 0 {
			res.Hist.Max = -1
		}
		res.HistCount = h.count
		commit := map[string]string{"pipeline": name, "outcome": "commit"}
		res.Txns = after.sum("cdcd_kafka_transactions_total", commit) - before.sum("cdcd_kafka_transactions_total", commit)
		cd := after.histogram("cdcd_kafka_transaction_commit_duration_seconds", match).sub(before.histogram("cdcd_kafka_transaction_commit_duration_seconds", match))
		if cd.count > 0 {
			res.CommitCount = cd.count
			res.CommitMean = time.Duration(cd.sum / cd.count * float64(time.Second))
		}
	}

	lc.mu.Lock()
	defer lc.mu.Unlock()
	res.Received, res.Dups = lc.got, lc.dups
	if lc.decodeEr != nil {
		res.DecodeErr = lc.decodeEr.Error()
	}
	var fromIns, fromAck, srcCommit []time.Duration
	var lastRecv int64
	for i := 0; i < n; i++ {
		rv := lc.recv[i]
		if rv == 0 {
			continue
		}
		lastRecv = max(lastRecv, rv)
		if lc.srcTime[i] != 0 {
			fromIns = append(fromIns, time.Duration(rv-lc.srcTime[i]))
		}
		if a := w.ack[i]; a != 0 {
			if rv < a {
				res.NegativeFromAc++ // received before the writer saw its commit acknowledged
			}
			fromAck = append(fromAck, time.Duration(rv-a))
			if lc.srcTime[i] != 0 {
				srcCommit = append(srcCommit, time.Duration(a-lc.srcTime[i]))
			}
		}
	}
	if lastRecv > 0 {
		res.Drain = time.Duration(lastRecv - w.finished.UnixNano())
	}
	res.FromInsert, res.FromAck, res.SourceCommit = computeQuantiles(fromIns), computeQuantiles(fromAck), computeQuantiles(srcCommit)
	logf("latency: received %d/%d; receipt - c: p50 %s p95 %s p99 %s; cdcd histogram p99 %s", res.Received, n,
		ms(res.FromInsert.P50), ms(res.FromInsert.P95), ms(res.FromInsert.P99), ms(res.Hist.P99))
	if cerr != nil {
		return res, cerr
	}
	if res.Received < n {
		return res, fmt.Errorf("only %d of %d latency records arrived", res.Received, n)
	}
	return res, nil
}

func ms(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
