package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/publish"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func stateOf(hr *health.Registry) health.State {
	states, _ := hr.Snapshot()
	return states["p"]
}

// A frozen broker used to leave /readyz at 200 "streaming" until the commit gave up a minute
// later, with no hint that Kafka was the target. A pipeline that holds work Kafka has not
// committed for a quarter of the transaction timeout is unready, names Kafka, logs it once,
// and is ready again after the next commit.
func TestKafkaStallMakesUnready(t *testing.T) {
	c, reg := newFakes(t)
	txs, _ := makeTxsBigAt(2, -1, rand.New(rand.NewPCG(17, 18)))
	gate := make(chan struct{})
	src := &fakeSource{txs: txs, start: 50, gate: map[int]chan struct{}{1: gate}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	hr := health.NewRegistry("p")
	var logs syncBuffer
	p.cfg.Health, p.log = hr, slog.New(slog.NewTextHandler(&logs, nil))

	var stall atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	c.ControlKey(kmsg.EndTxn.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if stall.Load() {
			once.Do(func() { <-release }) // the broker does not answer the commit
		}
		return nil, nil, false
	})
	done, stop := runPipeline(p)
	waitFor(t, "the first transaction committed and the pipeline ready", done, func() bool {
		return src.acked.Load() >= lsnOf(0)+1 && stateOf(hr).Ready
	})
	stall.Store(true)
	close(gate)
	// The session now holds the second transaction; its commit does not finish.
	unready := make(chan health.State, 1)
	go func() {
		for {
			if st := stateOf(hr); !st.Ready {
				unready <- st
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	st := <-unready
	close(release)
	if !strings.Contains(st.Conditions["kafka"], "kafka") || st.Phase != "streaming" {
		t.Errorf("unready without naming Kafka: %+v", st)
	}
	waitFor(t, "ready again after the commit", done, func() bool {
		st := stateOf(hr)
		return st.Ready && st.Conditions["kafka"] == "" && src.acked.Load() >= lsnOf(1)+1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "kafka does not commit"); n != 1 {
		t.Errorf("logged the stall %d times, want once:\n%s", n, logs.String())
	}
}

// Between retry attempts /readyz used to flap back to 200 "streaming" as soon as a new attempt
// held the stream again. After a failed attempt the pipeline is "resuming", not ready, until it
// has committed to Kafka.
func TestRetryDoesNotFlapReady(t *testing.T) {
	c, reg := newFakes(t)
	txs, _ := makeTxs(6, rand.New(rand.NewPCG(19, 20)))
	src := &fakeSource{txs: txs, start: 50, breakAt: map[int]int{1: 4}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	hr := health.NewRegistry("p")
	p.cfg.Health = hr
	seen := make(chan health.State, 1)
	src.afterStreaming = func(run int) {
		if run != 2 {
			return
		}
		// The second attempt holds the stream: wait until the pipeline has taken it over.
		for {
			if st := stateOf(hr); st.Phase != "starting" && st.Phase != "retrying" {
				seen <- st
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	done, stop := runPipeline(p)
	var st health.State
	select {
	case st = <-seen:
	case err := <-done:
		t.Fatalf("pipeline ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the second attempt never held the stream")
	}
	if st.Ready {
		t.Errorf("ready as soon as the retry held the stream, before any commit: %+v", st)
	}
	if !strings.Contains(st.Reason, "connection reset (injected)") {
		t.Errorf("the resuming reason does not name the last failure: %+v", st)
	}
	waitFor(t, "ready after the retry committed", done, func() bool {
		return stateOf(hr).Ready && src.acked.Load() >= lsnOf(len(txs)-1)+1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A pipeline stopped by an error retrying cannot fix shows as failed in its metric (the
// CdcdPipelineFailed alert) and in the phase that /healthz turns into a liveness failure.
func TestFatalErrorMarksPipelineFailed(t *testing.T) {
	c, reg := newFakes(t)
	dec := &change.Table{Schema: "public", Name: "money", Version: 1,
		Columns:    []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "amount", Kind: change.KindDecimal, Precision: 5, Scale: 2}},
		KeyColumns: []int{0}}
	src := &fakeSource{start: 50, txs: [][]change.Event{{{Op: change.OpCreate, Table: dec,
		After: []change.Value{{Int: 7}, {Str: "123456.789"}}, Pos: change.Position{Tx: lsnOf(0)}}}}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	hr := health.NewRegistry("p")
	m := metrics.New(prometheus.NewRegistry(), "test")
	p.cfg.Health, p.cfg.Metrics = hr, m
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Run(ctx) // on_error fail: the poison record stops the pipeline
	var pe *publish.PoisonError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PoisonError, got %v", err)
	}
	if got := testutil.ToFloat64(m.PipelineFailed.WithLabelValues("p")); got != 1 {
		t.Errorf("cdcd_pipeline_failed = %v, want 1", got)
	}
	if st := stateOf(hr); st.Phase != "failed" || st.Ready {
		t.Errorf("state %+v, want failed", st)
	}
}
