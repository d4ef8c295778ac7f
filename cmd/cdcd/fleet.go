package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/fleet"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// fleetInstance is this instance's name in its fleet: fleet.instance, else the host name (a
// pod's name in Kubernetes).
func fleetInstance(cfg *config.Config) string {
	if cfg.Fleet.Instance != "" {
		return cfg.Fleet.Instance
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "cdcd"
}

// startFleet joins the fleet group (on g) and runs the pipelines the group assigns to this
// instance, each built afresh when assigned: a pipeline that moves away and back starts clean.
// Every pipeline is built once first, so a configuration it refuses fails at start.
func startFleet(ctx context.Context, g *errgroup.Group, cfg *config.Config, d deps, reg prometheus.Registerer, stderr io.Writer) error {
	byName := map[string]*config.Pipeline{}
	names := make([]string, 0, len(cfg.Pipelines))
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		if _, err := newPipeline(cfg, p, d); err != nil {
			return fmt.Errorf("pipeline %s: %w", p.Name, err)
		}
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	fm := fleet.NewMetrics(reg)
	instance := fleetInstance(cfg)
	log := d.log.With("fleet", cfg.Fleet.Group, "instance", instance)
	fl := fleet.New(fleet.Config{
		KafkaOpts: kopts, Group: cfg.Fleet.Group, Topic: cfg.Fleet.Topic, Instance: instance, Pipelines: names,
		Replication: int16(cfg.Kafka.TopicReplicationFactor), SessionTimeout: cfg.Fleet.SessionTimeout.D,
		HeartbeatInterval: cfg.Fleet.HeartbeatInterval.D, DrainTimeout: cfg.ShutdownTimeout.D, Log: log,
		OnChange: func(s fleet.Status) {
			fm.Observe(s)
			d.health.SetFleet(health.Fleet{Group: s.Group, Instance: s.Instance, Joined: s.Joined, Pipelines: s.Pipelines, Problem: s.Problem})
		},
		Run: func(ctx context.Context, name string) {
			defer exitOnPanic(stderr)
			runAssigned(ctx, cfg, byName[name], d, stderr)
		},
	})
	d.health.SetFleet(health.Fleet{Group: cfg.Fleet.Group, Instance: instance})
	g.Go(func() error {
		defer exitOnPanic(stderr)
		if err := fl.Run(ctx); err != nil {
			log.Error("fleet mode stopped; this instance runs no pipeline", "err", err)
		}
		return nil
	})
	return nil
}

// runAssigned runs one pipeline the fleet assigned to this instance, with its watchers, until
// ctx ends (the pipeline moved, or cdcd stops). A pipeline that stops on a fatal error stays
// stopped and unready here until then, as without a fleet.
func runAssigned(ctx context.Context, cfg *config.Config, p *config.Pipeline, d deps, stderr io.Writer) {
	d.health.Add(p.Name)
	defer d.health.Remove(p.Name)
	// Its gauges go with it: the instance that runs it next reports them.
	defer metrics.ForgetGauges(p.Name, d.metrics, d.mysql)
	pd := d
	pd.log = d.log.With("pipeline", p.Name)
	r, err := newPipeline(cfg, p, pd)
	if err != nil {
		d.health.Set(p.Name, false, "failed", err.Error())
		pd.log.Error("pipeline stopped; fix the cause and restart cdcd", "err", err)
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	for _, w := range r.watch {
		wg.Go(func() { defer exitOnPanic(stderr); w(ctx) })
	}
	if err := r.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		pd.log.Error("pipeline stopped; fix the cause and restart cdcd", "err", err)
	}
	<-ctx.Done()
	wg.Wait()
}

func init() {
	// cdcd fleet status, listed before healthcheck.
	c := &command{
		name: "fleet status", args: "--config FILE",
		summary: "print which instance of the fleet runs which pipeline",
		help: `Describes the fleet's consumer group (fleet.group) and prints each instance with the
pipelines the group assigned to it, and the pipelines no instance runs. Exits 1 when a pipeline
is assigned to no instance (the group is rebalancing, or no instance runs), 0 otherwise.`,
		example: "cdcd fleet status --config /etc/cdcd/cdcd.yaml",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "fleet status")
				if err != nil {
					return err
				}
				return fleetStatus(ctx, path, stdout)
			}
		},
	}
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == "healthcheck" })
	if i < 0 {
		i = len(commands)
	}
	commands = slices.Insert(commands, i, c)
}

