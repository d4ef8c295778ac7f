package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/publish"
)

// Readiness tells the truth about delivery, not about connections:
//   - A pipeline that holds work Kafka has not committed for kafkaStallAfter is unready with
//     the condition "kafka" (Kafka named as the cause), logged once, until a commit succeeds.
//   - After a failed attempt, a new session that holds the stream again is "resuming", not
//     ready, until it commits to Kafka or has stayed idle (nothing received, nothing pending)
//     for kafkaStallAfter: a retry that is about to fail the same way must not flap /readyz
//     to 200.
type readiness struct {
	recovering   atomic.Bool  // the last attempt failed; not ready until a commit (or idle)
	lastFailure  atomic.Value // string: the last attempt's error, for the reason
	kafkaStalled atomic.Bool  // the "kafka" condition is set
}

// kafkaStallAfter is how long uncommitted work may wait before the pipeline is unready: a
// quarter of the transaction timeout (15 s by default), well before the broker aborts the
// transaction and long after a healthy commit (milliseconds).
func (p *Pipeline) kafkaStallAfter() time.Duration {
	return max(p.cfg.Sink.TransactionTimeout/4, time.Second)
}

// attemptFailed records that a session failed with err and will be retried.
func (p *Pipeline) attemptFailed(err error) {
	p.ready.lastFailure.Store(err.Error())
	p.ready.recovering.Store(true)
}

// streamStarted reports the session's stream as held: ready, unless the last attempt failed.
func (p *Pipeline) streamStarted() {
	if !p.ready.recovering.Load() {
		p.setHealth(true, "streaming", "")
		return
	}
	last, _ := p.ready.lastFailure.Load().(string)
	p.setHealth(false, "resuming", fmt.Sprintf("streaming again after a failed attempt (%s); ready after the first Kafka commit", last))
}

// committed runs after every Kafka commit (session goroutine).
func (p *Pipeline) committed() {
	if p.ready.kafkaStalled.CompareAndSwap(true, false) {
		p.setCondition("kafka", "")
		p.log.Info("kafka commits again")
	}
	if p.ready.recovering.CompareAndSwap(true, false) {
		p.setHealth(true, "streaming", "")
		p.log.Info("pipeline ready again: committed to Kafka after the failed attempt")
	}
}

// watchReadiness runs beside a session's sink loop until ctx ends: it marks Kafka as the cause
// when work waits uncommitted for too long, and makes a resuming pipeline ready once it has
// been idle for as long. lastItem is when the sink loop last received items (unix nanos).
func (p *Pipeline) watchReadiness(ctx context.Context, sink *publish.Sink, started time.Time, lastItem *atomic.Int64) {
	after := p.kafkaStallAfter()
	tick := time.NewTicker(max(after/5, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if since := sink.PendingSince(); !since.IsZero() && now.Sub(since) >= after && p.ready.kafkaStalled.CompareAndSwap(false, true) {
				reason := fmt.Sprintf("kafka: nothing committed for %s although changes wait (since %s): the brokers do not accept the transaction; check kafka.brokers, the brokers' health and cdcd_kafka_errors_total",
					now.Sub(since).Round(time.Second), since.UTC().Format(time.RFC3339))
				p.setCondition("kafka", reason)
				p.log.Warn("kafka does not commit: pipeline unready", "waiting_since", since.UTC().Format(time.RFC3339), "stall_after", after.String())
			}
			last := max(started.UnixNano(), lastItem.Load())
			if p.ready.recovering.Load() && sink.PendingSince().IsZero() && now.Sub(time.Unix(0, last)) >= after &&
				p.ready.recovering.CompareAndSwap(true, false) {
				p.setHealth(true, "streaming", "")
				p.log.Info("pipeline ready again: streaming, nothing to commit")
			}
		}
	}
}

func (p *Pipeline) setCondition(name, reason string) {
	if p.cfg.Health != nil {
		p.cfg.Health.SetCondition(p.cfg.Name, name, reason)
	}
}
