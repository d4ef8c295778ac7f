package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Commit makes the open batch durable with its offsets record, then acknowledges the source.
// The offsets record carries the committed state forward: its AckPosition is that of the last
// complete transaction, or, while the batch holds only part of one, the previous state's
// (which, from a new pipeline's first commit on, is at least the slot's starting point).
func (s *Sink) Commit(ctx context.Context) error {
	b := &s.batch
	if !b.open {
		return nil
	}
	off := offsets.Record{Pos: b.lastPos, Complete: b.tail == 0, AckPosition: s.committed.AckPosition, CommitTime: s.committed.CommitTime,
		WrittenAt: time.Now().UTC(), DeadKeys: s.deadKeys, Snapshot: s.committed.Snapshot}
	if b.state != nil {
		off.Snapshot = b.state
	}
	if c := b.lastComplete; c != nil {
		off.AckPosition, off.CommitTime = max(c.AckPosition, s.committed.AckPosition), c.Time
	}
	t0 := time.Now()
	// A commit that cannot finish within the transaction timeout will be aborted by the broker
	// anyway: give up then and let the supervisor start over (and say so in the log). A
	// shutdown does not interrupt it: it runs under the produce context, which lasts until
	// the drain deadline, so the batch still commits and its acknowledgement reaches the
	// source's last status update.
	ctx, cancel := s.commitContext(ctx, max(s.cfg.TransactionTimeout, 5*time.Second))
	defer cancel()
	offRec := off.KafkaRecord(s.cfg.OffsetsTopic, s.cfg.Pipeline)
	if s.cfg.ExactlyOnce {
		s.produce(offRec)
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.errMu.Lock()
	perr := s.firstErr
	s.errMu.Unlock()
	if perr != nil {
		s.countKafkaError("produce")
		s.abort(ctx)
		if errors.Is(perr, kerr.MessageTooLarge) && !s.cfg.DeadLetter {
			return &PoisonError{Pipeline: s.cfg.Pipeline, Table: "(see position)", Key: "(unknown)", Pos: off.Pos,
				Err: fmt.Errorf("the broker refused records at %v as too large (MESSAGE_TOO_LARGE): raise the topic's max.message.bytes, or use on_error: dlq", s.mem.tooLargePositions())}
		}
		return &KafkaError{fmt.Errorf("producing records: %w", perr)}
	}
	if s.cfg.ExactlyOnce {
		if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			s.countTxn("abort")
			s.countKafkaError("commit")
			// The outcome may be unknown (the commit can succeed although this errs): the next
			// session reads the offsets topic and resumes after whatever did commit.
			return &KafkaError{fmt.Errorf("committing kafka transaction: %w", err)}
		}
	} else {
		// at_least_once: the position is written only after every record was acknowledged.
		if err := s.cl.ProduceSync(ctx, offRec).FirstErr(); err != nil {
			return &KafkaError{fmt.Errorf("writing position: %w", err)}
		}
	}
	now := time.Now()
	s.countTxn("commit")
	if m := s.cfg.Metrics; m != nil {
		name := s.cfg.Pipeline
		m.CommitDuration.WithLabelValues(name).Observe(now.Sub(t0).Seconds())
		e2e := m.EndToEnd.WithLabelValues(name)
		for _, ct := range b.commitTimes {
			e2e.Observe(max(0, now.Sub(ct).Seconds()))
		}
		for k, c := range b.counts {
			m.EventsPublished.WithLabelValues(name, k.table.QualifiedName(), k.op.Name()).Add(float64(c.events))
			m.BytesPublished.WithLabelValues(name, k.table.QualifiedName(), k.op.Name()).Add(float64(c.bytes))
		}
		if !off.CommitTime.IsZero() {
			m.LastCommitted.WithLabelValues(name).Set(float64(off.CommitTime.UnixNano()) / 1e9)
		}
		for _, d := range b.deadLetters {
			m.DeadLetters.WithLabelValues(name, d.table, d.class).Inc()
		}
	}
	s.mem.published.Add(uint64(b.events))
	s.pendingSince.Store(0)
	if off.AckPosition > 0 {
		s.cfg.Ack(off.AckPosition)
	}
	s.committed = off
	s.deadKeys = clone(off.DeadKeys)
	var worst time.Duration
	if s.cfg.Latency != nil && len(b.commitTimes) > 0 {
		oldest := slices.MinFunc(b.commitTimes, time.Time.Compare)
		worst = max(now.Sub(oldest), time.Nanosecond)
	}
	s.resetBatch()
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit()
	}
	if worst > 0 {
		s.cfg.Latency(worst)
	}
	return nil
}

// commitContext is ctx without its cancellation, bounded by timeout and ctx's deadline, and
// ending with the produce context (at the drain deadline after a shutdown, or on Close).
func (s *Sink) commitContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	stop := context.AfterFunc(s.prodCtx, cancel)
	return c, func() { stop(); cancel() }
}

func (s *Sink) abort(ctx context.Context) {
	if s.cfg.ExactlyOnce {
		_ = s.cl.AbortBufferedRecords(ctx)
		_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
		s.countTxn("abort")
	}
	s.deadKeys = clone(s.committed.DeadKeys)
	s.resetBatch()
}

// resetBatch empties the batch. An aborted batch's changes are still pending (they replay), so
// only a commit clears pendingSince.
func (s *Sink) resetBatch() {
	s.batch.reset()
	s.errMu.Lock()
	s.firstErr = nil
	s.errMu.Unlock()
}

func (s *Sink) countKafkaError(kind string) {
	if m := s.cfg.Metrics; m != nil {
		m.KafkaErrors.WithLabelValues(s.cfg.Pipeline, kind).Inc()
	}
}

func (s *Sink) countTxn(outcome string) {
	if m := s.cfg.Metrics; m != nil {
		m.Transactions.WithLabelValues(s.cfg.Pipeline, outcome).Inc()
	}
}
