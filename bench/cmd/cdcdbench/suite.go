package main

// The comparison suite (-suite): cdcd against Debezium (Kafka Connect) and against the
// source's own limit, scenario by scenario, on the same stack in one run. Every tool runs
// alone while it is measured; each tool gets its own database, slot, publication and topics.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// toolResult is one tool's numbers in one scenario (or why there are none).
type toolResult struct {
	Tool   string
	Status string // "" = measured; otherwise why not ("cdcd part not built yet: ...", "failed: ...")
	Rows   int
	Took   time.Duration // the scenario's measured interval
	// bytes the consumer read (keys + values, the tool's own format)
	Bytes  int64
	Lat    *quantiles // receipt - c (c = clock_timestamp() at the insert)
	LatAck *quantiles // receipt - the writer's commit acknowledgement
	// Commit: the writer's own part of Lat, from the insert's clock_timestamp() to the
	// acknowledgement of its transaction's commit (received rows only). No pipeline can see a
	// row before its commit, so this is in every pipeline's latency, and it grows with the
	// load PostgreSQL and the machine are under during the phase.
	Commit *quantiles
	// Beside: a bare slot consumer's latency measured beside the tool, on the same rows at the
	// same time (-probe-beside): PostgreSQL's own part of the tool's latency under that load.
	Beside    *quantiles
	Achieved  float64 // steady scenarios: rows/s the writer achieved
	PeakRSSKB int64
	CPU       float64 // seconds, user+system, of the tool's process (all threads)
	// Machine: where the machine's CPU went during the phase (measureCatchupOf), nil if not
	// measured.
	Machine *machineCPU
	Notes   []string
	// Profile: a CPU profile of the tool's process over the phase (the profiling pass only).
	Profile string
}

func (r *toolResult) ok() bool { return r != nil && r.Status == "" }

// setLatencies sets r's latency quantiles from per-row receipt times (index = id - firstID, 0 =
// not received): from the insert's clock_timestamp() (srcTime) and from the writer's commit
// acknowledgement (ack). All in nanoseconds since the Unix epoch.
func (r *toolResult) setLatencies(recv, srcTime, ack []int64) {
	var fromIns, fromAck, commit []time.Duration
	for i, rv := range recv {
		if rv == 0 {
			continue
		}
		if srcTime[i] != 0 {
			fromIns = append(fromIns, time.Duration(rv-srcTime[i]))
		}
		if a := ack[i]; a != 0 {
			fromAck = append(fromAck, time.Duration(rv-a))
			if srcTime[i] != 0 {
				commit = append(commit, time.Duration(a-srcTime[i]))
			}
		}
	}
	q1, q2, q3 := computeQuantiles(fromIns), computeQuantiles(fromAck), computeQuantiles(commit)
	r.Lat, r.LatAck, r.Commit = &q1, &q2, &q3
}

// writerNotes say how the steady phase's writer fared: its transactions that started late, and
// how its latency splits at the commit acknowledgement (set by setLatencies). Every steady
// phase, a tool's or a bare pipeline's, notes them, so that two phases' tails can be compared
// knowing whether PostgreSQL committed as fast in both.
func (r *toolResult) writerNotes(late int) []string {
	var notes []string
	if late > 0 {
		notes = append(notes, fmt.Sprintf("writer: %d transaction(s) started >10 ms behind schedule", late))
	}
	if r.hasCommitSplit() {
		c, a := r.Commit, r.LatAck
		notes = append(notes, fmt.Sprintf("latency split at the writer's commit acknowledgement: insert to acknowledgement p50 %s, p99 %s (the writer and PostgreSQL, in every pipeline's latency); acknowledgement to receipt p50 %s, p99 %s",
			ms(c.P50), ms(c.P99), ms(a.P50), ms(a.P99)))
	}
	return notes
}

// hasCommitSplit reports whether r's latency is split at the writer's commit acknowledgement
// (rows on both sides of it).
func (r *toolResult) hasCommitSplit() bool {
	return r != nil && r.Commit != nil && r.Commit.N > 0 && r.LatAck != nil && r.LatAck.N > 0
}

func (r *toolResult) rowsPerSec() float64 {
	if !r.ok() || r.Took <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Took.Seconds()
}

func (r *toolResult) mbPerSec() float64 {
	if !r.ok() || r.Took <= 0 || r.Bytes == 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Took.Seconds()
}

func (r *toolResult) cpuPerMRows() float64 {
	if !r.ok() || r.Rows == 0 || r.CPU < 0 {
		return -1
	}
	return r.CPU / float64(r.Rows) * 1e6
}

