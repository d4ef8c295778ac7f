package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
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
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := describeFleet(ctx, cfg)
	if err != nil {
		return fmt.Errorf("describing fleet group %s: %w (fix: %s)", cfg.Fleet.Group, err, kafkaFix(cfg, err))
	}
	names := pipelineNames(cfg)
	fmt.Fprintf(stdout, "fleet group %s (topic %s): %s, %d instance(s), %d pipeline(s)\n", v.Group, cfg.Fleet.Topic, v.State, len(v.Members), len(names))
	if !v.Matches {
		fmt.Fprintf(stdout, "warning: the running instances have other pipelines than %s (their mapping %s, this file's %s): the names below follow this file\n",
			path, strings.TrimPrefix(v.Protocol, "cdcd-fleet-"), fleet.Fingerprint(names))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tHOST\tPIPELINES")
	for _, m := range v.Members {
		list := strings.Join(m.Pipelines, ", ")
		if list == "" {
			list = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Instance, m.Host, list)
	}
	_ = tw.Flush()
	if len(v.Unassigned) > 0 {
		fmt.Fprintf(stdout, "not running on any instance: %s\n", strings.Join(v.Unassigned, ", "))
		return &exitError{1, errUsageShown}
	}
	fmt.Fprintln(stdout, "every pipeline runs on one instance")
	return nil
}

func pipelineNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Pipelines))
	for i, p := range cfg.Pipelines {
		names[i] = p.Name
	}
	return names
}

// describeFleet describes the configuration's fleet group (fleet.Describe).
func describeFleet(ctx context.Context, cfg *config.Config) (fleet.View, error) {
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return fleet.View{}, err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fleet.View{}, err
	}
	defer cl.Close()
	return fleet.Describe(ctx, kadm.NewClient(cl), cfg.Fleet.Group, cfg.Fleet.Topic, pipelineNames(cfg))
}

// checkFleet checks, for cdcd check, that the fleet's group can be described and that its
// running instances (if any) have this file's pipelines, and says what happens to the
// coordination topic at start.
func checkFleet(ctx context.Context, cfg *config.Config, rep *checks.Scoped) {
	names := pipelineNames(cfg)
	v, err := describeFleet(ctx, cfg)
	switch {
	case err != nil:
		rep.Fail("group", fmt.Sprintf("describing group %s: %v", cfg.Fleet.Group, err),
			"grant the principal READ and DESCRIBE on group "+cfg.Fleet.Group+"; "+kafkaFix(cfg, err))
		return
	case len(v.Members) == 0:
		rep.OK("group", fmt.Sprintf("no instance runs yet (state %s)", v.State))
	case !v.Matches:
		rep.Fail("group", fmt.Sprintf("the %d running instance(s) have other pipelines (mapping %s, this file's %s): Kafka refuses an instance with this file while they run",
			len(v.Members), strings.TrimPrefix(v.Protocol, "cdcd-fleet-"), fleet.Fingerprint(names)),
			"give every instance the same pipelines; to change them, stop every instance, then start them all with the new file")
	default:
		rep.OK("group", fmt.Sprintf("%d instance(s) running this file's pipelines (state %s)", len(v.Members), v.State))
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, cfg.Fleet.Topic)
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
