package window

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LagWatcher measures a window job's consumer lag against the brokers, not the job, so a job
// that is stuck, failed or not running at all still shows its lag growing. It shares the job's
// group-lag computation (GroupLag: GroupPositions, NoCommittedData).
//
// Records: per partition of the job's inputs and repartition topic, the last stable offset
// minus the group's committed offset (kafka-consumer-groups' number, read_committed). A
// read_committed consumer never commits past the commit markers and aborted records at the end
// of a transactional topic, so a partition that stays at the same non-zero lag is checked once
// for committed data in that range; if it holds none, its lag is 0.
//
// Behind: how long ago the end offset stood where the committed offset is now (the time the
// job is behind, estimated from the ends seen at earlier measurements); 0 when caught up.
type LagWatcher struct {
	job      string
	topics   []string
	lag      *GroupLag
	interval time.Duration
	log      *slog.Logger
	report   func(LagReport)

	parts   map[lagPartition]*lagHistory
	failing bool // the last measurement failed (logged once per streak)
}

// LagReport is one measurement of a LagWatcher.
type LagReport struct {
	Partitions []PartitionLag
	Behind     time.Duration
}

// PartitionLag is the committed records the group has not consumed in one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Records   int64
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

// lagHistoryLen bounds the ends kept per partition: at a 10 s interval, an hour.
const lagHistoryLen = 360

// NewLagWatcher returns the lag watcher of window job job, measuring every interval and
// handing each measurement to report.
func NewLagWatcher(job string, topics []string, kopts []kgo.Opt, interval time.Duration, log *slog.Logger, report func(LagReport)) *LagWatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LagWatcher{job: job, topics: append([]string{}, topics...), lag: NewGroupLag(kopts, GroupID(job)), interval: interval,
		log: log, report: report, parts: map[lagPartition]*lagHistory{}}
}

// Run measures until ctx ends.
func (l *LagWatcher) Run(ctx context.Context) {
	defer l.lag.Close()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if err := l.Measure(ctx, time.Now()); err != nil {
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

// Measure takes one measurement at now and reports it (nothing when it fails).
func (l *LagWatcher) Measure(ctx context.Context, now time.Time) error {
	mctx, cancel := context.WithTimeout(ctx, l.interval)
	defer cancel()
	pos, err := l.lag.Positions(mctx, l.topics)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil // the job has not created its topics yet (it waits for its input)
	}
	if err != nil {
		return err
	}
	var r LagReport
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
			empty, err := l.lag.NoCommittedData(mctx, []Range{e.Behind()}, 2*time.Second)
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
		r.Partitions = append(r.Partitions, PartitionLag{Topic: e.Topic, Partition: e.Partition, Records: lag})
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
			r.Behind = max(r.Behind, behind)
		}
		h.ends = append(h.ends, lagEnd{now, e.End})
		if len(h.ends) > lagHistoryLen {
			h.ends = h.ends[1:]
		}
	}
	l.report(r)
	return nil
}
