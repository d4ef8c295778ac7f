// Package fleet spreads a configuration's pipelines over every instance that runs it, with
// Kafka's consumer-group protocol: no consensus of our own and no other service.
//
// Every instance joins one consumer group on a small coordination topic that has one
// partition per pipeline (partition i is the i-th pipeline in name order); the partitions the
// group assigns to an instance are the pipelines it runs. The balancer is cooperative-sticky,
// so a member joining or leaving moves only what must move, and a moved pipeline is stopped
// (drained) in the revocation callback, before this member rejoins and the group hands the
// pipeline to its new owner. The balancer's protocol name carries a fingerprint of the
// pipeline names, so Kafka itself refuses a member whose configuration maps partitions to
// other pipelines (INCONSISTENT_GROUP_PROTOCOL).
//
// The group decides who should run a pipeline; the pipeline's own fencing (a stable
// transactional id, the replication slot's single reader, the MySQL replica check) keeps one
// owner even while the group is briefly wrong (a member that lost its session but has not
// noticed yet).
package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/supervise"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one instance's membership in a fleet.
type Config struct {
	KafkaOpts []kgo.Opt // the cluster's connection options
	Group     string    // the consumer group every instance joins
	Topic     string    // the coordination topic
	Instance  string    // this instance's name in the fleet view
	Pipelines []string  // every pipeline of the configuration
	// Replication is the coordination topic's replication factor when cdcd creates it (-1:
	// the broker's default).
	Replication       int16
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// DrainTimeout bounds how long a revoked pipeline may take to stop (shutdown_timeout).
	DrainTimeout time.Duration
	// Run runs one pipeline until ctx ends, then drains it and returns.
	Run func(ctx context.Context, pipeline string)
	// OnChange is told this instance's state after every change (may be nil).
	OnChange func(Status)
	Log      *slog.Logger
}

// Status is what this instance knows of its membership.
type Status struct {
	Group     string   `json:"group"`
	Instance  string   `json:"instance"`
	Joined    bool     `json:"joined"`
	Pipelines []string `json:"pipelines"`         // those this instance runs, sorted
	Problem   string   `json:"problem,omitempty"` // why it is not in the group, with the fix
}

// Order is the stable mapping of pipelines to the coordination topic's partitions: partition
// i is Order(pipelines)[i].
func Order(pipelines []string) []string {
	o := slices.Clone(pipelines)
	sort.Strings(o)
	return o
}

// Fingerprint identifies the mapping of a set of pipelines.
func Fingerprint(pipelines []string) string {
	h := sha256.Sum256([]byte(strings.Join(Order(pipelines), "\n")))
	return hex.EncodeToString(h[:6])
}

// ProtocolName is the group protocol of members with these pipelines: members whose
// pipelines differ share no protocol, and Kafka refuses the one that joins last.
func ProtocolName(pipelines []string) string { return "cdcd-fleet-" + Fingerprint(pipelines) }

// balancer is franz-go's cooperative-sticky balancer under the fleet's protocol name.
type balancer struct {
	kgo.GroupBalancer
	name string
}

func (b balancer) ProtocolName() string { return b.name }

// Fleet is this instance's membership: it runs the pipelines the group assigns to it.
type Fleet struct {
	cfg   Config
	order []string

	mu       sync.Mutex
	running  map[string]*run // by pipeline
	draining map[string]*run // revoked, not stopped within DrainTimeout
	joined   bool
	problem  string
	runCtx   context.Context
	stopping bool
	wg       sync.WaitGroup
	reportMu sync.Mutex
}

// run is one pipeline running on this instance.
type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the membership of cfg.Instance; Run joins the group.
func New(cfg Config) *Fleet {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{cfg: cfg, order: Order(cfg.Pipelines), running: map[string]*run{}, draining: map[string]*run{}}
}

