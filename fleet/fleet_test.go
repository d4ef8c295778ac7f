package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ledger records which instance runs which pipeline, and every overlap: a pipeline started
// while another instance still ran it.
type ledger struct {
	mu      sync.Mutex
	owner   map[string]string
	stops   map[string]int // by instance
	overlap []string
}

func newLedger() *ledger { return &ledger{owner: map[string]string{}, stops: map[string]int{}} }

// run is a pipeline that takes drain to stop, as a real one commits its open batch.
func (l *ledger) run(instance string, drain time.Duration) func(context.Context, string) {
	return func(ctx context.Context, name string) {
		l.mu.Lock()
		if o, ok := l.owner[name]; ok {
			l.overlap = append(l.overlap, fmt.Sprintf("%s started on %s while %s ran it", name, instance, o))
		}
		l.owner[name] = instance
		l.mu.Unlock()
		<-ctx.Done()
		time.Sleep(drain)
		l.mu.Lock()
		if l.owner[name] == instance {
			delete(l.owner, name)
		}
		l.stops[instance]++
		l.mu.Unlock()
	}
}

// counts returns how many pipelines each instance runs, and how many run anywhere.
func (l *ledger) counts() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := map[string]int{}
	for _, o := range l.owner {
		c[o]++
	}
	return c, len(l.owner)
}

func (l *ledger) stopsOf(instance string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stops[instance]
}

func (l *ledger) overlaps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.overlap)
}

type member struct {
	f       *Fleet
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func startMember(t *testing.T, c *kfake.Cluster, l *ledger, instance string, pipelines []string, m *Metrics) *member {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)},
		Group:     "fleet", Topic: "_cdcd_fleet.fleet", Instance: instance, Pipelines: pipelines, Replication: 1,
		SessionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond, DrainTimeout: 2 * time.Second,
		Run: l.run(instance, 300*time.Millisecond),
	}
	if m != nil {
		cfg.OnChange = m.Observe
	}
	mb := &member{f: New(cfg), cancel: cancel, done: make(chan error, 1)}
	go func() { mb.done <- mb.f.Run(ctx) }()
	t.Cleanup(func() { mb.stop(t) })
	return mb
}

