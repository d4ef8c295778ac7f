package window

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tickWatch records, for every transaction of a job that commits, the repartition partitions
// it wrote to that the group had assigned to another member at the commit. While the input is
// idle a job writes there only idle ticks and releases, which only a partition's owner may
// write.
type tickWatch struct {
	mu         sync.Mutex
	written    map[string]map[written]bool // by transactional id, since its last EndTxn
	violations []string
	checked    int // committed transactions that wrote to the repartition topic
	// armed: the input is consumed, from now on only ticks go to the repartition topic
	armed atomic.Bool
}

// written is a partition a produce request wrote to, by topic name or (Produce v13+) id.
type written struct {
	topic     string
	id        [16]byte
	partition int32
}

func watchTicks(t *testing.T, c *kfake.Cluster, spec *Spec, clientOf func(txnID string) string) *tickWatch {
	w := &tickWatch{written: map[string]map[written]bool{}}
	repart := RepartitionTopic(spec.Name)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if req.TransactionID == nil {
			return nil, nil, false
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				m := w.written[*req.TransactionID]
				if m == nil {
					m = map[written]bool{}
					w.written[*req.TransactionID] = m
				}
				m[written{tp.Topic, tp.TopicID, p.Partition}] = true
			}
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.EndTxn), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.EndTxnRequest)
		w.mu.Lock()
		parts := w.written[req.TransactionalID]
		delete(w.written, req.TransactionalID)
		w.mu.Unlock()
		if !req.Commit || len(parts) == 0 || !w.armed.Load() {
			return nil, nil, false
		}
		var info *kfake.GroupInfo
		var ti *kfake.TopicInfo
		c.SleepControl(func() { info, ti = c.GroupInfo(GroupID(spec.Name)), c.TopicInfo(repart) })
		if info == nil || ti == nil {
			return nil, nil, false
		}
		repartWrites := map[int32]bool{}
		for k := range parts {
			if k.topic == repart || k.topic == "" && k.id == ti.TopicID {
				repartWrites[k.partition] = true
			}
		}
		if len(repartWrites) == 0 {
			return nil, nil, false
		}
		me := clientOf(req.TransactionalID)
		w.mu.Lock()
		w.checked++
		w.mu.Unlock()
		for _, m := range info.Members {
			if m.ClientID == me {
				continue
			}
			for _, p := range m.Assignment[repart] {
				if repartWrites[p] {
					w.mu.Lock()
					w.violations = append(w.violations, fmt.Sprintf("%s committed a write to %s[%d], assigned to %s", me, repart, p, m.ClientID))
					w.mu.Unlock()
				}
			}
		}
		return nil, nil, false
	})
	return w
}