// Run joins the group and runs the assigned pipelines until ctx ends; then it stops them
// (each drains within DrainTimeout) and leaves the group, so the others take them over at
// once.
func (f *Fleet) Run(ctx context.Context) error {
	if len(f.order) == 0 {
		return errors.New("fleet mode: the configuration has no pipelines")
	}
	// Kafka may not be reachable yet when the instance starts: retry, unready with the cause.
	for b := supervise.NewBackoff(supervise.Policy{Initial: time.Second}); ; {
		err := f.ensureTopic(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		f.setProblem(err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(b.Next()):
		}
	}
	f.mu.Lock()
	f.runCtx = ctx
	f.mu.Unlock()
	rebalance := f.cfg.DrainTimeout + 30*time.Second
	opts := append(slices.Clone(f.cfg.KafkaOpts),
		kgo.ConsumerGroup(f.cfg.Group), kgo.ConsumeTopics(f.cfg.Topic),
		kgo.Balancers(balancer{kgo.CooperativeStickyBalancer(), ProtocolName(f.order)}),
		kgo.SessionTimeout(f.cfg.SessionTimeout), kgo.HeartbeatInterval(f.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(rebalance), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.OnPartitionsAssigned(f.assigned), kgo.OnPartitionsRevoked(f.revoked), kgo.OnPartitionsLost(f.lost),
	)
	if f.cfg.Instance != "" {
		// The member's client id names the instance in DescribeGroups (cdcd fleet status).
		opts = append(opts, kgo.ClientID(ClientIDPrefix+f.cfg.Instance))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("fleet group %s: %w", f.cfg.Group, err)
	}
	f.cfg.Log.Info("joining the fleet", "group", f.cfg.Group, "topic", f.cfg.Topic, "instance", f.cfg.Instance,
		"pipelines", len(f.order), "protocol", ProtocolName(f.order))
	f.report()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return
			}
			// Only the group's errors matter: fetching the empty coordination partitions
			// can fail for a moment (a leader moves) without touching the membership.
			if _, ok := errors.AsType[*kgo.ErrGroupSession](err); ok {
				f.groupError(err)
			} else {
				f.cfg.Log.Debug("fleet coordination topic", "err", err)
			}
		})
	}
	// Drain first, then leave: the others start a pipeline only after it stopped here.
	f.mu.Lock()
	f.stopping = true
	all := make([]string, 0, len(f.running))
	for name := range f.running {
		all = append(all, name)
	}
	f.mu.Unlock()
	f.stop(all, "shutting down")
	cl.Close()
	f.wg.Wait()
	f.mu.Lock()
	f.joined = false
	f.mu.Unlock()
	f.report()
	return nil
}

// ClientIDPrefix starts the client id of a fleet member; the instance name follows.
const ClientIDPrefix = "cdcd-fleet/"

// groupError records why this instance is not in the group.
func (f *Fleet) groupError(err error) {
	msg := err.Error()
	if errors.Is(err, kerr.InconsistentGroupProtocol) {
		msg = fmt.Sprintf("another instance in fleet group %s runs different pipelines (this one: %d, mapping %s): every instance of a fleet "+
			"must have the same pipelines (fix: give every instance the same configuration; to change the pipelines, stop every instance, "+
			"then start them with the new configuration)", f.cfg.Group, len(f.order), Fingerprint(f.order))
	} else {
		msg = fmt.Sprintf("fleet group %s: %s (retrying)", f.cfg.Group, msg)
	}
	f.setProblem(msg)
}

// setProblem records (and logs, once) why this instance is not in the group.
func (f *Fleet) setProblem(msg string) {
	f.mu.Lock()
	changed := f.problem != msg
	f.problem = msg
	f.mu.Unlock()
	if changed {
		f.cfg.Log.Error("not in the fleet", "group", f.cfg.Group, "err", msg)
		f.report()
	}
}

// ensureTopic creates the coordination topic with a partition per pipeline, or adds
// partitions when the configuration has more pipelines than the topic.
func (f *Fleet) ensureTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(f.cfg.KafkaOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	n := int32(len(f.order))
	// Nothing is ever written to it: its partitions are only what the group hands out.
	resp, err := adm.CreateTopic(ctx, n, f.cfg.Replication, nil, f.cfg.Topic)
	if err == nil && resp.Err == nil {
		f.cfg.Log.Info("created the fleet coordination topic", "topic", f.cfg.Topic, "partitions", n)
		return nil
	}
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the fleet coordination topic %s: %w (fix: let cdcd create topics, or create it with %d partitions, one per pipeline)", f.cfg.Topic, err, n)
	}
	td, err := adm.ListTopics(ctx, f.cfg.Topic)
	if err != nil {
		return fmt.Errorf("describing the fleet coordination topic %s: %w", f.cfg.Topic, err)
	}
	t, ok := td[f.cfg.Topic]
	if !ok || t.Err != nil {
		return fmt.Errorf("describing the fleet coordination topic %s: %v", f.cfg.Topic, t.Err)
	}
	have := int32(len(t.Partitions))
	switch {
	case have < n:
		if _, err := adm.CreatePartitions(ctx, int(n-have), f.cfg.Topic); err != nil {
			return fmt.Errorf("adding partitions to the fleet coordination topic %s (%d, %d pipelines): %w", f.cfg.Topic, have, n, err)
		}
		f.cfg.Log.Info("added partitions to the fleet coordination topic", "topic", f.cfg.Topic, "from", have, "to", n)
	case have > n:
		f.cfg.Log.Info("the fleet coordination topic has more partitions than pipelines; the extra ones run nothing",
			"topic", f.cfg.Topic, "partitions", have, "pipelines", n)
	}
	return nil
}

