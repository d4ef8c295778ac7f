package window

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/fatal"
	"github.com/cdcd-dev/cdcd/supervise"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Config of one running window job.
type Config struct {
	Spec      *Spec
	KafkaOpts []kgo.Opt
	Registry  *sr.Client
	// InstanceID makes the job's transactional id unique per instance (KIP-447: instances
	// fence each other through the group generation, not the id). Keep it stable across
	// restarts of one instance so a crashed instance's open transaction is aborted at once.
	InstanceID string
	// Partitions of the job's internal topics (repartition, changelog); 0: the largest input
	// topic's partition count.
	Partitions         int32
	OutputPartitions   int32
	Replication        int16
	TransactionTimeout time.Duration
	// CommitInterval bounds how long one transaction collects input.
	CommitInterval time.Duration
	// SessionTimeout is the group session timeout (0: franz-go's default, 45s): how long a
	// member that stopped answering keeps its partitions.
	SessionTimeout time.Duration
	// StaticMembership joins the group with group.instance.id = InstanceID (KIP-345): a
	// restarted instance gets its partitions back without a rebalance.
	StaticMembership bool
	// MaxStateBytes bounds the window state (changelog form) this instance holds; 0: no bound.
	// Past it the transaction aborts and Run returns a *StateLimitError (a FatalError).
	MaxStateBytes int64
	// MaxMessageBytes is the largest record the job's dead-letter topic takes (its
	// max.message.bytes, as cdcd's change topics); 0: the broker's default.
	MaxMessageBytes int
	Log             *slog.Logger
	// OnState, if set, is told the job's phase and a reason: "starting", "waiting" (for an input
	// topic or its schema), "joining" (the group), "restoring" (state of assigned partitions),
	// "running" (assigned and restored), "retrying" or "failed".
	OnState func(phase, reason string)
	// OnTransaction, if set, is told of every transaction that ended: whether it committed
	// and how long it took from its beginning to the end of the commit or abort.
	OnTransaction func(committed bool, took time.Duration)
}

// jobFetchMaxBytes bounds one fetch of a job's consumer.
const jobFetchMaxBytes = 16 << 20

// Job runs one window job.
//
// Each transaction (franz-go's GroupTransactSession, EOS v2) covers: the input offsets
// consumed, the Recs written to the repartition topic, and, for the repartition partitions
// this instance owns, the results, late records and changelog records of the windows they
// changed. A crash or rebalance aborts whatever did not commit, and the owner of a partition
// restores its state from the changelog (read_committed) before processing it: state, output
// and progress move together, so no input is counted twice or lost.
type Job struct {
	cfg  Config
	spec *Spec
	log  *slog.Logger
	x    *extractor
	// repart is RepartitionTopic(spec.Name), compared with every consumed record's topic.
	repart string
	// dec decodes the repartition records the loop aggregates.
	dec recDecoder
	// aheadLimit caches the latest event time checkEventTimes accepts (µs).
	aheadLimit int64

	keySchema, valSchema *outSchema
	keyID, valID         int
	parts                int32
	// expect: the input partitions as this attempt found them (see Processor.Expect).
	expect []Origin
	// released is when waiting input partitions were last checked (see releaseTicks).
	released time.Time
	// purgeEvery: how often processed repartition records are deleted (see deleteProcessed)
	purgeEvery time.Duration

	// owned by the run loop
	procs map[int32]*Processor
	idle  map[int32]time.Time // last record (wall clock) per owned repartition partition

	mu        sync.Mutex
	toRestore map[int32]bool // repartition partitions assigned and not yet restored
	// assigned counts assignments per partition: a restore installs its state only if the
	// partition was not revoked and assigned again (maybe after another owner committed)
	// while it read.
	assigned map[int32]uint64
	revoked  map[int32]bool
	// joined: the group has assigned this member its partitions (perhaps none) at least once
	// in this attempt. Until then the job is not running.
	joined bool
	phase  string // the phase last reported (owned by the run loop)
	// dlqLogged is when dead letters were last logged (owned by the run loop).
	dlqLogged time.Time

	stats stats // see Stats

	// revokePending: a revocation was reported since the last transaction ended (see owner.go).
	revokePending atomic.Bool

	lagOnce sync.Once
	lag     *GroupLag // see groupLag
}

// New prepares a job; Run connects.
func New(cfg Config) (*Job, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = time.Minute
	}
	if cfg.Replication == 0 {
		cfg.Replication = 1
	}
	if cfg.OnState == nil {
		cfg.OnState = func(string, string) {}
	}
	if cfg.OnTransaction == nil {
		cfg.OnTransaction = func(bool, time.Duration) {}
	}
	if cfg.Spec.Late == "" {
		cfg.Spec.Late = cfg.Spec.Output + ".late" // late records are never dropped
	}
	return &Job{cfg: cfg, spec: cfg.Spec, log: cfg.Log.With("window_job", cfg.Spec.Name), x: newExtractor(cfg.Spec), repart: RepartitionTopic(cfg.Spec.Name),
		purgeEvery: purgeEvery, procs: map[int32]*Processor{}, idle: map[int32]time.Time{}, toRestore: map[int32]bool{}, revoked: map[int32]bool{}, assigned: map[int32]uint64{}}, nil
}