// scenarioResult is one scenario: cdcd, Debezium and the limit.
type scenarioResult struct {
	ID       string // "1", "2-5000x1", ...
	Title    string
	Kind     string // throughput | latency | bigtx | window | fleet
	CDCD     *toolResult
	Debezium *toolResult
	Limit    *toolResult
	// Bare: scenario 2's bare slot consumer followed by a bare Kafka producer, transactional
	// and not (measureBare): what Kafka adds at that load, with and without transactions.
	Bare []*toolResult
	// Also: further runs of cdcd on a variant of the scenario's table, shown in the results
	// table under the others (7: the same rows under a composite key; 1: cdcd and
	// pg_recvlogical without TLS).
	Also []*toolResult
	// KafkaLimit: scenario 3's bare transactional producer, rows/s (0: not measured).
	KafkaLimit float64
	Notes      []string
}

// suite is everything one -suite run measured.
type suite struct {
	o         options
	env       *benchEnv
	paths     *toolPaths
	dir       string
	stamp     string
	started   time.Time
	finished  time.Time
	scenarios []*scenarioResult
	settings  map[string][]string // tool label -> settings (the last run's)
	cleanups  []func(context.Context)
	stopped   string                 // why the suite ended early ("" = it ran to the end)
	warmups   map[string]*toolWarmup // tool -> its warm-up before the steady phases
	// catchupWarmups: tool -> its warm-up before the catch-up
	catchupWarmups map[string]*toolWarmup
	// profiles: cdcd's CPU profiles of the CPU goals' phases (goalprofile.go); profileErr: why
	// there are none
	profiles   []*goalProfile
	profileErr string
}

func (s *suite) has(id string) bool { return s.scenario(id) != nil }

// scenario is the result of scenario id, nil if it has none.
func (s *suite) scenario(id string) *scenarioResult {
	for _, sc := range s.scenarios {
		if sc.ID == id {
			return sc
		}
	}
	return nil
}

// also is the result of sc.Also whose tool is label, nil when there is none.
func (sc *scenarioResult) also(label string) *toolResult {
	for _, r := range sc.Also {
		if r != nil && r.Tool == label {
			return r
		}
	}
	return nil
}

func (s *suite) add(sc *scenarioResult) *scenarioResult {
	s.scenarios = append(s.scenarios, sc)
	return sc
}

func (s *suite) noteSettings(t streamTool, scenario string) {
	key := t.label() + " (" + scenario + ")"
	s.settings[key] = t.settings()
}

func failed(tool string, err error) *toolResult {
	return &toolResult{Tool: tool, Status: "failed: " + err.Error()}
}

func notBuilt(tool, why string) *toolResult {
	return &toolResult{Tool: tool, Status: "cdcd part not built yet: " + why}
}

// runCleanups undoes what the suite's parts registered, last first, even after ctx ended.
func (s *suite) runCleanups(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i](cctx)
	}
}

func runSuite(ctx context.Context, o options, env *benchEnv) error {
	ctx, cancel := context.WithTimeout(ctx, o.suiteTimeout)
	defer cancel()
	s := &suite{o: o, env: env, started: time.Now(), settings: map[string][]string{}, warmups: map[string]*toolWarmup{}, catchupWarmups: map[string]*toolWarmup{}}
	s.stamp = s.started.Format("150405")
	s.dir = filepath.Join(o.outDir, "suite-"+s.started.Format("20060102-150405"))
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	defer s.runCleanups(ctx)
	var err error
	if !o.noDebezium {
		if s.paths, err = installTools(ctx, o.repo); err != nil {
			return err
		}
	}
	want := func(id string) bool { return o.scenarios == "" || strings.Contains(","+o.scenarios+",", ","+id+",") }
	if want("1") || want("2") || want("4") {
		s.pgStreaming(ctx, want)
	}
	if want("3") && ctx.Err() == nil {
		s.snapshot(ctx)
	}
	if want("5") && ctx.Err() == nil {
		s.mysql(ctx)
	}
	if want("6") && ctx.Err() == nil {
		s.window(ctx)
		s.windowRestore(ctx)
	}
	if want("7") && ctx.Err() == nil {
		s.mysqlSnapshot(ctx)
	}
	if want("8") && ctx.Err() == nil {
		s.fleet(ctx)
	}
	if o.goalProfiles && ctx.Err() == nil {
		s.profileGoals(ctx, want)
	}
	s.finished = time.Now()
	if ctx.Err() != nil {
		s.stopped = fmt.Sprintf("The suite stopped early (-suite-timeout %s, or interrupted): the parts it did not measure say so.", o.suiteTimeout)
		for _, id := range []string{"3", "5", "6", "7", "8"} {
			if want(id) && !s.has(id) {
				s.add(&scenarioResult{ID: id, Title: "not run", Kind: "throughput", CDCD: &toolResult{Tool: "cdcd", Status: "not run: the suite reached -suite-timeout " + o.suiteTimeout.String()}})
			}
		}
	}
	return s.write()
}

