package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat is how a tool writes its records: cdcd Confluent-framed Avro, Debezium JSON
// without schemas (JsonConverter, schemas.enable=false).
type recordFormat int

const (
	formatAvro recordFormat = iota
	formatJSON
	// formatAvroComposite: cdcd's Avro key of scenario 7's composite-key table, (a int, b
	// string) with b = "row-<seq>-<md5>" of the row whose id is seq + backlogFirstID.
	formatAvroComposite
)

// recordID is the id column of a record's key.
func recordID(f recordFormat, key []byte) (int64, error) {
	switch f {
	case formatAvro:
		return keyID(key)
	case formatAvroComposite:
		return compositeKeyID(key)
	}
	var k struct {
		ID *int64 `json:"id"`
	}
	if err := json.Unmarshal(key, &k); err != nil || k.ID == nil {
		return 0, fmt.Errorf("key is not JSON {\"id\": n}: %.60q", key)
	}
	return *k.ID, nil
}

// jsonSourceTime is after.c of a Debezium JSON envelope (a timestamptz is an ISO-8601 string).
func jsonSourceTime(v []byte) (int64, error) {
	// The envelope's after.c is found by a scan where it can be: decoding the whole envelope
	// cost the measuring consumer about ten times the CPU per record, on the cores the phase
	// shares (the Avro envelope is read as sparingly, sourceTime).
	if i := bytes.Index(v, []byte(`"after":{`)); i >= 0 {
		rest := v[i+len(`"after":{`):]
		if j := bytes.Index(rest, []byte(`"c":"`)); j >= 0 {
			rest = rest[j+len(`"c":"`):]
			if k := bytes.IndexByte(rest, '"'); k > 0 {
				if t, err := time.Parse(time.RFC3339Nano, string(rest[:k])); err == nil {
					return t.UnixNano(), nil
				}
			}
		}
	}
	var env struct {
		After *struct {
			C string `json:"c"`
		} `json:"after"`
	}
	if err := json.Unmarshal(v, &env); err != nil {
		return 0, fmt.Errorf("decoding JSON value: %w", err)
	}
	if env.After == nil {
		return 0, errors.New("value has no after")
	}
	t, err := time.Parse(time.RFC3339Nano, env.After.C)
	if err != nil {
		return 0, fmt.Errorf("after.c %q: %w", env.After.C, err)
	}
	return t.UnixNano(), nil
}

// idCounter reads a topic read_committed from the start (or from its current end) and notes
// the receipt of each id in [firstID, firstID+n): what a downstream consumer sees.
type idCounter struct {
	topic   string
	format  recordFormat
	firstID int64
	n       int

	mu       sync.Mutex
	seen     []bool
	unique   int
	dups     int
	records  int
	bytes    int64
	first    time.Time // first wanted id received
	last     time.Time // last new wanted id received
	errFirst error

	// ready, if set, is closed once the counter's starting offsets are fixed (runIDCounter
	// with fromEnd: records produced after that are counted).
	ready chan struct{}
}

// runIDCounter consumes until every id arrived, ctx ends, or timeout passes.
func runIDCounter(ctx context.Context, broker string, c *idCounter, fromEnd bool, timeout time.Duration) error {
	c.seen = make([]bool, c.n)
	opts := []kgo.Opt{kgo.SeedBrokers(broker), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64 << 20), kgo.FetchMaxWait(100 * time.Millisecond), kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.MetadataMaxAge(time.Second)}
	if fromEnd {
		ends, err := endOffsets(ctx, broker, c.topic)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			// The tool creates its topic with its first record: all of it is new.
			opts = append(opts, kgo.ConsumeTopics(c.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		case err != nil:
			return err
		default:
			opts = append(opts, kgo.ConsumePartitions(ends.KOffsets()))
		}
	} else {
		opts = append(opts, kgo.ConsumeTopics(c.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if c.ready != nil {
		close(c.ready)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if c.done() {
			return nil
		}
		if cctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("topic %s: %d of %d records arrived within %s", c.topic, c.count(), c.n, timeout)
		}
		fs := cl.PollFetches(cctx)
		now := time.Now()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) && ferr == nil {
				ferr = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			c.records++
			c.bytes += int64(len(r.Key) + len(r.Value))
			if r.Value == nil {
				return
			}
			id, err := recordID(c.format, r.Key)
			if err != nil {
				if c.errFirst == nil {
					c.errFirst = err
				}
				return
			}
			i := id - c.firstID
			if i < 0 || i >= int64(c.n) {
				return
			}
			if c.seen[i] {
				c.dups++
				return
			}
			c.seen[i] = true
			c.unique++
			if c.first.IsZero() {
				c.first = now
			}
			c.last = now
		})
		c.mu.Unlock()
	}
}