// Revocations while idle: franz-go's transact session skips the revoke callback while an
// earlier revocation is pending, and clears that only when a transaction ends; an idle job
// never ended one, so it kept the state of partitions it had lost and wrote idle ticks into
// their new owner's partitions. Three instances, idle input with windows still open, two
// rolling restarts: afterwards every instance holds state only for partitions the group
// assigned it, and no transaction committed a write into a partition another member owns.
func TestJobRevocationsWhileIdle(t *testing.T) {
	const input = "shop.public.orders"
	c, _, opts, srcl := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := c.CreateTopic(input, 6, nil); err != nil {
		t.Fatal(err)
	}
	spec := ordersJob(input)
	spec.Window = WindowSpec{Type: Tumbling, Size: 30 * time.Second}
	spec.IdleTimeout = time.Second

	type instance struct {
		id   string
		job  *Job
		stop func()
		done chan error
	}
	start := func(id string) *instance {
		kopts := append(append([]kgo.Opt{}, opts...), kgo.ClientID("inst-"+id), kgo.HeartbeatInterval(100*time.Millisecond))
		job, err := New(Config{Spec: spec, KafkaOpts: kopts, Registry: srcl, InstanceID: id, Partitions: 6,
			SessionTimeout: 6 * time.Second, Log: testLog(t, id)})
		if err != nil {
			t.Fatal(err)
		}
		jctx, stop := context.WithCancel(ctx)
		in := &instance{id: id, job: job, stop: stop, done: make(chan error, 1)}
		go func() { in.done <- job.Run(jctx) }()
		return in
	}
	halt := func(in *instance) {
		in.stop()
		if err := <-in.done; err != nil {
			t.Errorf("job %s: %v", in.id, err)
		}
	}
	// Windows open on every repartition partition that close only when the wall clock
	// passes them, 30 to 60 s from now (after the restarts): then their owners tick.
	size := 30 * time.Second
	at := time.Now().Truncate(size).Add(size)
	var orders []order
	for i := 0; i < 60; i++ {
		orders = append(orders, order{id: int64(i), customer: int64(i % 30), cents: 100, at: at})
	}
	produceOrders(t, ctx, cl, srcl, input, orders)
	w := watchTicks(t, c, spec, func(txnID string) string { return "inst-" + txnID[strings.LastIndex(txnID, "-")+1:] })
	insts := []*instance{start("a"), start("b"), start("c")}
	defer func() {
		for _, in := range insts {
			halt(in)
		}
	}()
	waitMembers(t, ctx, c, spec, 3)
	waitCaughtUp(t, ctx, opts, cl, GroupID(spec.Name), input, RepartitionTopic(spec.Name))
	w.armed.Store(true)

	repart := RepartitionTopic(spec.Name)
	// checkHeld: within 3 s of the group's last rebalance, each instance holds state only
	// for partitions the group assigned to it.
	checkHeld := func(when string) {
		t.Helper()
		var stale []string
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			info := waitMembers(t, ctx, c, spec, 3)
			stale = stale[:0]
			for _, in := range insts {
				var assigned []int32
				for _, m := range info.Members {
					if m.ClientID == "inst-"+in.id {
						assigned = append(assigned, m.Assignment[repart]...)
					}
				}
				sort.Slice(assigned, func(a, b int) bool { return assigned[a] < assigned[b] })
				held := in.job.Stats().Partitions
				for _, p := range held {
					if !slices.Contains(assigned, p) {
						stale = append(stale, fmt.Sprintf("%s: instance %s holds the state of %s[%d], which the group assigned elsewhere (it holds %v, is assigned %v)", when, in.id, repart, p, held, assigned))
					}
				}
			}
			if len(stale) == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, s := range stale {
			t.Error(s)
		}
	}
	for round := 0; round < 2; round++ {
		for i := range insts {
			halt(insts[i])
			waitMembers(t, ctx, c, spec, 2)
			insts[i] = start(insts[i].id)
			waitMembers(t, ctx, c, spec, 3)
			checkHeld(fmt.Sprintf("round %d, instance %s restarted", round+1, insts[i].id))
		}
	}
	// Let the windows close and their owners tick (idle_timeout 1 s).
	time.Sleep(time.Until(at.Add(size + 3*time.Second)))
	checkHeld("after the windows closed")
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d committed transactions wrote to %s", w.checked, repart)
	for _, v := range w.violations {
		t.Error(v)
	}
}

// waitMembers waits until the job's group is stable with n members and every partition of
// its topics (6 input, 6 repartition) assigned.
func waitMembers(t *testing.T, ctx context.Context, c *kfake.Cluster, spec *Spec, n int) *kfake.GroupInfo {
	t.Helper()
	var last *kfake.GroupInfo
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		last = c.GroupInfo(GroupID(spec.Name))
		if last != nil && last.State == "Stable" && len(last.Members) == n && last.NumAssigned() == 12 {
			return last
		}
	}
	if last != nil {
		t.Fatalf("the group did not settle with %d members: state %s, %d members, %d partitions assigned: %+v", n, last.State, len(last.Members), last.NumAssigned(), last.Members)
	}
	t.Fatalf("the group did not settle with %d members: no group", n)
	return nil
}