func (m *member) stop(t *testing.T) {
	if m.stopped {
		return
	}
	m.stopped = true
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("fleet run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the member did not leave within 20s")
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func spread(want map[string]int) func(*ledger) func() bool {
	return func(l *ledger) func() bool {
		return func() bool {
			c, _ := l.counts()
			for k, v := range want {
				if c[k] != v {
					return false
				}
			}
			return len(c) == len(want)
		}
	}
}

// Members joining and leaving move only what must move; a moved pipeline stops on its old
// owner before its new owner starts it.
func TestFleetSpreadsAndMovesOnlyWhatMust(t *testing.T) {
	c := newCluster(t)
	l := newLedger()
	pipes := []string{"p1", "p2", "p3", "p4", "p5", "p6"}
	reg := prometheus.NewRegistry()
	metricsA := NewMetrics(reg)

	a := startMember(t, c, l, "a", pipes, metricsA)
	waitFor(t, "a to run all six", 15*time.Second, spread(map[string]int{"a": 6})(l))
	waitFor(t, "cdcd_fleet_pipeline_running{instance=a,pipeline=p3} 1", 5*time.Second, func() bool {
		return testutil.ToFloat64(metricsA.m.PipelineRunning.WithLabelValues("fleet", "a", "p3")) == 1
	})

	b := startMember(t, c, l, "b", pipes, nil)
	waitFor(t, "3/3 over a and b", 20*time.Second, spread(map[string]int{"a": 3, "b": 3})(l))
	if n := l.stopsOf("a"); n != 3 {
		t.Errorf("a stopped %d pipelines when b joined; want 3 (only what moves)", n)
	}

	startMember(t, c, l, "c", pipes, nil)
	waitFor(t, "2/2/2", 20*time.Second, spread(map[string]int{"a": 2, "b": 2, "c": 2})(l))
	if na, nb := l.stopsOf("a"), l.stopsOf("b"); na != 4 || nb != 1 {
		t.Errorf("when c joined a stopped %d more and b %d; want 1 each", na-3, nb)
	}

	b.stop(t)
	waitFor(t, "3/3 over a and c", 20*time.Second, spread(map[string]int{"a": 3, "c": 3})(l))
	if na, nc := l.stopsOf("a"), l.stopsOf("c"); na != 4 || nc != 0 {
		t.Errorf("when b left a stopped %d and c %d pipelines; want none", na-4, nc)
	}
	if o := l.overlaps(); len(o) > 0 {
		t.Fatalf("a pipeline ran on two instances at once: %v", o)
	}
	st := a.f.Status()
	if !st.Joined || len(st.Pipelines) != 3 {
		t.Errorf("a's status: %+v", st)
	}
}

// An instance whose pipelines differ is refused by Kafka (its protocol differs) and runs
// nothing; it says why, with the fix.
func TestFleetRefusesDifferentPipelines(t *testing.T) {
	c := newCluster(t)
	l := newLedger()
	startMember(t, c, l, "a", []string{"p1", "p2", "p3"}, nil)
	waitFor(t, "a to run all three", 15*time.Second, spread(map[string]int{"a": 3})(l))

	d := startMember(t, c, l, "d", []string{"p1", "p2", "p3", "p4"}, nil)
	waitFor(t, "d to be refused", 15*time.Second, func() bool { return d.f.Status().Problem != "" })
	st := d.f.Status()
	if !strings.Contains(st.Problem, "runs different pipelines") || !strings.Contains(st.Problem, "same configuration") || st.Joined {
		t.Errorf("d's status: %+v", st)
	}
	time.Sleep(time.Second)
	if c, n := l.counts(); c["a"] != 3 || n != 3 {
		t.Errorf("pipelines moved to a refused member: %v", c)
	}
	if o := l.overlaps(); len(o) > 0 {
		t.Fatalf("a pipeline ran on two instances at once: %v", o)
	}
}

func TestOrderIsStable(t *testing.T) {
	if got := Order([]string{"b", "c", "a"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Order = %v", got)
	}
	if Fingerprint([]string{"b", "a"}) != Fingerprint([]string{"a", "b"}) || Fingerprint([]string{"a"}) == Fingerprint([]string{"a", "b"}) {
		t.Fatal("the fingerprint depends on order, or not on the names")
	}
}

// A member that loses its session (the coordinator no longer knows it) stops every pipeline at
// once, and runs them again when the group assigns them anew.
func TestFleetLostSessionStopsPipelines(t *testing.T) {
	c := newCluster(t)
	l := newLedger()
	pipes := []string{"p1", "p2", "p3"}
	a := startMember(t, c, l, "a", pipes, nil)
	waitFor(t, "a to run all three", 15*time.Second, spread(map[string]int{"a": 3})(l))

	var once sync.Once
	c.ControlKey(kmsg.Heartbeat.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		fail := false
		once.Do(func() { fail = true })
		if !fail {
			return nil, nil, false
		}
		resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	waitFor(t, "a to stop its pipelines after losing its session", 10*time.Second, func() bool { return l.stopsOf("a") == 3 })
	waitFor(t, "a to run all three again", 15*time.Second, spread(map[string]int{"a": 3})(l))
	if st := a.f.Status(); !st.Joined || len(st.Pipelines) != 3 {
		t.Errorf("a's status after rejoining: %+v", st)
	}
	if o := l.overlaps(); len(o) > 0 {
		t.Fatalf("a pipeline ran twice at once: %v", o)
	}
}

func TestMetricsLint(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.Observe(Status{Group: "g", Instance: "i", Joined: true, Pipelines: []string{"a", "b"}})
	m.Observe(Status{Group: "g", Instance: "i", Joined: true, Pipelines: []string{"b"}})
	for _, c := range []prometheus.Collector{m.m.PipelineRunning, m.m.Member} {
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	}
	if got := testutil.ToFloat64(m.m.PipelineRunning.WithLabelValues("g", "i", "a")); got != 0 {
		t.Errorf("a moved away: cdcd_fleet_pipeline_running = %v, want 0", got)
	}
}