// startIDCounter runs runIDCounter in a goroutine and returns once its starting offsets are
// fixed, so that with fromEnd every record produced from then on is counted; its result
// arrives on the channel (an early failure too).
func startIDCounter(ctx context.Context, broker string, c *idCounter, fromEnd bool, timeout time.Duration) <-chan error {
	c.ready = make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- runIDCounter(ctx, broker, c, fromEnd, timeout) }()
	select {
	case <-c.ready:
		return done
	case err := <-done:
		done <- err // failed before it began: hand the error back
		return done
	}
}

func (c *idCounter) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unique >= c.n
}

func (c *idCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unique
}

func endOffsets(ctx context.Context, broker, topic string) (kadm.ListedOffsets, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if md, err := adm.ListTopics(lctx, topic); err == nil && !md.Has(topic) {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	ends, err := adm.ListEndOffsets(lctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	return ends, nil
}

// procWatch samples a process's CPU time and resident memory while a scenario runs.
type procWatch struct {
	pid    int
	cpu    cpuMeter
	maxRSS int64 // kB, sampled VmRSS
	hwm    int64 // kB, VmHWM since the peak was reset (or the process started)
	// the machine's 1-minute load average, sampled with the process: what else ran
	loadSum, loadMax float64
	loadN            int
	// where the machine's CPU went (sampled every second)
	split   *cpuSplit
	started time.Time
	ended   time.Time
	ticks   int
	stop    chan struct{}
	done    chan struct{}
}

// watchProc starts sampling pid every 200 ms. fresh: the process started within the
// measured interval (all of its CPU counts); otherwise its peak RSS is reset first.
// label names the process in the machine's CPU split.
func watchProc(pid int, fresh bool, label string) *procWatch {
	w := &procWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	w.split = newCPUSplit(pid, label, fresh)
	if fresh {
		w.cpu.attachNew(pid)
	} else {
		// Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
		w.cpu.attach(pid)
	}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				w.sample()
				w.split.sample()
				w.ended = time.Now()
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

func (w *procWatch) sample() {
	if w.ticks++; w.ticks%5 == 0 {
		w.split.sample()
	}
	w.cpu.read()
	if l, ok := loadAvg1(); ok {
		w.loadSum += l
		w.loadMax = max(w.loadMax, l)
		w.loadN++
	}
	if v, err := procStatusKB(w.pid, "VmRSS"); err == nil && v > w.maxRSS {
		w.maxRSS = v
	}
	if v, err := procStatusKB(w.pid, "VmHWM"); err == nil {
		w.hwm = v
	}
}

// finish stops sampling and returns CPU seconds and peak RSS in kB.
func (w *procWatch) finish() (cpu float64, peakKB int64) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.cpu.used(), max(w.maxRSS, w.hwm)
}

// loadNote says how loaded the machine was while the process was watched (after finish).
func (w *procWatch) loadNote() string {
	if w.loadN == 0 {
		return ""
	}
	n := fmt.Sprintf("load average (1 min) during the phase: mean %.1f, max %.1f on %d cores", w.loadSum/float64(w.loadN), w.loadMax, runtime.NumCPU())
	if s := w.splitNote(); s != "" {
		n += "; " + s
	}
	return n
}

// machine is the split as numbers (after finish), nil if the phase was not timed.
func (w *procWatch) machine() *machineCPU {
	if w.ended.IsZero() {
		return nil
	}
	return w.split.machine(w.ended.Sub(w.started).Seconds())
}

// splitNote says where the machine's CPU went while the process was watched (after finish).
func (w *procWatch) splitNote() string {
	if w.ended.IsZero() {
		return ""
	}
	return w.split.note(w.ended.Sub(w.started).Seconds())
}

// loadAvg1 reads the 1-minute load average from /proc/loadavg.
func loadAvg1() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	return parseLoadAvg(string(b))
}

func parseLoadAvg(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}
