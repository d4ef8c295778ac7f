package main

// Scenario 6's state numbers: cdcd's window state sampled from its metrics while it runs, each
// side's changelog read after its run, Kafka Streams' state directory, and the restore of a
// large state (window.BenchmarkRestore, run from the cdcd module).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stateSampleEvery is how often the window job's state gauges are scraped during its run.
const stateSampleEvery = 200 * time.Millisecond

// windowStatePeak is what the samples of a window job's state gauges showed.
type windowStatePeak struct {
	Bytes   float64 // the most cdcd_window_state_bytes seen
	Open    float64 // cdcd_window_open_windows in the same sample
	MaxOpen float64 // the most open windows seen (any sample)
	Samples int     // scrapes that answered
}

// note describes the peak for the report ("" without a sample that held state).
func (p windowStatePeak) note() string {
	if p.Samples == 0 {
		return "state: no scrape of /metrics answered during the run"
	}
	if p.Bytes <= 0 || p.Open <= 0 {
		return fmt.Sprintf("state: no open window in %d samples of /metrics", p.Samples)
	}
	s := fmt.Sprintf("state at its peak (cdcd_window_state_bytes, its changelog form, sampled every %d ms): %s in %s open windows = %.0f bytes per open window",
		stateSampleEvery.Milliseconds(), fmtBytes(int64(p.Bytes)), commas(int64(p.Open)), p.Bytes/p.Open)
	if p.MaxOpen > p.Open {
		s += fmt.Sprintf(" (most open windows in a sample: %s)", commas(int64(p.MaxOpen)))
	}
	return s
}

// windowStateSampler scrapes a cdcd window job's state gauges until finish.
type windowStateSampler struct {
	ctx   context.Context
	d     *daemon
	match map[string]string
	peak  windowStatePeak
	stop  chan struct{}
	done  chan struct{}
}

func sampleWindowState(ctx context.Context, d *daemon, job string) *windowStateSampler {
	w := &windowStateSampler{ctx: ctx, d: d, match: map[string]string{"window_job": job}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(stateSampleEvery)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			w.sample()
		}
	}()
	return w
}

func (w *windowStateSampler) sample() {
	m, err := w.d.scrape(w.ctx)
	if err != nil {
		return // not serving yet, or gone
	}
	w.peak.Samples++
	b, open := m.sum("cdcd_window_state_bytes", w.match), m.sum("cdcd_window_open_windows", w.match)
	if b > w.peak.Bytes {
		w.peak.Bytes, w.peak.Open = b, open
	}
	w.peak.MaxOpen = max(w.peak.MaxOpen, open)
}

// finish stops sampling, takes a last sample (call it before the process stops: a short run's
// state is largest at its end) and returns the peak.
func (w *windowStateSampler) finish() windowStatePeak {
	if w == nil {
		return windowStatePeak{}
	}
	select {
	case <-w.stop:
		return w.peak
	default:
		close(w.stop)
	}
	<-w.done
	if w.d.alive() {
		w.sample()
	}
	return w.peak
}

// changelogStats is a changelog topic as it was written: every record, read_committed.
type changelogStats struct {
	Topic      string
	Records    int   // records read, tombstones included
	Tombstones int   // records without a value
	Keys       int   // distinct keys (per partition: compaction keeps one record per key and partition)
	Bytes      int64 // keys and values of every record
	StateBytes int64 // keys and values of the records with a value
}

// summary: "1,234 records (12 tombstones) over 456 keys, 1.2 MiB: 61 bytes per record with a
// value, 1,000 bytes written per key".
func (c changelogStats) summary() string {
	if c.Records == 0 {
		return "no records"
	}
	s := commas(int64(c.Records)) + " records"
	if c.Tombstones > 0 {
		s += fmt.Sprintf(" (%s tombstones)", commas(int64(c.Tombstones)))
	}
	s += fmt.Sprintf(" over %s keys, %s", commas(int64(c.Keys)), fmtBytes(c.Bytes))
	if n := c.Records - c.Tombstones; n > 0 {
		s += fmt.Sprintf(": %.0f bytes per record with a value", float64(c.StateBytes)/float64(n))
	}
	return s + fmt.Sprintf(", %.0f bytes written per key", float64(c.Bytes)/float64(c.Keys))
}

