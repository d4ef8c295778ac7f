package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/topics"
	"github.com/cdcd-dev/cdcd/window"
	"github.com/twmb/franz-go/pkg/sr"
)

// windowLagInterval is how often a window job's consumer lag is measured against the brokers.
const windowLagInterval = 10 * time.Second

// windowRunner is one configured window job: the job (which retries what is retriable itself
// and returns only on a fatal error or when ctx ends) and its lag watcher, which lives as long
// as the process: lag matters most while the job is down.
type windowRunner struct {
	name  string
	run   func(context.Context) error
	watch func(context.Context)
}

// newWindowJob builds the runner of one configured window job.
func newWindowJob(cfg *config.Config, w *config.Window, log *slog.Logger, hr *health.Registry, wm *metrics.WindowJobs) (*windowRunner, error) {
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return nil, err
	}
	spec, err := w.Spec()
	if err != nil {
		return nil, err
	}
	srcl, err := registryClient(cfg)
	if err != nil {
		return nil, err
	}
	instance := w.InstanceID
	if instance == "" {
		if instance, err = os.Hostname(); err != nil || instance == "" {
			return nil, fmt.Errorf("window job %s: instance_id is not set and the hostname is unknown (%v) (fix: set instance_id, different for every instance)", w.Name, err)
		}
	}
	hr.SetWindow(w.Name, "starting", "not connected yet")
	wm.Ready.WithLabelValues(w.Name).Set(0)
	wm.Failed.WithLabelValues(w.Name).Set(0)
	job, err := window.New(window.Config{Spec: spec, KafkaOpts: kopts, Registry: srcl, InstanceID: instance,
		Partitions: int32(w.Partitions), OutputPartitions: int32(cfg.Kafka.TopicPartitions), Replication: int16(cfg.Kafka.TopicReplicationFactor),
		TransactionTimeout: cfg.Kafka.TransactionTimeout.D, CommitInterval: w.CommitInterval.D,
		SessionTimeout: w.SessionTimeout.D, StaticMembership: w.StaticMembership, MaxStateBytes: w.State.MaxBytes.N,
		MaxMessageBytes: int(cfg.Kafka.MaxMessageBytes.N), Log: log, // it adds window_job
		OnTransaction: func(committed bool, took time.Duration) { wm.ObserveTransaction(w.Name, committed, took) },
		OnState: func(phase, reason string) {
			hr.SetWindow(w.Name, phase, reason)
			wm.Ready.WithLabelValues(w.Name).Set(boolGauge(phase == "running"))
			wm.Failed.WithLabelValues(w.Name).Set(boolGauge(phase == "failed"))
		}})
	if err != nil {
		return nil, fmt.Errorf("window job %s: %w", w.Name, err)
	}
	wm.Add(w.Name, func() metrics.WindowStats {
		s := job.Stats()
		return metrics.WindowStats{RecordsIn: s.RecordsIn, RecordsOut: s.RecordsOut, RecordsLate: s.RecordsLate, DeadLetters: s.DeadLetters,
			Commits: s.Commits, Aborts: s.Aborts, OpenWindows: s.OpenWindows, StateBytes: s.StateBytes, StreamTime: s.StreamTime,
			RestoredRecords: s.RestoredRecords, RestoredBytes: s.RestoredBytes, RestoringPartitions: s.RestoringPartitions,
			RestoreRemaining: s.RestoreRemaining, StateMaxBytes: w.State.MaxBytes.N}
	})
	lag := window.NewLagWatcher(w.Name, append(append([]string{}, spec.Topics...), window.RepartitionTopic(w.Name)), kopts, windowLagInterval,
		log.With("window_job", w.Name), func(r window.LagReport) { reportLag(wm, w.Name, r) })
	return &windowRunner{name: w.Name, run: job.Run, watch: lag.Run}, nil
}

// reportLag sets the lag gauges of window job job.
func reportLag(wm *metrics.WindowJobs, job string, r window.LagReport) {
	for _, p := range r.Partitions {
		wm.ConsumerLag.WithLabelValues(job, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(p.Records))
	}
	wm.ConsumerLagSeconds.WithLabelValues(job).Set(r.Behind.Seconds())
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// registryClient is the schema registry client, built as the pipelines' encoders build theirs.
func registryClient(cfg *config.Config) (*sr.Client, error) {
	srOpts := []sr.ClientOpt{sr.URLs(cfg.SchemaRegistry.URL), sr.HTTPClient(&http.Client{Timeout: cfg.SchemaRegistry.Timeout.D}),
		sr.UserAgent("cdcd/" + version)}
	if cfg.SchemaRegistry.Username != "" {
		srOpts = append(srOpts, sr.BasicAuth(cfg.SchemaRegistry.Username, cfg.SchemaRegistry.Password))
	}
	srcl, err := sr.NewClient(srOpts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return srcl, nil
}

// checkTopics refuses a configuration in which two writers share a topic: every pipeline
// topic (package topics) and every topic a window job writes (results, late records and its
// internal topics).
func checkTopics(cfg *config.Config) error {
	uses := topics.Uses(cfg)
	for _, w := range cfg.Windows {
		fix := fmt.Sprintf("give window job %s output, late and dead-letter topics of its own", w.Name)
		uses = append(uses,
			encode.TopicUse{Topic: w.Output.Topic, What: fmt.Sprintf("the output of window job %s", w.Name), Fix: fix},
			encode.TopicUse{Topic: w.Late.Topic, What: fmt.Sprintf("the late topic of window job %s", w.Name), Fix: fix},
			encode.TopicUse{Topic: window.RepartitionTopic(w.Name), What: fmt.Sprintf("the repartition topic of window job %s", w.Name), Fix: "rename the other writer's topic: cdcd-window.* is cdcd's"},
			encode.TopicUse{Topic: window.ChangelogTopic(w.Name), What: fmt.Sprintf("the changelog of window job %s", w.Name), Fix: "rename the other writer's topic: cdcd-window.* is cdcd's"})
		if w.DLQ.Topic != "" {
			uses = append(uses, encode.TopicUse{Topic: w.DLQ.Topic, What: fmt.Sprintf("the dead-letter topic of window job %s", w.Name), Fix: fix})
		}
	}
	return encode.CheckTopics(uses)
}