// pgStreaming runs scenarios 1 (catch-up), 2 (steady rates) and 4 (one big transaction) for
// each tool in its own database, one tool at a time.
func (s *suite) pgStreaming(ctx context.Context, want func(string) bool) {
	o := s.o
	sc1 := &scenarioResult{ID: "1", Kind: "throughput", Title: fmt.Sprintf("PostgreSQL backlog catch-up, %s inserts in %d-row transactions", human(o.rows), o.txRows)}
	if want("1") {
		s.add(sc1)
	}
	type steadyKey struct{ rate, txRows int }
	steady := map[steadyKey]*scenarioResult{}
	if want("2") {
		for _, txRows := range o.txShapes {
			for _, rate := range o.rates {
				k := steadyKey{rate, txRows}
				steady[k] = s.add(&scenarioResult{ID: fmt.Sprintf("2-%dx%d", rate, txRows), Kind: "latency",
					Title: fmt.Sprintf("steady %s rows/s in %s", human(rate), txShape(txRows))})
			}
		}
	}
	sc4 := &scenarioResult{ID: "4", Kind: "bigtx", Title: fmt.Sprintf("one %s-row transaction (commit to last record)", human(o.bigTxRows))}
	if want("4") {
		s.add(sc4)
	}
	tools := []string{"cdcd", "Debezium"}
	if o.noDebezium {
		tools = tools[:1]
	}
	if want("2") && !o.noBaseline {
		defer s.steadyLimit(ctx, func(yield func(rate, txRows int, sc *scenarioResult)) {
			for _, txRows := range o.txShapes {
				for _, rate := range o.rates {
					yield(rate, txRows, steady[steadyKey{rate, txRows}])
				}
			}
		})
	}
	for _, tool := range tools {
		if ctx.Err() != nil {
			return
		}
		name := safeName(fmt.Sprintf("bench_%s_%s", s.stamp, strings.ToLower(tool)))
		db := "cdcdbench_" + name
		res := func(sc *scenarioResult, r *toolResult) {
			if tool == "cdcd" {
				sc.CDCD = r
			} else {
				sc.Debezium = r
			}
		}
		fail := func(err error) {
			logf("%s: FAILED: %v", tool, err)
			for _, sc := range append([]*scenarioResult{sc1, sc4}, mapValues(steady)...) {
				if tool == "cdcd" && sc.CDCD == nil || tool == "Debezium" && sc.Debezium == nil {
					res(sc, failed(tool, err))
				}
			}
		}
		if err := createDatabase(ctx, o.pgDSN, db); err != nil {
			fail(err)
			continue
		}
		t, err := s.pgTool(tool, name, db, "never")
		if err != nil {
			fail(err)
			s.cleanupPG(ctx, db, nil)
			continue
		}
		var extraTopics []string
		err = func() error {
			defer t.stop()
			logf("%s: creating the slot and publication (start until ready, then stop)", tool)
			if err := t.start(ctx); err != nil {
				return err
			}
			if err := t.waitReady(ctx); err != nil {
				return fmt.Errorf("first start: %w", err)
			}
			if want("1") && o.catchupWarmup > 0 {
				if err := s.warmCatchup(ctx, tool, t, db); err != nil {
					return err
				}
			}
			t.stop()
			dsn, _ := dbDSN(o.pgDSN, db)
			recvSlot := name + "_recv"
			baseline := tool == "cdcd" && !o.noBaseline && want("1")
			if baseline {
				if err := createRecvSlot(ctx, dsn, recvSlot); err != nil {
					return err
				}
			}
			// The same catch-up again over plain connections: cdcd and pg_recvlogical, each
			// on a slot of its own made before the backlog.
			var plain *plainPair
			if tool == "cdcd" && want("1") && !o.noTLSPair {
				p, err := s.preparePlainPair(ctx, name, db, dsn, baseline)
				if err != nil {
					return err
				}
				plain = p
				defer p.tool.stop()
				extraTopics = append(extraTopics, p.tool.topic())
			}
			if want("1") {
				logf("%s: writing the backlog: %d rows in transactions of %d", tool, o.rows, o.txRows)
				bl, err := writeBacklog(ctx, dsn, backlogFirstID, o.rows, o.txRows)
				if err != nil {
					return err
				}
				if baseline {
					logf("limit: pg_recvlogical draining the backlog")
					b, err := runRecvlogical(ctx, s.env.recvlogical, dsn, recvSlot, name, bl.endLSN, o.rows)
					if err != nil {
						sc1.Limit = failed("pg_recvlogical", err)
					} else {
						sc1.Limit = &toolResult{Tool: "pg_recvlogical", Rows: o.rows, Took: b.Took, CPU: b.RecvCPU, PeakRSSKB: -1,
							Notes: []string{fmt.Sprintf("walsender CPU %.1f s; output to /dev/null; proto_version=1", b.WalsenderCPU)}}
					}
					if err := dropSlot(ctx, dsn, recvSlot); err != nil {
						logf("%v", err)
					}
				}
				logf("%s: catch-up of %d rows", tool, o.rows)
				r := measureCatchupOf(ctx, o, t, backlogFirstID, o.rows, o.catchupTimeout)
				res(sc1, r)
				s.noteSettings(t, "PostgreSQL streaming")
				logResult(sc1, r)
				if plain != nil {
					sc1.Also = append(sc1.Also, plain.run(ctx, o, bl.endLSN)...)
				}
				// The backlog's autovacuum and checkpoint would otherwise fall into the steady
				// phases of a tool that caught up fast (and not of one that took a minute):
				// done now, for every tool alike.
				logf("%s: VACUUM ANALYZE and CHECKPOINT after the backlog", tool)
				for _, q := range []string{"VACUUM ANALYZE public." + benchTable, "CHECKPOINT"} {
					if err := execSQL(ctx, dsn, q); err != nil {
						return fmt.Errorf("settling after the backlog: %s: %w", q, err)
					}
				}
			}
			if !t.alive() {
				if err := t.start(ctx); err != nil {
					return err
				}
			}
			if err := t.waitReady(ctx); err != nil {
				return err
			}
			if len(steady) > 0 {
				// The topic exists and the tool has seen rows before the first measured phase
				// (without scenario 1 nothing was published yet).
				logf("%s: warm-up: 1000 rows", tool)
				if _, err := writeBacklog(ctx, dsn, 50_000_000, 1000, 10); err != nil {
					return err
				}
				c := &idCounter{topic: t.topic(), format: t.format(), firstID: 50_000_000, n: 1000}
				if err := runIDCounter(ctx, o.kafka, c, false, 3*time.Minute); err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
			}
			if len(steady) > 0 && o.warmup > 0 {
				var loads []steadyKey // in the phases' order
				for _, txRows := range o.txShapes {
					for _, rate := range o.rates {
						loads = append(loads, steadyKey{rate, txRows})
					}
				}
				logf("%s: warm-up: the steady phases' loads in turn until the broker's JIT settles (at most %s)", tool, o.warmup)
				w, err := warmUntilSettled(ctx, o.warmup, len(loads), func() (float64, bool) { return brokerJIT(ctx, o.kafkaPID) },
					func(ctx context.Context, i int) error {
						l := loads[i%len(loads)]
						wr := &latencyWriter{dsn: dsn, firstID: 60_000_000 + int64(i)*1_000_000, rate: l.rate, dur: warmupChunk, conns: o.latConns, txRows: l.txRows, hardStop: true}
						return warmRound(ctx, o, t, wr)
					})
				if err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
				s.warmups[tool] = w
				logf("%s: warm-up: %s", tool, w)
				// Its rows' autovacuum would otherwise fall into the phases (as the backlog's).
				if err := execSQL(ctx, dsn, "VACUUM ANALYZE public."+benchTable); err != nil {
					return fmt.Errorf("settling after the warm-up: %w", err)
				}
			}
			nextID := int64(100_000_000)
			for _, txRows := range o.txShapes {
				for _, rate := range o.rates {
					sc := steady[steadyKey{rate, txRows}]
					if sc == nil || ctx.Err() != nil {
						continue
					}
					logf("%s: steady %d rows/s in %s for %s", tool, rate, txShape(txRows), o.latDur)
					checkpoint(ctx, dsn)
					r := measureSteady(ctx, o, t, dsn, nextID, rate, txRows)
					nextID += 10_000_000
					res(sc, r)
					s.noteSettings(t, "PostgreSQL streaming")
					logResult(sc, r)
					if !t.alive() {
						return fmt.Errorf("%s exited during the steady phase", tool)
					}
				}
			}
			if want("4") && ctx.Err() == nil {
				// A fresh process, so its peak RSS is this scenario's.
				t.stop()
				if err := t.start(ctx); err != nil {
					return err
				}
				if err := t.waitReady(ctx); err != nil {
					return err
				}
				logf("%s: one transaction of %d rows", tool, o.bigTxRows)
				r := measureBigTx(ctx, o, t, dsn, 1_000_000_000, o.bigTxRows)
				res(sc4, r)
				logResult(sc4, r)
			}
			return nil
		}()
		if err != nil {
			fail(err)
		}
		topics := extraTopics
		if t != nil {
			topics = append(topics, t.topic(), "__debezium-heartbeat."+name)
		}
		s.cleanupPG(ctx, db, topics)
	}
}

