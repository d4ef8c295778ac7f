// Package pipeline wires one pipeline: source -> encode -> publish -> ack, under a supervisor
// that retries what is retriable and stops on what is not.
//
// The delivery contract (exactly_once):
//   - Records of whole source transactions are produced inside one Kafka transaction together
//     with the pipeline's offsets record; only a source transaction too large for one Kafka
//     transaction is split, and then the offsets record names the last published event.
//   - The source is acknowledged only after the Kafka transaction committed, and only up to
//     the end of the last complete source transaction.
//   - Every session starts from the committed offsets record (read_committed, after fencing
//     older producers with the pipeline's stable transactional id) and drops what it covers.
//
// A failure ends the session; the supervisor starts a new one after a backoff. Nothing is
// carried over between sessions except the committed offsets, which is what makes a crash, a
// broker outage and an unknown transaction outcome all recover the same way.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/publish"
	"github.com/cdcd-dev/cdcd/supervise"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Source is what a pipeline needs of a database source.
type Source interface {
	// Run streams committed transactions as Items into out until ctx ends or it fails.
	Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) error
	// Ack reports that everything up to the acknowledgement position pos
	// (change.Commit.AckPosition) is durable in Kafka.
	Ack(pos uint64)
}

// Config of one pipeline.
type Config struct {
	Name string
	// Sink configures the Kafka transaction sink. Its Pipeline, Ack, OnCommit, Log and
	// Metrics are filled in by the pipeline; its DrainTimeout bounds the final commit on
	// shutdown (see DrainTimes).
	Sink           publish.Config
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxAttempts    int // 0 = forever
	// StandbyInterval is how often a standby checks whether the slot became free.
	StandbyInterval time.Duration

	Log     *slog.Logger
	Metrics *metrics.Metrics
	Health  *health.Registry
}

// DrainTimes splits shutdown_timeout between the pipeline's final Kafka commit (sink) and the
// source's final status update (source), which comes after it and carries the commit's
// acknowledgement; what is left (a twentieth) is for closing connections. The default 10 s
// gives 7.5 s and 2 s.
func DrainTimes(shutdown time.Duration) (sink, source time.Duration) {
	return shutdown * 3 / 4, shutdown / 5
}

// TransactionalID is the pipeline's stable Kafka transactional id: a restarted or second
// instance of the pipeline fences the old producer.
func TransactionalID(pipeline string) string { return publish.TransactionalID(pipeline) }

// Pipeline runs one source into Kafka.
type Pipeline struct {
	cfg Config
	src Source
	enc *encode.Encoder
	log *slog.Logger
	mem *publish.Memory // what the sink remembers across sessions

	ready readiness
}

// Published is how many events the pipeline has committed to Kafka since it started.
func (p *Pipeline) Published() uint64 { return p.mem.Published() }

// New returns a pipeline; it connects to nothing until Run.
func New(cfg Config, src Source, enc *encode.Encoder) *Pipeline {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StandbyInterval <= 0 {
		cfg.StandbyInterval = 5 * time.Second
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.InitialBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Sink.DLQMaxMessageBytes < cfg.Sink.MaxMessageBytes {
		cfg.Sink.DLQMaxMessageBytes = cfg.Sink.MaxMessageBytes
	}
	if cfg.Sink.DrainTimeout <= 0 {
		cfg.Sink.DrainTimeout, _ = DrainTimes(10 * time.Second)
	}
	return &Pipeline{cfg: cfg, src: src, enc: enc, log: cfg.Log, mem: publish.NewMemory()}
}

func (p *Pipeline) sinkConfig() publish.Config {
	c := p.cfg.Sink
	c.Pipeline, c.Ack, c.OnCommit, c.Log, c.Metrics = p.cfg.Name, p.src.Ack, p.committed, p.log, p.cfg.Metrics
	return c
}

// Run supervises sessions until ctx ends (nil: drained) or a fatal error stops the pipeline.
func (p *Pipeline) Run(ctx context.Context) error {
	err := supervise.Run(ctx, supervise.Policy{Initial: p.cfg.InitialBackoff, Max: p.cfg.MaxBackoff}, p.session, p.failed)
	if ctx.Err() != nil && err == nil {
		p.setHealth(false, "stopped", "shut down")
	}
	return err
}

// failed decides after a failed session: stop (fatal, or retry.max_attempts reached), wait
// for the stream to be free (standby), or retry after the backoff.
func (p *Pipeline) failed(err error, b *supervise.Backoff) (time.Duration, error) {
	switch classify(err) {
	case classFatal:
		p.setHealth(false, "failed", err.Error())
		p.log.Error("pipeline stopped: not retriable", "err", err)
		return 0, err
	case classStandby:
		p.setHealth(false, "standby", err.Error())
		p.log.Info("standby: another instance holds the stream; waiting", "cause", err.Error(), "next_attempt_in", p.cfg.StandbyInterval.String())
		return p.cfg.StandbyInterval, nil
	}
	wait := b.Next()
	if p.cfg.MaxAttempts > 0 && b.Attempts() >= p.cfg.MaxAttempts {
		err = fmt.Errorf("giving up after %d attempts (retry.max_attempts): %w", b.Attempts(), err)
		p.setHealth(false, "failed", err.Error())
		p.log.Error("pipeline stopped", "err", err)
		return 0, err
	}
	p.attemptFailed(err)
	p.setHealth(false, "retrying", err.Error())
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.Retries.WithLabelValues(p.cfg.Name, causeLabel(err)).Inc()
	}
	p.log.Warn("retrying", "cause", err.Error(), "attempt", b.Attempts(), "next_attempt_in", wait.Round(time.Millisecond).String())
	return wait, nil
}