// fleetStatus prints the assignment of the fleet's group: instance by instance, then what no
// instance runs.
func fleetStatus(ctx context.Context, path string, stdout io.Writer) error {
	cfg, err := loadValid(path)
	if err != nil {
		return err
	}
	if !cfg.Fleet.Enabled {
		return &exitError{1, fmt.Errorf("%s: fleet mode is off (fix: set fleet.enabled: true and fleet.group, as every instance of the fleet has them)", path)}
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	groups, err := describeFleetGroup(ctx, kadm.NewClient(cl), cfg.Fleet.Group)
	if err != nil {
		return fmt.Errorf("describing fleet group %s: %w (fix: %s)", cfg.Fleet.Group, err, kafkaFix(cfg, err))
	}
	gr := groups[cfg.Fleet.Group]
	names := make([]string, len(cfg.Pipelines))
	for i, p := range cfg.Pipelines {
		names[i] = p.Name
	}
	order := fleet.Order(names)
	fmt.Fprintf(stdout, "fleet group %s (topic %s): %s, %d instance(s), %d pipeline(s)\n", cfg.Fleet.Group, cfg.Fleet.Topic, strings.ToLower(gr.State), len(gr.Members), len(order))
	if want := fleet.ProtocolName(order); gr.Protocol != "" && gr.Protocol != want {
		fmt.Fprintf(stdout, "warning: the running instances have other pipelines than %s (their mapping %s, this file's %s): the names below follow this file\n",
			path, strings.TrimPrefix(gr.Protocol, "cdcd-fleet-"), fleet.Fingerprint(order))
	}
	owner := map[string]string{}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tHOST\tPIPELINES")
	members := slices.Clone(gr.Members)
	slices.SortFunc(members, func(a, b kadm.DescribedGroupMember) int { return strings.Compare(a.ClientID, b.ClientID) })
	for _, m := range members {
		instance := strings.TrimPrefix(m.ClientID, fleet.ClientIDPrefix)
		var ps []string
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic != cfg.Fleet.Topic {
					continue
				}
				for _, p := range t.Partitions {
					if p >= 0 && int(p) < len(order) {
						ps = append(ps, order[p])
						owner[order[p]] = instance
					}
				}
			}
		}
		sort.Strings(ps)
		list := strings.Join(ps, ", ")
		if list == "" {
			list = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", instance, strings.TrimPrefix(m.ClientHost, "/"), list)
	}
	_ = tw.Flush()
	var unassigned []string
	for _, p := range order {
		if _, ok := owner[p]; !ok {
			unassigned = append(unassigned, p)
		}
	}
	if len(unassigned) > 0 {
		fmt.Fprintf(stdout, "not running on any instance: %s\n", strings.Join(unassigned, ", "))
		return &exitError{1, errUsageShown}
	}
	fmt.Fprintln(stdout, "every pipeline runs on one instance")
	return nil
}

// checkFleet checks, for cdcd check, that the fleet's group can be described and that its
// running instances (if any) have this file's pipelines, and says what happens to the
// coordination topic at start.
func checkFleet(ctx context.Context, cfg *config.Config, rep *checks.Scoped) {
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		rep.Fail("client", err.Error(), "fix the kafka section")
		return
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		rep.Fail("client", err.Error(), "fix the kafka section")
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := make([]string, len(cfg.Pipelines))
	for i, p := range cfg.Pipelines {
		names[i] = p.Name
	}
	groups, err := describeFleetGroup(ctx, adm, cfg.Fleet.Group)
	if err != nil {
		rep.Fail("group", fmt.Sprintf("describing group %s: %v", cfg.Fleet.Group, err),
			"grant the principal READ and DESCRIBE on group "+cfg.Fleet.Group+"; "+kafkaFix(cfg, err))
		return
	}
	gr := groups[cfg.Fleet.Group]
	want := fleet.ProtocolName(names)
	switch {
	case len(gr.Members) == 0:
		rep.OK("group", fmt.Sprintf("no instance runs yet (state %s)", strings.ToLower(gr.State)))
	case gr.Protocol != want:
		rep.Fail("group", fmt.Sprintf("the %d running instance(s) have other pipelines (mapping %s, this file's %s): Kafka refuses an instance with this file while they run",
			len(gr.Members), strings.TrimPrefix(gr.Protocol, "cdcd-fleet-"), fleet.Fingerprint(names)),
			"give every instance the same pipelines; to change them, stop every instance, then start them all with the new file")
	default:
		rep.OK("group", fmt.Sprintf("%d instance(s) running this file's pipelines (state %s)", len(gr.Members), strings.ToLower(gr.State)))
	}
	td, err := adm.ListTopics(ctx, cfg.Fleet.Topic)
	t, ok := td[cfg.Fleet.Topic]
	switch {
	case err != nil:
		rep.Fail("topic", fmt.Sprintf("describing %s: %v", cfg.Fleet.Topic, err), kafkaFix(cfg, err))
	case !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition):
		rep.OK("topic", fmt.Sprintf("%s does not exist yet: the first instance creates it with %d partitions (the principal needs CREATE)", cfg.Fleet.Topic, len(names)))
	case t.Err != nil:
		rep.Fail("topic", fmt.Sprintf("describing %s: %v", cfg.Fleet.Topic, t.Err), "grant the principal DESCRIBE and READ on topic "+cfg.Fleet.Topic)
	case len(t.Partitions) < len(names):
		rep.Warn("topic", fmt.Sprintf("%s has %d partitions for %d pipelines", cfg.Fleet.Topic, len(t.Partitions), len(names)),
			"nothing to do: the first instance with this file adds them (the principal needs ALTER on the topic)")
	default:
		rep.OK("topic", fmt.Sprintf("%s has %d partitions for %d pipelines", cfg.Fleet.Topic, len(t.Partitions), len(names)))
	}
}

// describeFleetGroup describes the fleet's group; a group that does not exist (no instance
// ever ran, or all left long ago) is an empty one.
func describeFleetGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedGroups, error) {
	groups, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = groups.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.DescribedGroups{group: {Group: group, State: "Empty"}}, nil
	}
	return groups, err
}