// Run runs the job until ctx ends (nil) or a fatal error stops it. Anything else — Kafka or
// the registry unreachable, an input topic that has no schema yet — is retried with capped
// exponential backoff and jitter (package supervise), and the state is restored from the
// changelog on every new attempt.
func (j *Job) Run(ctx context.Context) error {
	defer j.closeLag()
	return supervise.Run(ctx, supervise.Policy{}, j.attempt, j.failed)
}

// attempt is one session of the job: connect, join, restore, run transactions.
func (j *Job) attempt(ctx context.Context) error {
	j.setPhase("starting", "")
	if err := j.prepare(ctx); err != nil {
		return err
	}
	return j.loop(ctx)
}

// failed decides after a failed attempt: stop on a FatalError, else forget the attempt's
// state and retry after the backoff.
func (j *Job) failed(err error, b *supervise.Backoff) (time.Duration, error) {
	var fe *FatalError
	if errors.As(err, &fe) {
		j.setPhase("failed", err.Error())
		j.log.Error("window job stopped: not retriable", "err", err)
		return 0, err
	}
	wait := b.Next()
	var we *waitError
	if errors.As(err, &we) {
		j.setPhase("waiting", err.Error())
		j.log.Info("window job waiting", "cause", err.Error(), "next_attempt_in", wait.Round(time.Millisecond).String())
	} else {
		err = j.explain(err)
		j.setPhase("retrying", err.Error())
		j.log.Warn("window job retrying", "cause", err.Error(), "next_attempt_in", wait.Round(time.Millisecond).String())
	}
	j.reset()
	j.held()
	return wait, nil
}

// reset forgets the state of a failed attempt.
func (j *Job) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	clear(j.procs)
	clear(j.idle)
	clear(j.toRestore)
	clear(j.revoked)
	clear(j.assigned)
	j.joined = false
}

// setPhase reports a phase change to OnState (once per change).
func (j *Job) setPhase(phase, reason string) {
	if phase == j.phase && reason == "" {
		return
	}
	j.phase = phase
	j.cfg.OnState(phase, reason)
}

// FatalError stops a job: retrying cannot help (a field the input does not have, a changed
// job whose state does not fit, a corrupt internal record): the one marker every layer uses
// (package fatal).
type FatalError = fatal.Error

// StateLimitError: the window state this instance holds grew past Config.MaxStateBytes
// (state.max_bytes). The transaction that crossed the limit is aborted, so the state on record
// stays within it; the job stops (it comes wrapped in a FatalError) rather than letting the
// process run out of memory and take the pipelines with it. Pausing would not help: state
// shrinks only when windows close, and windows close only as input is read.
type StateLimitError struct {
	Job          string
	Bytes, Limit int64
	Partitions   int // repartition partitions this instance held
}

func (e *StateLimitError) Error() string {
	return fmt.Sprintf("window job %s: the window state on this instance (%d bytes over %d partitions) exceeds state.max_bytes (%d bytes); the job stopped without committing past it "+
		"(fix: raise state.max_bytes if the memory is there, or run more instances of the job so each holds fewer partitions, "+
		"or shorten window.size and window.grace so windows close and are purged sooner, or group by fewer distinct values)",
		e.Job, e.Bytes, e.Partitions, e.Limit)
}

// checkStateLimit returns a FatalError wrapping a *StateLimitError when the owned partitions'
// state exceeds the limit; the run loop owns procs.
func (j *Job) checkStateLimit() error {
	if j.cfg.MaxStateBytes <= 0 {
		return nil
	}
	var n int64
	for _, p := range j.procs {
		n += int64(p.StateBytes())
	}
	if n <= j.cfg.MaxStateBytes {
		return nil
	}
	return &FatalError{Err: &StateLimitError{Job: j.spec.Name, Bytes: n, Limit: j.cfg.MaxStateBytes, Partitions: len(j.procs)}}
}

// waitError: the job waits for something that is expected to appear (an input topic, its
// first schema).
type waitError struct{ Err error }

func (e *waitError) Error() string { return e.Err.Error() }
func (e *waitError) Unwrap() error { return e.Err }

// explain adds the likely cause to errors whose message alone misleads.
func (j *Job) explain(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDNotFound) {
		return fmt.Errorf("%w (another process took over the transactional id %s: if two cdcd instances run this job with the same instance_id, they fence each other over and over; fix: give every instance its own instance_id)",
			err, j.transactionalID())
	}
	return err
}