// warmCatchup warms the broker up before tool's catch-up (see catchupWarmupRows), then vacuums
// the warm-up's rows and checkpoints, so that neither falls into the measured catch-up.
func (s *suite) warmCatchup(ctx context.Context, tool string, t streamTool, db string) error {
	o := s.o
	dsn, _ := dbDSN(o.pgDSN, db)
	logf("%s: warm-up: rounds of %d rows streamed until the broker's JIT settles (at most %s)", tool, catchupWarmupRows, o.catchupWarmup)
	w, err := warmUntilSettled(ctx, o.catchupWarmup, 2, func() (float64, bool) { return brokerJIT(ctx, o.kafkaPID) },
		func(ctx context.Context, i int) error {
			return catchupWarmRound(ctx, o, t, dsn, 30_000_000+int64(i)*1_000_000, catchupWarmupRows, o.txRows)
		})
	if err != nil {
		return fmt.Errorf("catch-up warm-up: %w", err)
	}
	w.catchup = true
	s.catchupWarmups[tool] = w
	if err := execSQL(ctx, dsn, "VACUUM ANALYZE public."+benchTable); err != nil {
		return fmt.Errorf("settling after the catch-up warm-up: %w", err)
	}
	// The slot's restart_lsn moves only past a running-xacts record the tool has confirmed:
	// until it does, the measured catch-up would decode the warm-up's WAL again first. A
	// row after each checkpoint gives the tool something to confirm (Debezium confirms only
	// the positions of changes it published).
	w.slotLag, err = waitSlotsPast(ctx, dsn, db, time.Minute)
	if err != nil {
		return fmt.Errorf("settling after the catch-up warm-up: %w", err)
	}
	logf("%s: warm-up: %s", tool, w)
	return nil
}