// readChangelog reads topic from the start to its end, read_committed (the writer has stopped).
func readChangelog(ctx context.Context, broker, topic string, timeout time.Duration) (changelogStats, error) {
	st := changelogStats{Topic: topic}
	ends, err := endOffsets(ctx, broker, topic)
	if err != nil {
		return st, err
	}
	end := map[int32]int64{}
	for p, o := range ends.KOffsets()[topic] {
		if off := o.EpochOffset().Offset; off > 0 {
			end[p] = off
		}
	}
	if len(end) == 0 {
		return st, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return st, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type pkey struct {
		p int32
		k string
	}
	keys := map[pkey]struct{}{}
	last := map[int32]int64{}
	t0 := time.Now()
	for {
		// Done when every partition's last offset was read; a partition whose end is a
		// transaction marker never shows it, so a second without records also ends the read.
		done := true
		for p, e := range end {
			if l, ok := last[p]; !ok || l < e-1 {
				done = false
			}
		}
		if done {
			return st, nil
		}
		if rctx.Err() != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			return st, fmt.Errorf("reading %s: not at its end within %s (%d records read)", topic, timeout, st.Records)
		}
		pctx, pcancel := context.WithTimeout(rctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return st, ferr
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			st.Records++
			st.Bytes += int64(len(r.Key) + len(r.Value))
			if r.Value == nil {
				st.Tombstones++
			} else {
				st.StateBytes += int64(len(r.Key) + len(r.Value))
			}
			if _, ok := keys[pkey{r.Partition, string(r.Key)}]; !ok {
				keys[pkey{r.Partition, string(r.Key)}] = struct{}{}
				st.Keys++
			}
			last[r.Partition] = r.Offset
		})
		if n == 0 && rctx.Err() == nil && (st.Records > 0 || time.Since(t0) > 5*time.Second) {
			return st, nil
		}
	}
}

// streamsChangelogs lists Kafka Streams' changelog topics of application appID.
func streamsChangelogs(ctx context.Context, broker, appID string) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ts, err := kadm.NewClient(cl).ListTopics(lctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts.Names() {
		if strings.HasPrefix(t, appID+"-") && strings.HasSuffix(t, "-changelog") {
			out = append(out, t)
		}
	}
	// The window store first, then the suppress buffer.
	sort.Slice(out, func(i, j int) bool {
		si, sj := strings.Contains(out[i], "SUPPRESS"), strings.Contains(out[j], "SUPPRESS")
		if si != sj {
			return sj
		}
		return out[i] < out[j]
	})
	return out, nil
}

// dirBytes is the apparent size of the files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// cdcdStateNotes: the peak of cdcd's state and its changelog as written.
func (s *suite) cdcdStateNotes(ctx context.Context, peak windowStatePeak, job string) []string {
	notes := []string{peak.note()}
	topic := "cdcd-window." + job + ".changelog"
	if c, err := readChangelog(ctx, s.o.kafka, topic, 2*time.Minute); err != nil {
		notes = append(notes, "changelog: "+err.Error())
	} else {
		notes = append(notes, "changelog as written: "+c.summary())
	}
	return notes
}

// streamsStateNotes: Kafka Streams' window store (state directory and changelog) and its other
// changelogs (the suppress buffer), and why its in-memory state is not reported.
func (s *suite) streamsStateNotes(ctx context.Context, appID, stateDir string) []string {
	var notes []string
	topics, err := streamsChangelogs(ctx, s.o.kafka, appID)
	if err != nil {
		return []string{"state: listing its changelogs: " + err.Error()}
	}
	storeKeys := 0
	var stores []string
	for _, t := range topics {
		store := strings.TrimSuffix(strings.TrimPrefix(t, appID+"-"), "-changelog")
		c, err := readChangelog(ctx, s.o.kafka, t, 2*time.Minute)
		if err != nil {
			stores = append(stores, fmt.Sprintf("store `%s`: %v", store, err))
			continue
		}
		what := "window store"
		if strings.Contains(store, "SUPPRESS") {
			what = "suppress buffer"
		} else if storeKeys == 0 {
			storeKeys = c.Keys
		}
		stores = append(stores, fmt.Sprintf("%s `%s`, changelog as written: %s", what, store, c.summary()))
	}
	if b, err := dirBytes(stateDir); err == nil {
		d := fmt.Sprintf("state directory (RocksDB) after the run: %s", fmtBytes(b))
		if storeKeys > 0 {
			d += fmt.Sprintf(" = %.0f bytes per window key (RocksDB's fixed files included)", float64(b)/float64(storeKeys))
		}
		notes = append(notes, d)
	}
	notes = append(notes, stores...)
	notes = append(notes, "in-memory state not reported: Kafka Streams exports its store sizes only as JMX metrics, which the harness does not read (record cache bounded at 64 MiB)")
	return notes
}

