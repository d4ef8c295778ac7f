package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

var cdcdBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getenv("CDCD_TEST_STACK") == "" {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "cdcd-it-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cdcdBin = filepath.Join(dir, "cdcd")
		out, err := exec.Command("go", "build", "-o", cdcdBin, "../cmd/cdcd").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building cdcd: %v\n%s", err, out)
			return 1
		}
		code := m.Run()
		// A failed run keeps its topics to be looked at; a passing one leaves the broker as
		// it found it.
		if code == 0 && os.Getenv("CDCD_TEST_KEEP_TOPICS") == "" {
			if err := deleteRunTopics(strings.Split(env("CDCD_TEST_KAFKA", "127.0.0.1:19092"), ",")); err != nil {
				fmt.Fprintf(os.Stderr, "integration: WARNING: the run passed, but deleting its topics failed (they stay on the broker): %v\n", err)
			}
		}
		return code
	}()
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a cdcd process under test.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	http   string
	cfg    string
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
	err    error
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// pipelineYAML is one Postgres pipeline's configuration; extra is appended at pipeline level.
// Tests of the stream read no existing rows (snapshot: never) unless extra sets snapshot.
func pipelineYAML(s stack, name, dsn string, tables []string, extra string) string {
	if !strings.Contains(extra, "snapshot:") {
		extra = "    snapshot: never\n" + extra
	}
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_partitions: 3
schema_registry:
  url: %q
http:
  listen: "HTTP_ADDR"
log:
  level: info
  format: text
shutdown_timeout: 10s
pipelines:
  - name: %s
    source:
      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [%s]
        heartbeat_interval: 1s
        status_interval: 1s
        slot_stats_interval: 1s
    topics:
      prefix: %s
%s`, s.kafka[0], s.registry, name, dsn, name, name, strings.Join(tables, ", "), name, extra)
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon runs `cdcd run` on the configuration (HTTP_ADDR is replaced by a free port).
func startDaemon(t *testing.T, yaml string) *daemon {
	t.Helper()
	d := &daemon{t: t, http: freePort(t), exited: make(chan struct{})}
	d.cfg = writeConfig(t, strings.ReplaceAll(yaml, "HTTP_ADDR", d.http))
	d.start()
	t.Cleanup(func() {
		d.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("cdcd logs:\n%s", d.Logs())
		}
	})
	return d
}

func (d *daemon) start() {
	d.exited = make(chan struct{})
	d.cmd = exec.Command(cdcdBin, "run", "--config", d.cfg)
	w := lockedWriter{&d.mu, &d.logs}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
}

// restart starts the same daemon again after it exited.
func (d *daemon) restart() {
	<-d.exited
	d.start()
}

func (d *daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// stop signals the process and waits for it to exit; it returns the time it took.
func (d *daemon) stop(sig syscall.Signal) time.Duration {
	select {
	case <-d.exited:
		return 0
	default:
	}
	t0 := time.Now()
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	return time.Since(t0)
}

// waitReady polls /readyz until it answers 200.
func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			d.t.Fatalf("cdcd exited: %v\n%s", d.err, d.Logs())
		default:
		}
		resp, err := http.Get("http://" + d.http + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = string(b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.t.Fatalf("cdcd not ready after %s: %s\n%s", timeout, last, d.Logs())
}

// consumer reads topics with read_committed from the start.
type consumer struct {
	cl  *kgo.Client
	reg *sr.Client
	// schemas by id
	schemas map[int]avro.Schema
}

func newConsumer(t *testing.T, s stack, topics ...string) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sr.NewClient(sr.URLs(s.registry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{cl: cl, reg: reg, schemas: map[int]avro.Schema{}}
}

// read returns records until n arrived or the timeout passed, then keeps reading for linger to
// catch anything extra (a duplicate would show up there).
func (c *consumer) read(t *testing.T, n int, timeout, linger time.Duration) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	for len(out) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := c.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if linger > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), linger)
		for ctx.Err() == nil {
			fs := c.cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		}
		cancel()
	}
	return out
}

// decode decodes a Confluent-framed Avro payload with the schema the registry holds for its id.
func (c *consumer) decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if b == nil {
		return nil
	}
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not Confluent framing: % x", b[:min(len(b), 8)])
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	sch, ok := c.schemas[id]
	if !ok {
		text, err := c.reg.SchemaByID(context.Background(), id)
		if err != nil {
			t.Fatalf("schema %d: %v", id, err)
		}
		sch, err = avro.Parse(text.Schema)
		if err != nil {
			t.Fatalf("schema %d does not parse: %v", id, err)
		}
		c.schemas[id] = sch
	}
	var m map[string]any
	if err := avro.Unmarshal(sch, b[5:], &m); err != nil {
		t.Fatalf("decoding with schema %d: %v", id, err)
	}
	return m
}

// metric returns the sum of every series of a metric on the daemon's /metrics.
func (d *daemon) metric(name string) float64 {
	d.t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		d.t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// loadOffsets reads pipeline name's committed offsets record until want accepts it or
// timeout passes, and returns the last one read. A Kafka commit returns once the coordinator
// has decided it; the markers that make its offsets record count reach the topic a moment
// later (Kafka 4 writes them after EndTxn answers), so a read right after a commit, a stop or
// a kill can still see the record before it. One offsets.Reader serves every read: each
// reads only what was written since the one before.
func loadOffsets(t *testing.T, ctx context.Context, s stack, name string, timeout time.Duration,
	want func(rec offsets.Record, ok bool) bool) (offsets.Record, bool) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.kafka...)}, offsets.ReaderOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := offsets.NewReader(cl, "_cdcd_offsets", name)
	deadline := time.Now().Add(timeout)
	for {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		rec, ok, err := r.Read(lctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if want(rec, ok) || time.Now().After(deadline) {
			return rec, ok
		}
		time.Sleep(50 * time.Millisecond)
	}
}