// checkpoint runs a CHECKPOINT before a steady phase: PostgreSQL's timed checkpoint
// (checkpoint_timeout, 5 minutes) then cannot start inside the phase, and every phase starts
// the same distance from one. Until 2026-12-07 one started 52 s into cdcd's phases of a run
// and in none of Debezium's.
func checkpoint(ctx context.Context, dsn string) {
	if err := execSQL(ctx, dsn, "CHECKPOINT"); err != nil {
		logf("CHECKPOINT before the phase: %v", err)
	}
}

// waitSlotsPast checkpoints (which logs the running transactions), and then writes a row of the
// benchmark table, until every replication slot of db has its restart_lsn past the WAL
// position at the call, for at most timeout; it returns how many bytes of WAL the farthest slot
// still had to decode again when it gave up (0: none).
func waitSlotsPast(ctx context.Context, dsn, db string, timeout time.Duration) (int64, error) {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	_, target, err := walPos(ctx, c)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for i := 0; ; i++ {
		if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
			return 0, err
		}
		if i > 0 {
			if _, err := c.Exec(ctx, "INSERT INTO public."+benchTable+" (id, a, b, c) VALUES ($1, 0, 'restart_lsn', clock_timestamp())", 29_000_000+i); err != nil {
				return 0, err
			}
		}
		var behind *int64
		if err := c.QueryRow(ctx, `SELECT max($1::bigint - (restart_lsn - '0/0'::pg_lsn)::bigint) FROM pg_replication_slots WHERE database = $2`, int64(target), db).Scan(&behind); err != nil {
			return 0, err
		}
		if behind == nil || *behind <= 0 {
			if i > 0 {
				logf("the slots of %s passed the warm-up's end after %s", db, time.Since(start).Round(time.Second))
			}
			return 0, nil
		}
		if i == 0 {
			logf("the slots of %s: restart_lsn up to %.1f MB behind the warm-up's end; waiting for it to pass", db, float64(*behind)/1e6)
		}
		if time.Now().After(deadline) {
			return *behind, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// steadyLimit runs the steady phases against a bare consumer of a slot (the probe), alone, in
// a database of its own: the latency PostgreSQL itself gives at each load.
func (s *suite) steadyLimit(ctx context.Context, phases func(yield func(rate, txRows int, sc *scenarioResult))) {
	o := s.o
	name := safeName(fmt.Sprintf("bench_%s_probe", s.stamp))
	db := "cdcdbench_" + name
	defer s.cleanupPG(ctx, db, nil)
	dsn, _ := dbDSN(o.pgDSN, db)
	err := createDatabase(ctx, o.pgDSN, db)
	if err == nil {
		err = execSQL(ctx, dsn, "CREATE PUBLICATION "+name+" FOR TABLE public."+benchTable)
	}
	nextID := int64(100_000_000)
	i := 0
	phases(func(rate, txRows int, sc *scenarioResult) {
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			sc.Limit = failed("bare slot consumer", err)
			return
		}
		logf("limit: bare slot consumer, steady %d rows/s in %s", rate, txShape(txRows))
		checkpoint(ctx, dsn)
		sc.Limit = measureProbe(ctx, o, dsn, fmt.Sprintf("%s_%d", name, i), name, nextID, rate, txRows)
		logResult(sc, sc.Limit)
		nextID += 10_000_000
		i++
		for _, txn := range []bool{true, false} {
			if o.noBare || ctx.Err() != nil {
				break
			}
			logf("limit: bare slot consumer → Kafka (transactional %v), steady %d rows/s in %s", txn, rate, txShape(txRows))
			checkpoint(ctx, dsn)
			r := measureBare(ctx, o, dsn, fmt.Sprintf("%s_%d", name, i), name, nextID, rate, txRows, txn)
			sc.Bare = append(sc.Bare, r)
			logResult(sc, r)
			nextID += 10_000_000
			i++
		}
	})
}

// pgTool prepares cdcd or Debezium for database db (which holds the benchmark table).
func (s *suite) pgTool(tool, name, db, snapshot string) (streamTool, error) {
	dsn, err := dbDSN(s.o.pgDSN, db)
	if err != nil {
		return nil, err
	}
	return s.pgToolAt(tool, name, db, dsn, snapshot)
}

// pgToolAt is pgTool over connection string dsn (of database db).
func (s *suite) pgToolAt(tool, name, db, dsn, snapshot string) (streamTool, error) {
	o := s.o
	if tool == "cdcd" {
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		// Always explicit: cdcd's default is initial, Debezium's streaming runs use no_data.
		cfg := pipelineConfig(o, name, dsn, httpAddr) + "    snapshot: " + snapshot + "\n"
		return newCDCDTool(o, s.dir, name, cfg, httpAddr)
	}
	rest, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if s.o.connectPort != "" {
		rest = "127.0.0.1:" + s.o.connectPort
	}
	mode := "no_data"
	if snapshot == "initial" {
		mode = "initial"
	}
	conn, err := debeziumPGConnector(o, name, db, benchTable, mode)
	if err != nil {
		return nil, err
	}
	offsets := filepath.Join(s.dir, name+".offsets")
	return &dbzTool{paths: s.paths, dir: s.dir, name: name, topic_: name + ".public." + benchTable,
		s: connectSettings{Worker: debeziumWorkerSettings(o, s.paths, rest, offsets), Connector: conn, JVM: jvmArgs(o)}}, nil
}

// jvmArgs are what Kafka's own scripts give a Connect worker (connect-standalone.sh:
// KAFKA_HEAP_OPTS -Xms256M -Xmx2G, KAFKA_JVM_PERFORMANCE_OPTS), with the heap ceiling from
// -connect-heap.
func jvmArgs(o options) []string {
	return []string{"-Xms256m", "-Xmx" + o.connectHeap, "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"}
}

func (s *suite) cleanupPG(ctx context.Context, db string, topics []string) {
	if s.o.keep {
		logf("-keep: leaving database %s and topics %v", db, topics)
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	if err := dropDatabase(cctx, s.o.pgDSN, db); err != nil {
		logf("cleanup: %v", err)
	}
	if err := deleteTopicsAndSubjects(cctx, s.o.kafka, s.o.registry, topics); err != nil {
		logf("cleanup: %v", err)
	}
}

// measureCatchupOf starts t (stopped, with a backlog waiting) and measures until a
// read_committed consumer received every id of [firstID, firstID+n).
func measureCatchupOf(ctx context.Context, o options, t streamTool, firstID int64, n int, timeout time.Duration) *toolResult {
	r := &toolResult{Tool: t.label(), Rows: n}
	c := &idCounter{topic: t.topic(), format: t.format(), firstID: firstID, n: n}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// From the topic's end: a warm-up (warmCatchup) may have published into it already.
	done := startIDCounter(cctx, o.kafka, c, true, timeout)
	t0 := time.Now()
	if err := t.start(ctx); err != nil {
		return failed(t.label(), err)
	}
	w := watchProc(t.pid(), true, t.label())
	var err error
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tk.C:
			if !t.alive() {
				err = fmt.Errorf("%s exited after %d of %d records", t.label(), c.count(), n)
				cancel()
				<-done
				break wait
			}
		}
	}
	r.CPU, r.PeakRSSKB = w.finish()
	if n := w.loadNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	r.Machine = w.machine()
	if err != nil {
		return failed(t.label(), err)
	}
	if ct, ok := t.(*cdcdTool); ok {
		// From process start to the last record: the phase as measured.
		if r.Profile, err = ct.saveProfile(ctx); err != nil {
			r.Profile = ""
			r.Notes = append(r.Notes, fmt.Sprintf("CPU profile: %v", err))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Took = c.last.Sub(t0)
	r.Bytes = c.bytes
	r.Notes = append(r.Notes, fmt.Sprintf("from process start; first record after %.1f s", c.first.Sub(t0).Seconds()))
	if c.dups > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d duplicate record(s) read", c.dups))
	}
	return r
}

// measureSteady writes rate rows/s in txRows-row transactions for -latency-duration while t
// runs caught up, and measures receipt latency by a read_committed consumer.
func measureSteady(ctx context.Context, o options, t streamTool, dsn string, firstID int64, rate, txRows int) *toolResult {
	r := &toolResult{Tool: t.label()}
	wr := &latencyWriter{dsn: dsn, firstID: firstID, rate: rate, dur: o.latDur, conns: o.latConns, txRows: txRows, hardStop: true}
	n := wr.total()
	lc, err := newLatencyConsumer(ctx, o.kafka, o.registry, t.topic(), firstID, n, t.format())
	if err != nil {
		return failed(t.label(), err)
	}
	w := watchProc(t.pid(), false, t.label())
	ct, _ := t.(*cdcdTool)
	var before metricSet
	if ct != nil {
		before, _ = ct.d.scrape(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, o.latDur+5*time.Minute)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- lc.run(cctx) }()
	// -probe-beside: a bare consumer of a second slot on the same publication, under the same
	// load at the same time, splits the latency between PostgreSQL and the tool.
	var probe *slotProbe
	probeDone := make(chan error, 1)
	if o.probeBeside && ct != nil {
		probe = &slotProbe{firstID: firstID, n: n}
		ready := make(chan struct{})
		go func() { probeDone <- probe.run(cctx, dsn, ct.name+"_beside", ct.name, ready) }()
		select {
		case <-ready:
		case err := <-probeDone:
			logf("probe beside cdcd: %v", err)
			probe = nil
		}
	}
	time.Sleep(500 * time.Millisecond) // the consumer's first fetch
	gc0, gcAt := sampleBrokerGC(ctx, o.kafkaPID), time.Now()
	werr := wr.run(ctx)
	var cerr error
	if werr != nil {
		cancel()
		<-consumed
	} else {
		acked := wr.acked()
		progress, lastGot := time.Now(), lc.received()
		tk := time.NewTicker(250 * time.Millisecond)
	wait:
		for {
			select {
			case cerr = <-consumed:
				break wait
			case <-tk.C:
				if got := lc.received(); got >= acked && acked < n {
					// The writer stopped short (hard stop): every acknowledged row arrived.
					cancel()
					cerr = <-consumed
					break wait
				} else if got != lastGot {
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
	}
	r.CPU, r.PeakRSSKB = w.finish()
	r.Machine = w.machine()
	if n := w.loadNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	gcNote := brokerGCNote(gc0, sampleBrokerGC(ctx, o.kafkaPID), time.Since(gcAt))
	var probeNote string
	var beside *quantiles
	if probe != nil {
		cancel()
		if err := <-probeDone; err != nil {
			probeNote = "bare slot consumer beside cdcd: " + err.Error()
		} else {
			var ds []time.Duration
			probe.mu.Lock()
			for i := range probe.recv {
				if probe.recv[i] != 0 && probe.srcTime[i] != 0 {
					ds = append(ds, time.Duration(probe.recv[i]-probe.srcTime[i]))
				}
			}
			probe.mu.Unlock()
			q := computeQuantiles(ds)
			beside = &q
			probeNote = fmt.Sprintf("a bare slot consumer beside cdcd, same rows at the same time (%d received): p50 %s, p95 %s, p99 %s", q.N, ms(q.P50), ms(q.P95), ms(q.P99))
		}
	}
	if werr != nil {
		return failed(t.label(), werr)
	}
	if cerr != nil {
		return failed(t.label(), cerr)
	}
	if probeNote != "" {
		r.Notes = append(r.Notes, probeNote)
	}
	r.Beside = beside
	r.Rows = wr.acked()
	r.Took = wr.finished.Sub(wr.started)
	r.Achieved = float64(r.Rows) / r.Took.Seconds()
	if r.Rows < n {
		r.Notes = append(r.Notes, fmt.Sprintf("the writer reached only %d of %d rows within %s (+5 s): this machine could not sustain %d rows/s in %s", r.Rows, n, o.latDur, rate, txShape(txRows)))
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	r.setLatencies(lc.recv, lc.srcTime, wr.ack)
	if lc.decodeEr != nil {
		r.Notes = append(r.Notes, "decode error: "+lc.decodeEr.Error())
	}
	if lc.dups > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d duplicate record(s)", lc.dups))
	}
	r.Notes = append(r.Notes, r.writerNotes(wr.late)...)
	if ct != nil && before != nil {
		if after, err := ct.d.scrape(ctx); err == nil {
			r.Notes = append(r.Notes, kafkaTxnNote(before, after, ct.name, r.Rows))
		}
	}
	if gcNote != "" {
		r.Notes = append(r.Notes, gcNote)
	}
	return r
}

// slowCommit: a flush+commit longer than this (a bucket bound of cdcd's histogram) is counted.
const slowCommit = 0.064

// kafkaTxnNote summarizes cdcd's Kafka transactions between two scrapes: how many, how big,
// how long a flush+commit took, and cdcd's own end-to-end histogram (source commit -> Kafka
// commit): where the latency tail comes from.
func kafkaTxnNote(before, after metricSet, pipeline string, rows int) string {
	match := map[string]string{"pipeline": pipeline}
	commit := map[string]string{"pipeline": pipeline, "outcome": "commit"}
	txns := after.sum("cdcd_kafka_transactions_total", commit) - before.sum("cdcd_kafka_transactions_total", commit)
	cd := after.histogram("cdcd_kafka_transaction_commit_duration_seconds", match).sub(before.histogram("cdcd_kafka_transaction_commit_duration_seconds", match))
	e2e := after.histogram("cdcd_end_to_end_latency_seconds", match).sub(before.histogram("cdcd_end_to_end_latency_seconds", match))
	msq := func(h histogram, q float64) string {
		v := h.quantile(q)
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f ms", v*1000)
	}
	mean := "n/a"
	if cd.count > 0 {
		mean = fmt.Sprintf("%.1f ms", cd.sum/cd.count*1000)
	}
	per := 0.0
	if txns > 0 {
		per = float64(rows) / txns
	}
	// A few long commits set the rows' tail without moving the commits' p99: count them.
	slow := ""
	if n, longest := cd.over(slowCommit); n > 0 {
		slow = fmt.Sprintf(", %.0f over %.0f ms (the longest ≤ %.0f ms)", n, slowCommit*1000, longest*1000)
		if math.IsInf(longest, 1) {
			slow = fmt.Sprintf(", %.0f over %.0f ms (the longest over the last bucket)", n, slowCommit*1000)
		}
	}
	return fmt.Sprintf("cdcd: %.0f Kafka transactions (%.1f rows each); flush+commit mean %s, p50 %s, p99 %s%s; cdcd_end_to_end_latency_seconds p50 %s, p99 %s",
		txns, per, mean, msq(cd, 0.5), msq(cd, 0.99), slow, msq(e2e, 0.5), msq(e2e, 0.99))
}

// measureBigTx commits n rows in one transaction (COPY) while t runs, and measures from the
// commit to the receipt of the last row.
func measureBigTx(ctx context.Context, o options, t streamTool, dsn string, firstID int64, n int) *toolResult {
	r := &toolResult{Tool: t.label(), Rows: n}
	c := &idCounter{topic: t.topic(), format: t.format(), firstID: firstID, n: n}
	w := watchProc(t.pid(), false, t.label())
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := startIDCounter(cctx, o.kafka, c, true, o.catchupTimeout)
	t0 := time.Now()
	bl, err := writeBacklog(ctx, dsn, firstID, n, n)
	if err != nil {
		cancel()
		<-done
		w.finish()
		return failed(t.label(), err)
	}
	committed := t0.Add(bl.took)
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tk.C:
			if !t.alive() {
				err = fmt.Errorf("%s exited after %d of %d records", t.label(), c.count(), n)
				cancel()
				<-done
				break wait
			}
		}
	}
	r.CPU, r.PeakRSSKB = w.finish()
	if n := w.loadNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	if err != nil {
		return failed(t.label(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Took = c.last.Sub(committed)
	r.Bytes = c.bytes
	r.Notes = append(r.Notes, fmt.Sprintf("the transaction took %.1f s to write; first record %.1f s after its commit; peak RSS since the process started", bl.took.Seconds(), c.first.Sub(committed).Seconds()))
	return r
}

func execSQL(ctx context.Context, dsn, sql string) error {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func logResult(sc *scenarioResult, r *toolResult) {
	if !r.ok() {
		logf("scenario %s, %s: %s", sc.ID, r.Tool, r.Status)
		return
	}
	lat := ""
	if r.Lat != nil {
		lat = fmt.Sprintf(", p50 %s p95 %s p99 %s", ms(r.Lat.P50), ms(r.Lat.P95), ms(r.Lat.P99))
	}
	logf("scenario %s, %s: %d rows in %.2f s = %.0f rows/s, %.1f MB/s%s, peak RSS %.0f MiB, %.1f CPU s", sc.ID, r.Tool, r.Rows,
		r.Took.Seconds(), r.rowsPerSec(), r.mbPerSec(), lat, float64(r.PeakRSSKB)/1024, r.CPU)
}

func txShape(txRows int) string {
	if txRows == 1 {
		return "single-row transactions"
	}
	return fmt.Sprintf("%d-row transactions", txRows)
}

func human(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + "M"
	case n >= 1000 && n%100 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + "k"
	}
	return fmt.Sprint(n)
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// cdcdRefuses runs `cdcd validate` on cfg; a refusal's message is returned ("" = accepted).
func cdcdRefuses(ctx context.Context, o options, dir, name, cfg string) (string, error) {
	path := filepath.Join(dir, name+".validate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	out, err := execOutput(ctx, o.cdcdBin, "validate", "--config", path)
	if err == nil {
		return "", nil
	}
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		return strings.TrimSpace(out), nil
	}
	return "", err
}

var _ = pgx.Identifier{}

func execOutput(ctx context.Context, bin string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, args...).CombinedOutput()
	return string(out), err
}