// restoreResult is one run of window.BenchmarkRestore.
type restoreResult struct {
	Keys       int           // keys of window state written (CDCD_BENCH_RESTORE_KEYS)
	Restored   int           // changelog keys restored (the keys plus one stream time per partition)
	Took       time.Duration // the restore (s/restore)
	KeysPerSec float64
	StateMiB   int // the restored state (changelog form), whole MiB as the benchmark logs it
	WroteMiB   int
	WroteIn    time.Duration
	AllocBytes int64 // heap allocated by the restore (-benchmem B/op)
}

var (
	restoreLineRe  = regexp.MustCompile(`restored (\d+) keys \((\d+) MB of state\) in (\S+)`)
	restoreWroteRe = regexp.MustCompile(`wrote (\d+) keys \((\d+) MB\) to (\S+) in (\S+)`)
)

// parseRestoreBench reads the output of `go test -bench BenchmarkRestore -benchtime 1x -benchmem`.
func parseRestoreBench(out string) (restoreResult, error) {
	var r restoreResult
	var haveLine, haveMetrics bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := restoreWroteRe.FindStringSubmatch(line); m != nil {
			r.Keys, _ = strconv.Atoi(m[1])
			r.WroteMiB, _ = strconv.Atoi(m[2])
			r.WroteIn, _ = time.ParseDuration(m[4])
		}
		if m := restoreLineRe.FindStringSubmatch(line); m != nil {
			r.Restored, _ = strconv.Atoi(m[1])
			r.StateMiB, _ = strconv.Atoi(m[2])
			if r.Took == 0 {
				r.Took, _ = time.ParseDuration(m[3])
			}
			haveLine = true
		}
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[0], "BenchmarkRestore") {
			// name, N, then value unit pairs
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				switch f[i+1] {
				case "keys/s":
					r.KeysPerSec, haveMetrics = v, true
				case "s/restore":
					r.Took = time.Duration(v * float64(time.Second))
				case "B/op":
					r.AllocBytes = int64(v)
				}
			}
		}
	}
	if !haveLine || !haveMetrics {
		return r, fmt.Errorf("no restore result in the benchmark's output")
	}
	if r.Keys == 0 {
		r.Keys = r.Restored
	}
	return r, nil
}

// note is the report's line: "restore of 1,000,000 keys of window state: N s (K keys/s), X MiB
// of state, Y bytes per key", then how it was measured.
func (r restoreResult) note() string {
	// The benchmark logs whole MiB (truncated): the bytes per key lie in [lo, hi).
	lo := float64(r.StateMiB) * (1 << 20) / float64(r.Keys)
	hi := float64(r.StateMiB+1) * (1 << 20) / float64(r.Keys)
	per := fmt.Sprintf("%.0f–%.0f", lo, hi)
	if fmt.Sprintf("%.0f", lo) == fmt.Sprintf("%.0f", hi) {
		per = fmt.Sprintf("%.0f", lo)
	}
	s := fmt.Sprintf("restore of %s keys of window state: %.2f s (%.0f keys/s), %d MiB of state, %s bytes per key", commas(int64(r.Keys)), r.Took.Seconds(), r.KeysPerSec, r.StateMiB, per)
	s += fmt.Sprintf(" (window.BenchmarkRestore on the stack's broker: one count window per key over 6 partitions, %d MiB written transactionally in %.1f s, then restored read_committed by a new job; state in changelog form, in whole MiB as the benchmark logs it)", r.WroteMiB, r.WroteIn.Seconds())
	if r.AllocBytes > 0 {
		s += fmt.Sprintf("; the restore allocated %s on the heap (-benchmem)", fmtBytes(r.AllocBytes))
	}
	return s
}

