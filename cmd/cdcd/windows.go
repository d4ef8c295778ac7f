package main

import (
	"context"
	"errors"
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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
	lag := &lagWatcher{job: w.Name, log: log.With("window_job", w.Name), topics: append(append([]string{}, spec.Topics...), window.RepartitionTopic(w.Name)),
		kopts: kopts, metrics: wm, interval: windowLagInterval}
	return &windowRunner{name: w.Name, run: job.Run, watch: lag.run}, nil
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

// lagWatcher measures a window job's consumer lag against the brokers, not the job, so a job
// that is stuck, failed or not running at all still shows its lag growing.
//
// Records: per partition of the job's inputs and repartition topic, the last stable offset
// minus the group's committed offset (kafka-consumer-groups' number, read_committed). A
// read_committed consumer never commits past the commit markers and aborted records at the end
// of a transactional topic, so a partition that stays at the same non-zero lag is checked once
// for committed data in that range; if it holds none, its lag is 0.
//
// Seconds: how long ago the end offset stood where the committed offset is now (the time the
// job is behind, estimated from the ends seen at earlier measurements); 0 when caught up.
type lagWatcher struct {
	job      string
	topics   []string
	kopts    []kgo.Opt
	metrics  *metrics.WindowJobs
	log      *slog.Logger
	interval time.Duration

	parts   map[lagPartition]*lagHistory
	failing bool // the last measurement failed (logged once per streak)
}

type lagPartition struct {
	topic     string
	partition int32
}

type lagHistory struct {
	ends           []lagEnd // earlier measurements, oldest first, at most lagHistoryLen
	committed, end int64    // at the last measurement
	empty          bool     // [committed, end) holds no committed data record
}

type lagEnd struct {
	at  time.Time
	end int64
}

// lagHistoryLen bounds the ends kept per partition: at windowLagInterval, an hour.
const lagHistoryLen = 360

func (l *lagWatcher) run(ctx context.Context) {
	l.parts = map[lagPartition]*lagHistory{}
	cl, err := kgo.NewClient(l.kopts...)
	if err != nil {
		l.log.Error("window job lag cannot be measured", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if err := l.measure(ctx, adm, time.Now()); err != nil {
			if ctx.Err() == nil && !l.failing {
				l.log.Warn("measuring the window job's consumer lag failed; cdcd_window_consumer_lag_* keep their last values", "err", err)
			}
			l.failing = true
		} else {
			l.failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *lagWatcher) measure(ctx context.Context, adm *kadm.Client, now time.Time) error {
	mctx, cancel := context.WithTimeout(ctx, l.interval)
	defer cancel()
	pos, err := window.GroupPositions(mctx, adm, window.GroupID(l.job), l.topics)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil // the job has not created its topics yet (it waits for its input)
	}
	if err != nil {
		return err
	}
	var worst time.Duration
	for _, e := range pos {
		committed := e.Committed
		key := lagPartition{e.Topic, e.Partition}
		h := l.parts[key]
		if h == nil {
			h = &lagHistory{committed: -1}
			l.parts[key] = h
		}
		if h.committed != committed || h.end != e.End {
			h.empty = false
		} else if !h.empty && e.End > committed {
			// Unchanged since the last measurement: commit markers and aborted records only?
			empty, err := window.NoCommittedData(mctx, l.kopts, []window.Range{e.Behind()}, 2*time.Second)
			if err != nil {
				return err
			}
			h.empty = empty
		}
		h.committed, h.end = committed, e.End
		lag := max(e.End-committed, 0)
		if h.empty {
			lag = 0
		}
		l.metrics.ConsumerLag.WithLabelValues(l.job, e.Topic, strconv.Itoa(int(e.Partition))).Set(float64(lag))
		if lag > 1 { // 1: the commit marker of a transaction that is still being read
			var behind time.Duration // unknown at the first measurement
			if len(h.ends) > 0 {
				behind = now.Sub(h.ends[0].at) // at least as old as the oldest end seen, if none is reached
			}
			for i := len(h.ends) - 1; i >= 0; i-- {
				if h.ends[i].end <= committed+1 {
					behind = now.Sub(h.ends[i].at)
					break
				}
			}
			worst = max(worst, behind)
		}
		h.ends = append(h.ends, lagEnd{now, e.End})
		if len(h.ends) > lagHistoryLen {
			h.ends = h.ends[1:]
		}
	}
	l.metrics.ConsumerLagSeconds.WithLabelValues(l.job).Set(worst.Seconds())
	return nil
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
