package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// windowSize is the tumbling window of scenario 6: small enough that a backlog written in
// tens of seconds spans many windows.
const windowSize = time.Second

// window is scenario 6: cdcd's window stage against the same job as a Kafka Streams program
// (bench/streams/WindowBench.java): ops c, event time source.ts_ms, group by after.a (1,000
// groups), count and sum(after.id) in tumbling windows, final results, exactly once. The input
// is a cdcd change topic of -window-events inserts. Each side is timed from its process start
// until its consumer group has committed the input's end offsets. Beside the rate: cdcd's state
// gauges sampled during its run, each side's changelog read after its run, Kafka Streams'
// state directory (windowstate.go); runSuite then adds the restore (windowRestore).
func (s *suite) window(ctx context.Context) {
	o := s.o
	sc := s.add(&scenarioResult{ID: "6", Kind: "window", Title: fmt.Sprintf("tumbling %s count+sum over %s change events (window stage vs Kafka Streams)", windowSize, human(o.windowEvents))})
	name := safeName(fmt.Sprintf("bench_%s_win", s.stamp))
	db := "cdcdbench_" + name
	job := strings.ReplaceAll(name, "_", "-") + "-job"
	appID := name + "_kstreams"
	input := name + ".public." + benchTable
	topics := []string{input, job + ".out", job + ".out.late", "cdcd-window." + job + ".repartition", "cdcd-window." + job + ".changelog", appID + ".out"}
	defer func() {
		s.cleanupPG(ctx, db, topics)
		s.cleanupWindow(ctx, []string{"cdcd-window-" + job, appID}, appID)
	}()

	// The input: a cdcd pipeline catches up with a backlog.
	fail := func(err error) { sc.CDCD, sc.Debezium = failed("cdcd window stage", err), failed("Kafka Streams", err) }
	if err := createDatabase(ctx, o.pgDSN, db); err != nil {
		fail(err)
		return
	}
	t, err := s.pgTool("cdcd", name, db, "never")
	if err != nil {
		fail(err)
		return
	}
	dsn, _ := dbDSN(o.pgDSN, db)
	err = func() error {
		defer t.stop()
		if err := t.start(ctx); err != nil {
			return err
		}
		if err := t.waitReady(ctx); err != nil {
			return err
		}
		t.stop()
		logf("window: writing %d input rows", o.windowEvents)
		if _, err := writeBacklog(ctx, dsn, backlogFirstID, o.windowEvents, o.txRows); err != nil {
			return err
		}
		logf("window: cdcd publishing the input topic")
		if r := measureCatchupOf(ctx, o, t, backlogFirstID, o.windowEvents, o.catchupTimeout); !r.ok() {
			return fmt.Errorf("producing the input topic: %s", r.Status)
		}
		return nil
	}()
	if err != nil {
		fail(err)
		return
	}
	ends, err := endOffsets(ctx, o.kafka, input)
	if err != nil {
		fail(err)
		return
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("input: %s records over %d partitions, written by cdcd; each side is timed from its process start until its consumer group committed the input's end offsets", human(int(sumOffsets(ends))), len(ends.KOffsets()[input])))

	// cdcd's window stage.
	httpAddr, err := freeAddr()
	if err == nil {
		cfg := windowConfig(o, job, input, httpAddr)
		var wt *cdcdTool
		if wt, err = newCDCDTool(o, s.dir, name+"_window", cfg, httpAddr); err == nil {
			logf("window: cdcd window job")
			var sampler *windowStateSampler
			var peak windowStatePeak
			sc.CDCD = measureGroup(ctx, o, "cdcd window stage", func() (procHandle, error) {
				if err := wt.start(ctx); err != nil {
					return nil, err
				}
				sampler = sampleWindowState(ctx, wt.d, job)
				return wt.d, nil
			}, func() { peak = sampler.finish(); wt.stop() }, "cdcd-window-"+job, input, ends, o.windowEvents)
			if sc.CDCD.ok() {
				sc.CDCD.Notes = append(sc.CDCD.Notes, s.cdcdStateNotes(ctx, peak, job)...)
			}
			s.settings["cdcd window stage"] = wt.settings()
		}
	}
	if err != nil {
		sc.CDCD = failed("cdcd window stage", err)
	}
	logResult(sc, sc.CDCD)

	// Kafka Streams.
	if o.noDebezium || ctx.Err() != nil {
		return
	}
	classes := filepath.Join(s.dir, "streams-classes")
	if err := compileStreams(ctx, o.repo, s.paths, classes); err != nil {
		sc.Debezium = failed("Kafka Streams", err)
		return
	}
	if err := createTopic(ctx, o.kafka, appID+".out", o.partitions); err != nil {
		sc.Debezium = failed("Kafka Streams", err)
		return
	}
	args := []string{o.kafka, strings.TrimRight(o.registry, "/"), input, appID + ".out", appID, fmt.Sprint(windowSize.Milliseconds()), "1"}
	jvm := append(jvmArgs(o), "-Djava.io.tmpdir="+s.dir, "-Dlog4j2.configurationFile="+filepath.Join(s.dir, "streams.log4j2.properties"))
	_ = os.WriteFile(filepath.Join(s.dir, "streams.log4j2.properties"), []byte(fileLog4j(filepath.Join(s.dir, appID+".log"))), 0o644)
	var jp *javaProc
	logf("window: Kafka Streams")
	sc.Debezium = measureGroup(ctx, o, "Kafka Streams", func() (procHandle, error) {
		var err error
		jp, err = startJava(jvm, s.paths.StreamsLibs+"/*:"+classes, "WindowBench", args, filepath.Join(s.dir, appID+".out.log"))
		return jp, err
	}, func() { jp.stop(30 * time.Second) }, appID, input, ends, o.windowEvents)
	if sc.Debezium.ok() {
		sc.Debezium.Notes = append(sc.Debezium.Notes, s.streamsStateNotes(ctx, appID, filepath.Join(s.dir, "kstreams-"+appID))...)
	}
	s.settings["Kafka Streams"] = []string{
		"java " + strings.Join(jvm, " ") + " WindowBench " + strings.Join(args, " "),
		"processing.guarantee=exactly_once_v2, commit.interval.ms=100, num.stream.threads=1, statestore.cache.max.bytes=64 MiB,",
		"consumer max.poll.records=10000, producer linger.ms=5 batch.size=1 MiB; suppress(untilWindowCloses), grace 0",
		"program: bench/streams/WindowBench.java (Avro decoded with org.apache.avro GenericDatumReader, writer schema from the registry)",
	}
	logResult(sc, sc.Debezium)
}