// windowRestore runs window.BenchmarkRestore from the cdcd module (-restore-keys keys against
// the stack's broker) and adds its result to scenario 6.
func (s *suite) windowRestore(ctx context.Context) {
	o := s.o
	var sc *scenarioResult
	for _, x := range s.scenarios {
		if x.ID == "6" {
			sc = x
		}
	}
	if sc == nil {
		return
	}
	switch {
	case o.restoreKeys <= 0:
		sc.Notes = append(sc.Notes, "restore: not measured (-restore-keys 0)")
		return
	case ctx.Err() != nil:
		sc.Notes = append(sc.Notes, fmt.Sprintf("restore of %s keys of window state: not run: the suite reached -suite-timeout %s", commas(int64(o.restoreKeys)), o.suiteTimeout))
		return
	}
	logf("window: restore of %d keys of window state (window.BenchmarkRestore)", o.restoreKeys)
	r, err := s.runRestoreBench(ctx)
	if err != nil {
		logf("window: restore: %v", err)
		sc.Notes = append(sc.Notes, fmt.Sprintf("restore of %s keys of window state: failed: %v", commas(int64(o.restoreKeys)), err))
		return
	}
	logf("window: %s", r.note())
	sc.Notes = append(sc.Notes, r.note())
}

// restoreTopicRe matches the topics BenchmarkRestore creates (its job is restore_bench_<ns>).
var restoreTopicRe = regexp.MustCompile(`^cdcd-window\.restore_bench_(\d+)\.(changelog|repartition)$`)

func (s *suite) runRestoreBench(ctx context.Context) (restoreResult, error) {
	o := s.o
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return restoreResult{}, err
	}
	dir, err := filepath.Abs(s.dir)
	if err != nil {
		return restoreResult{}, err
	}
	bin := filepath.Join(dir, "window.test")
	defer os.Remove(bin)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	b, err := exec.CommandContext(cctx, "go", "test", "-c", "-o", bin, "./window/").CombinedOutput()
	cancel()
	if err != nil {
		return restoreResult{}, fmt.Errorf("go test -c ./window/: %v: %s", err, strings.TrimSpace(string(b)))
	}
	logPath := filepath.Join(dir, "window-restore.log")
	f, err := os.Create(logPath)
	if err != nil {
		return restoreResult{}, err
	}
	defer f.Close()
	rctx, cancel := context.WithTimeout(ctx, o.catchupTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, "-test.run", "^$", "-test.bench", "^BenchmarkRestore$", "-test.benchtime", "1x",
		"-test.benchmem", "-test.timeout", (o.catchupTimeout + time.Minute).String())
	cmd.Dir = filepath.Join(repo, "window")
	cmd.Env = append(os.Environ(), "CDCD_TEST_KAFKA="+o.kafka, fmt.Sprintf("CDCD_BENCH_RESTORE_KEYS=%d", o.restoreKeys))
	// Its own process group: Ctrl-C reaches the harness, which stops it and cleans up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	launched := time.Now()
	err = cmd.Run()
	_, _ = f.WriteString(out.String())
	if err != nil {
		// Killed (timeout, Ctrl-C) before its deferred cleanup: remove the topics it made.
		s.cleanupRestoreTopics(ctx, launched.Add(-time.Second), time.Now())
		if rctx.Err() != nil && ctx.Err() == nil {
			return restoreResult{}, fmt.Errorf("not done within %s (-catchup-timeout); output in %s", o.catchupTimeout, logPath)
		}
		return restoreResult{}, fmt.Errorf("%v: %s", err, tail(logPath, 8))
	}
	r, err := parseRestoreBench(out.String())
	if err != nil {
		return r, fmt.Errorf("%v; output in %s", err, logPath)
	}
	return r, nil
}

// cleanupRestoreTopics deletes BenchmarkRestore's topics whose job was named between from and to
// (the benchmark names its job restore_bench_<UnixNano>), left by a run that did not finish.
func (s *suite) cleanupRestoreTopics(ctx context.Context, from, to time.Time) {
	s.kafkaCleanup(ctx, func(cctx context.Context, _ *kgo.Client, adm *kadm.Client) {
		ts, err := adm.ListTopics(cctx)
		if err != nil {
			logf("cleanup: listing topics: %v", err)
			return
		}
		var del []string
		for _, t := range ts.Names() {
			if m := restoreTopicRe.FindStringSubmatch(t); m != nil {
				if ns, err := strconv.ParseInt(m[1], 10, 64); err == nil && ns >= from.UnixNano() && ns <= to.UnixNano() {
					del = append(del, t)
				}
			}
		}
		if len(del) > 0 {
			logf("cleanup: deleting %v", del)
			if _, err := adm.DeleteTopics(cctx, del...); err != nil {
				logf("cleanup: deleting %v: %v", del, err)
			}
		}
	})
}

// fmtBytes: "812 B", "3.4 KiB", "12.0 MiB", "1.20 GiB".
func fmtBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// commas: 1234567 -> "1,234,567".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