// pipelines maps assigned partitions of the coordination topic to pipelines.
func (f *Fleet) pipelines(m map[string][]int32) []string {
	var out []string
	for _, p := range m[f.cfg.Topic] {
		if p >= 0 && int(p) < len(f.order) {
			out = append(out, f.order[p])
		}
	}
	sort.Strings(out)
	return out
}

// assigned starts the newly assigned pipelines. It does not wait for them: a start can take
// long (connecting, catching up), and the group must not wait for it.
func (f *Fleet) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	names := f.pipelines(m)
	f.mu.Lock()
	f.joined, f.problem = true, ""
	if f.stopping || f.runCtx == nil || f.runCtx.Err() != nil {
		f.mu.Unlock()
		f.report()
		return
	}
	for _, name := range names {
		if _, ok := f.running[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(f.runCtx)
		r := &run{cancel: cancel, done: make(chan struct{})}
		f.running[name] = r
		prev := f.draining[name]
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer close(r.done)
			if prev != nil {
				<-prev.done // the same pipeline still draining here: never two at once
			}
			f.cfg.Run(ctx, name)
		}()
	}
	f.mu.Unlock()
	if len(names) > 0 {
		f.cfg.Log.Info("fleet assigned pipelines to this instance", "group", f.cfg.Group, "pipelines", names)
	}
	f.report()
}

// revoked stops the pipelines the group moves elsewhere and returns once they stopped
// (drained), or DrainTimeout passed: only then does this member rejoin and the group hand them
// to their new owner. franz-go keeps heartbeating meanwhile (a cooperative revocation runs
// beside the heartbeat loop), and the rebalance timeout is longer than the drain.
func (f *Fleet) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if names := f.pipelines(m); len(names) > 0 {
		f.stop(names, "moved to another instance")
	}
}

// lost stops every pipeline after this member lost its session (it did not heartbeat in
// time, or the group fenced it): the group may already have given them to others, whose
// fencing makes this instance's transactions fail meanwhile.
func (f *Fleet) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	f.mu.Lock()
	f.joined = false
	f.mu.Unlock()
	if names := f.pipelines(m); len(names) > 0 {
		f.cfg.Log.Warn("lost the fleet session; stopping this instance's pipelines until the group assigns them again", "group", f.cfg.Group, "pipelines", names)
		f.stop(names, "fleet session lost")
	}
	f.report()
}

// stop cancels the named pipelines and waits until they stopped (at most DrainTimeout plus a
// little).
func (f *Fleet) stop(names []string, why string) {
	f.mu.Lock()
	var runs []*run
	var stopped []string
	for _, name := range names {
		if r, ok := f.running[name]; ok {
			r.cancel()
			runs = append(runs, r)
			stopped = append(stopped, name)
			delete(f.running, name)
			f.draining[name] = r
		}
	}
	f.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	t0 := time.Now()
	deadline := time.NewTimer(f.cfg.DrainTimeout + 2*time.Second)
	defer deadline.Stop()
	for i, r := range runs {
		select {
		case <-r.done:
			f.mu.Lock()
			if f.draining[stopped[i]] == r {
				delete(f.draining, stopped[i])
			}
			f.mu.Unlock()
		case <-deadline.C:
			f.cfg.Log.Warn("a pipeline did not stop within shutdown_timeout; its new owner fences it", "pipeline", stopped[i], "why", why)
			f.report()
			return
		}
	}
	f.cfg.Log.Info("fleet stopped pipelines on this instance", "group", f.cfg.Group, "pipelines", stopped, "why", why, "took", time.Since(t0).Round(time.Millisecond).String())
	f.report()
}

// Status returns this instance's state.
func (f *Fleet) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{Group: f.cfg.Group, Instance: f.cfg.Instance, Joined: f.joined, Problem: f.problem, Pipelines: []string{}}
	for name := range f.running {
		s.Pipelines = append(s.Pipelines, name)
	}
	sort.Strings(s.Pipelines)
	return s
}

// report tells OnChange the state; reports are serialized, so the last one told is current.
func (f *Fleet) report() {
	if f.cfg.OnChange == nil {
		return
	}
	f.reportMu.Lock()
	defer f.reportMu.Unlock()
	f.cfg.OnChange(f.Status())
}