// procHandle is a process the harness started.
type procHandle interface {
	pid() int
	alive() bool
}

// measureGroup starts a consumer of input and measures until group committed ends.
func measureGroup(ctx context.Context, o options, tool string, start func() (procHandle, error), stop func(), group, input string, ends kadm.ListedOffsets, rows int) *toolResult {
	defer stop()
	t0 := time.Now()
	ph, err := start()
	if err != nil {
		return failed(tool, err)
	}
	w := watchProc(ph.pid(), true, tool)
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.kafka))
	if err != nil {
		w.finish()
		return failed(tool, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	want := ends.KOffsets()[input]
	deadline := time.Now().Add(o.catchupTimeout)
	for {
		if !ph.alive() {
			w.finish()
			return failed(tool, fmt.Errorf("%s exited before consuming its input", tool))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			w.finish()
			return failed(tool, fmt.Errorf("group %s did not commit the input's end offsets within %s", group, o.catchupTimeout))
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := adm.FetchOffsets(fctx, group)
		cancel()
		if err == nil {
			done := true
			for p, off := range want {
				c, ok := got.Lookup(input, p)
				// The input is written in Kafka transactions: its last offset is a commit
				// marker, which a consumer's committed position never passes.
				if !ok || c.At < off.EpochOffset().Offset-1 {
					done = false
					break
				}
			}
			if done {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := &toolResult{Tool: tool, Rows: rows, Took: time.Since(t0)}
	r.CPU, r.PeakRSSKB = w.finish()
	if n := w.loadNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	r.Notes = []string{"from process start to the input's end offsets committed by the group"}
	return r
}

func sumOffsets(ends kadm.ListedOffsets) int64 {
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func windowConfig(o options, job, input, httpAddr string) string {
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
windows:
  - name: %s
    input:
      topics: [%s]
      ops: [c]
    time: source.ts_ms
    group_by: [after.a]
    window: {type: tumbling, size: %s, grace: 0s}
    aggregates:
      - {name: n, fn: count}
      - {name: total, fn: sum, field: after.id}
    mode: events
    emit: final
    output: {topic: %s.out}
    commit_interval: 100ms
`, o.kafka, o.partitions, o.registry, httpAddr, job, input, windowSize, job)
}

// compileStreams compiles bench/streams/WindowBench.java against the Kafka Streams jars.
func compileStreams(ctx context.Context, repo string, paths *toolPaths, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	src := filepath.Join(repo, "bench/streams/WindowBench.java")
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(cctx, "javac", "-d", out, "-cp", paths.StreamsLibs+"/*", src).CombinedOutput()
	if err != nil {
		return fmt.Errorf("javac %s: %v: %s", src, err, b)
	}
	return nil
}

func createTopic(ctx context.Context, broker, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := kadm.NewClient(cl).CreateTopic(cctx, int32(partitions), -1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

// kafkaCleanup runs fn with an admin client, for a minute at most and even after ctx ended,
// unless -keep.
func (s *suite) kafkaCleanup(ctx context.Context, fn func(cctx context.Context, cl *kgo.Client, adm *kadm.Client)) {
	if s.o.keep {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.o.kafka))
	if err != nil {
		logf("cleanup: %v", err)
		return
	}
	defer cl.Close()
	fn(cctx, cl, kadm.NewClient(cl))
}

// cleanupWindow deletes the consumer groups and Kafka Streams' internal topics.
func (s *suite) cleanupWindow(ctx context.Context, groups []string, appID string) {
	s.kafkaCleanup(ctx, func(cctx context.Context, cl *kgo.Client, adm *kadm.Client) {
		res, err := adm.DeleteGroups(cctx, groups...)
		if err != nil {
			logf("cleanup: deleting groups %v: %v", groups, err)
		}
		for _, r := range res {
			if errors.Is(r.Err, kerr.NonEmptyGroup) {
				// Kafka Streams' consumer does not leave its group on close: its member would stay
				// until its session times out. Remove it, then delete the group.
				if err = removeMembers(cctx, cl, adm, r.Group); err == nil {
					var again kadm.DeleteGroupResponses
					if again, err = adm.DeleteGroups(cctx, r.Group); err == nil {
						err = again.Error()
					}
				}
				r.Err = err
			}
			if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
				logf("cleanup: deleting group %s: %v", r.Group, r.Err)
			}
		}
		if ts, err := adm.ListTopics(cctx); err == nil {
			var internal []string
			for _, t := range ts.Names() {
				if strings.HasPrefix(t, appID+"-") {
					internal = append(internal, t)
				}
			}
			if len(internal) > 0 {
				if _, err := adm.DeleteTopics(cctx, internal...); err != nil {
					logf("cleanup: deleting %v: %v", internal, err)
				}
			}
		}
	})
}

// removeMembers removes every member of group from it (LeaveGroup on their behalf).
func removeMembers(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group string) error {
	d, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range d[group].Members {
		mi := kmsg.NewLeaveGroupRequestMember()
		mi.MemberID = m.MemberID
		req.Members = append(req.Members, mi)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownMemberID) {
			return fmt.Errorf("removing member %s: %w", m.MemberID, err)
		}
	}
	return nil
}