func (p *Pipeline) setHealth(ready bool, phase, reason string) {
	if p.cfg.Health != nil {
		p.cfg.Health.Set(p.cfg.Name, ready, phase, reason)
	}
	if p.cfg.Metrics != nil {
		v := 0.0
		if ready {
			v = 1
		}
		p.cfg.Metrics.PipelineReady.WithLabelValues(p.cfg.Name).Set(v)
		failed := 0.0
		if phase == "failed" {
			failed = 1
		}
		p.cfg.Metrics.PipelineFailed.WithLabelValues(p.cfg.Name).Set(failed)
	}
}

type errClass int

const (
	classRetry errClass = iota
	classStandby
	classFatal
)

// ErrSlotBusy-like errors: sources mark "another instance streams" with Standby() true.
type standbyError interface{ Standby() bool }

type fatalError interface{ Fatal() bool }

// classify is the one place that decides retry, standby or stop.
func classify(err error) errClass {
	var f fatalError
	if errors.As(err, &f) && f.Fatal() {
		return classFatal
	}
	var sb standbyError
	if errors.As(err, &sb) && sb.Standby() {
		return classStandby
	}
	var ee *encode.Error
	if errors.As(err, &ee) {
		return classFatal // a poison record: on_error decides (fail = stop)
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return classStandby // another instance took over
	}
	return classRetry
}

// causeLabel names where a retried error came from, for the retries metric: the stage that
// returned it (each wraps its errors at the boundary), not what the error looks like (a full
// spill disk and a registry outage are both system errors).
func causeLabel(err error) string {
	var (
		se *SourceError
		ke *publish.KafkaError
		re *publish.RegistryError
		kr *kerr.Error
	)
	switch {
	case errors.As(err, &se):
		return "source"
	case errors.As(err, &ke), errors.As(err, &kr):
		return "kafka"
	case errors.As(err, &re):
		return "schema_registry"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// SourceError is a failure of the source's stream (connection, server, decoding); its
// classification is that of the error it wraps.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

func sourceErr(err error) error {
	if err == nil {
		return nil
	}
	return &SourceError{err}
}

// GapError: the source was acknowledged beyond what the pipeline committed, so changes in
// between went to another reader (or the slot was recreated). Streaming on would skip them.
type GapError struct {
	// AckedPosition is the slot's confirmed position; Committed the pipeline's committed state.
	AckedPosition uint64
	Committed     offsets.Record
	// Hanging, when set, is why Kafka shows an older committed position than the source was
	// acknowledged for: a hanging transaction of the pipeline in the offsets topic.
	Hanging *publish.HangingTransaction
}

// Error gives the one fix that never duplicates: accepting the slot's position while keeping
// the committed one (the pipeline still drops what Kafka holds when the slot resends it).
// Forgetting the committed position (reset-offsets without --accept-slot) would republish
// whatever the slot resends, e.g. the published part of a split transaction.
func (e *GapError) Error() string {
	if h := e.Hanging; h != nil {
		return fmt.Sprintf("the source was acknowledged up to %s, beyond the last position visible as committed in Kafka (%s, position %s), because Kafka holds a hanging transaction of this pipeline in %s: "+
			"its coordinator finished it, but the partition never received its marker (a broker fault, e.g. a broker stopped while it wrote markers), so its records, the pipeline's last offsets record among them, stay invisible and hold back the topic's last stable offset; "+
			"the changes it carried may be invisible in the table topics too; "+
			"fix: list hanging transactions with `kafka-transactions.sh --bootstrap-server BROKER find-hanging --broker-id N` on each broker and abort them (`kafka-transactions.sh --bootstrap-server BROKER abort --topic %s --partition %d --start-offset %d`, and the same for the table topics' partitions it lists), "+
			"then re-snapshot the pipeline's tables (`cdcd snapshot`), whose aborted changes are not in Kafka, and accept the slot's position with `cdcd reset-offsets --config FILE --pipeline NAME --accept-slot %s`",
			lsnString(e.AckedPosition), lsnString(e.Committed.AckPosition), e.Committed.Pos, h, h.Topic, h.Partition, h.StartOffset, lsnString(e.AckedPosition))
	}
	return fmt.Sprintf("the source was acknowledged up to %s, beyond the last position cdcd committed to Kafka (%s, position %s): another client consumed the slot or it was recreated, so changes in between may be missing; "+
		"fix: make sure only cdcd reads the slot and re-snapshot the tables if changes are missing, then accept the slot's position with `cdcd reset-offsets --config FILE --pipeline NAME --accept-slot %s` "+
		"(it keeps the committed position, so nothing already in Kafka is published again)",
		lsnString(e.AckedPosition), lsnString(e.Committed.AckPosition), e.Committed.Pos, lsnString(e.AckedPosition))
}

// Fatal: retrying cannot bring the skipped changes back.
func (e *GapError) Fatal() bool { return true }

func lsnString(l uint64) string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }
