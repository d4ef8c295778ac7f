// Package publish is the Kafka transaction sink of a pipeline: it groups whole source
// transactions into one Kafka transaction together with the pipeline's offsets record and any
// dead-letter records of the batch, and acknowledges the source only after that transaction
// committed.
//
// Invariants:
//   - A batch is one Kafka transaction (exactly_once); it holds whole source transactions, and
//     only a source transaction larger than a batch is split, its offsets record then naming
//     the last published event (offsets.Record.Complete false).
//   - The source is acknowledged (Config.Ack) only after the transaction committed, and only
//     up to the end of the last complete source transaction.
//   - Events and commits the committed offsets record covers are dropped; covered commits are
//     acknowledged at once (they are durable).
//   - Records are produced under a context that outlives the session's: on shutdown the open
//     batch still commits (Drain), bounded by the drain deadline.
//
// One Sink serves one session; only the session goroutine calls its methods. What must
// outlive a session (records the broker refused as too large, dead-letter log pacing, the
// published count) lives in Memory.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config of a pipeline's sink.
type Config struct {
	Pipeline string
	// KafkaOpts are the shared client options (brokers, TLS, SASL).
	KafkaOpts          []kgo.Opt
	OffsetsTopic       string
	TransactionTimeout time.Duration
	MaxMessageBytes    int
	TopicPartitions    int32
	TopicReplication   int16
	ExactlyOnce        bool
	Tombstones         bool
	// DeadLetter: on_error dlq. Poison changes go to DLQTopic inside the batch's transaction
	// instead of stopping the pipeline.
	DeadLetter         bool
	DLQTopic           string
	DLQMaxMessageBytes int
	// Version is cdcd's version, written to dead-letter headers.
	Version        string
	BatchMaxEvents int
	BatchMaxBytes  int
	BatchInterval  time.Duration
	// DrainTimeout bounds the final commit on shutdown (derived from shutdown_timeout).
	DrainTimeout time.Duration

	// Ack tells the source that everything up to the acknowledgement position pos
	// (change.Commit.AckPosition) is durable in Kafka.
	Ack func(pos uint64)
	// OnCommit, if set, is called (on the session goroutine) after every committed batch.
	OnCommit func()
	// Latency, if set, is called (on the session goroutine) after every committed batch with
	// the largest end-to-end latency (source commit -> Kafka commit) among its source
	// transactions; it must not block (the flight recorder's trigger).
	Latency func(worst time.Duration)
	// TransactionTopic, if set, receives a BEGIN and an END record of every source
	// transaction (Debezium's transaction metadata), in the Kafka transaction of the
	// transaction's first and last event respectively.
	TransactionTopic string
	Log              *slog.Logger
	Metrics          *metrics.Metrics // may be nil
}

// TransactionalID is the pipeline's stable Kafka transactional id: a restarted or second
// instance of the pipeline fences the old producer.
func TransactionalID(pipeline string) string { return "cdcd-" + pipeline }

// Sink is one session's Kafka side.
type Sink struct {
	cfg Config
	mem *Memory
	enc *encode.Encoder
	log *slog.Logger

	admCl  *kgo.Client // admin requests and the offsets reader
	adm    *kadm.Client
	reader *offsets.Reader
	cl     *kgo.Client // the (transactional) producer, from Fence on

	// prodCtx is what records are produced under: it survives the session's context, so a
	// shutdown does not fail records buffered for the batch being drained; it ends at the
	// drain deadline or on Close.
	prodCtx    context.Context
	stopProd   context.CancelFunc
	stopDrainT func() bool

	committed offsets.Record    // last durable state (read at start, then ours)
	deadKeys  map[string]string // committed dead keys plus this batch's (see offsets.Record.DeadKeys)

	// topics: topic -> largest record it accepts. Written by the session goroutine before
	// the topic's first record is produced; read by the producer's goroutines (batchLimit).
	topicsMu sync.RWMutex
	topics   map[string]int

	batch batch
	rec   encode.Record
	// tx follows the source transaction being added (transaction orders, BEGIN/END); txRec
	// is the metadata records' encoding buffer.
	tx    encode.TxTracker
	txRec encode.Record
	// Data records come from chunks and their bytes from shared buffers (see records.go);
	// onProduced is every record's promise.
	chunk      *recChunk
	arena      []byte
	onProduced func(*kgo.Record, error)
	// pendingSince is when the oldest work not yet committed arrived (unix nanos; 0: none).
	// Written by the session goroutine, read by watchers (PendingSince).
	pendingSince atomic.Int64

	errMu    sync.Mutex
	firstErr error // first failed produce of the batch
}

// Open connects the sink's admin client and makes sure the offsets topic exists. ctx bounds
// the session: once it ends, records already produced still have Config.DrainTimeout to
// commit.
func Open(ctx context.Context, cfg Config, mem *Memory, enc *encode.Encoder) (*Sink, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Ack == nil {
		cfg.Ack = func(uint64) {}
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 8 * time.Second
	}
	if cfg.DLQMaxMessageBytes < cfg.MaxMessageBytes {
		cfg.DLQMaxMessageBytes = cfg.MaxMessageBytes
	}
	s := &Sink{cfg: cfg, mem: mem, enc: enc, log: cfg.Log, topics: map[string]int{}, batch: batch{counts: map[countKey]*count{}}}
	s.onProduced = s.produced
	var err error
	s.admCl, err = kgo.NewClient(append(append([]kgo.Opt{}, cfg.KafkaOpts...), offsets.ReaderOpts()...)...)
	if err != nil {
		return nil, &KafkaError{fmt.Errorf("creating kafka client: %w", err)}
	}
	s.adm = kadm.NewClient(s.admCl)
	s.reader = offsets.NewReader(s.admCl, cfg.OffsetsTopic, cfg.Pipeline)
	s.prodCtx, s.stopProd = context.WithCancel(context.WithoutCancel(ctx))
	s.stopDrainT = context.AfterFunc(ctx, func() {
		time.AfterFunc(cfg.DrainTimeout, s.stopProd)
	})

	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := offsets.EnsureTopic(tctx, s.adm, cfg.OffsetsTopic, cfg.TopicReplication); err != nil {
		s.Close()
		return nil, &KafkaError{err}
	}
	if _, err := s.topicLimit(tctx, cfg.OffsetsTopic); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the clients; an open transaction is left to the broker (it aborts it when the
// next instance fences this one, or at the transaction timeout).
func (s *Sink) Close() {
	s.stopDrainT()
	s.stopProd()
	if s.cl != nil {
		s.cl.Close()
	}
	s.admCl.Close()
}

// ReadCommitted reads the pipeline's committed offsets record (read_committed). Before Fence
// it may be stale: an older instance can still commit until it is fenced.
func (s *Sink) ReadCommitted(ctx context.Context) (offsets.Record, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rec, ok, err := s.reader.Read(rctx)
	if err != nil {
		return rec, false, &KafkaError{fmt.Errorf("reading committed position: %w", err)}
	}
	return rec, ok, nil
}

// Fence takes over the pipeline's transactional id, which fences any older producer of the
// pipeline and aborts its open transaction, and then returns the committed offsets record.
//
// Why one read before fencing plus this one is enough: once InitProducerID succeeded, no older
// producer can commit any more, and the coordinator has finished the old producer's open
// transaction (written its markers), so every record older instances wrote for this pipeline
// has its marker below the offsets partition's end. The reader lists the end again and reads
// only the records written since its first read (none, usually, and then nothing is fetched).
// It reads to the end, not the last stable offset, which another pipeline's open transaction
// can hold back (offsets.Reader). What the pipeline commits from here on is its own.
func (s *Sink) Fence(ctx context.Context) (offsets.Record, bool, error) {
	opts := append([]kgo.Opt{}, s.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2, as Kafka's Java client
		// A batch must fit its own topic's limit: the broker refuses a larger one and franz-go
		// does not split it, so under a backlog healthy records would read as too large.
		kgo.ProducerBatchMaxBytesFn(s.batchLimit),
		kgo.ProducerLinger(0),
		// New tables' topics are created on the fly: learn their partitions quickly.
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RetryBackoffFn(produceRetryBackoff()),
	)
	if s.cfg.ExactlyOnce {
		opts = append(opts, kgo.TransactionalID(TransactionalID(s.cfg.Pipeline)), kgo.TransactionTimeout(s.cfg.TransactionTimeout))
	}
	var err error
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return offsets.Record{}, false, &KafkaError{fmt.Errorf("creating kafka producer: %w", err)}
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, _, err = s.cl.ProducerID(ictx)
	cancel()
	if err != nil {
		return offsets.Record{}, false, &KafkaError{fmt.Errorf("initializing kafka producer %s: %w", TransactionalID(s.cfg.Pipeline), err)}
	}
	return s.ReadCommitted(ctx)
}

// produceRetryBackoff is the producer's wait before retrying a failed produce request: 10 ms,
// doubling with each consecutive failure up to 5 s, with ±20 % jitter. franz-go's default starts
// at 250 ms, which is what a transaction's first produce pays whenever the broker answers
// CONCURRENT_TRANSACTIONS: with Kafka's transactions v2 it does so while the previous
// transaction's markers are still being written (after retrying itself for up to
// add.partitions.to.txn.retry.backoff.max.ms, 100 ms by default), which under load happens
// every few seconds. Persistent failures still back off to the same 5 s.
func produceRetryBackoff() func(fails int) time.Duration {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	return func(fails int) time.Duration {
		const first, most = 10 * time.Millisecond, 5 * time.Second
		d := most
		if fails < 10 {
			d = min(most, first<<max(0, fails-1))
		}
		mu.Lock()
		j := 0.8 + 0.4*rng.Float64()
		mu.Unlock()
		return time.Duration(float64(d) * j)
	}
}

// Resume sets the committed state the sink starts from (the pipeline's checked reading of
// Fence's record) and acknowledges it to the source: it is durable already, and a crash can
// have come between the Kafka commit and the source hearing of it.
func (s *Sink) Resume(committed offsets.Record) {
	s.committed = committed
	s.deadKeys = clone(committed.DeadKeys)
	if committed.AckPosition > 0 {
		s.cfg.Ack(committed.AckPosition)
	}
}

// Committed is the last durable state.
func (s *Sink) Committed() offsets.Record { return s.committed }

// AtBoundary reports whether the open batch ends at a transaction boundary, so it may commit.
// The session commits such a batch as soon as no more input waits: the next batch fills while
// the commit is in flight, so batches grow with the load and a lone transaction waits for
// nothing.
func (s *Sink) AtBoundary() bool { return s.batch.open && s.batch.tail == 0 }

// IntervalDue reports whether the open batch, at a transaction boundary, is older than
// batch.interval.
func (s *Sink) IntervalDue() bool {
	return s.batch.open && s.batch.tail == 0 && time.Since(s.batch.started) >= s.cfg.BatchInterval
}

// Drain finishes the open batch on shutdown, within the drain timeout: a batch that ends at a
// transaction boundary is committed (and acknowledged); a partial one is aborted and replays
// on the next start.
func (s *Sink) Drain() {
	if !s.batch.open {
		return
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if s.batch.tail == 0 {
		if err := s.Commit(dctx); err != nil {
			s.log.Warn("final commit failed; the batch replays on the next start", "err", err)
		}
		return
	}
	if s.cfg.ExactlyOnce {
		_ = s.cl.AbortBufferedRecords(dctx)
		_ = s.cl.EndTransaction(dctx, kgo.TryAbort)
	}
}

func (s *Sink) begin() error {
	if s.cfg.ExactlyOnce {
		if err := s.cl.BeginTransaction(); err != nil {
			return &KafkaError{fmt.Errorf("beginning kafka transaction: %w", err)}
		}
	}
	s.batch.open, s.batch.started = true, time.Now()
	s.pendingSince.CompareAndSwap(0, s.batch.started.UnixNano())
	return nil
}

// PendingSince is when the oldest change not yet committed to Kafka arrived (zero when
// nothing waits): a value far in the past while the pipeline runs means Kafka does not
// accept the transaction. Safe for concurrent use.
func (s *Sink) PendingSince() time.Time {
	if n := s.pendingSince.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func clone(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// KafkaError is a failure talking to Kafka (producing, committing, reading offsets, admin).
type KafkaError struct{ Err error }

func (e *KafkaError) Error() string {
	if errors.Is(e.Err, kerr.SaslAuthenticationFailed) { // retrying alone will not fix it
		return e.Err.Error() + " (fix: check kafka.sasl.username and password, and that the user exists for kafka.sasl.mechanism)"
	}
	return e.Err.Error()
}
func (e *KafkaError) Unwrap() error { return e.Err }

// RegistryError is a retriable failure of the schema registry.
type RegistryError struct{ Err error }

func (e *RegistryError) Error() string { return e.Err.Error() }
func (e *RegistryError) Unwrap() error { return e.Err }

// PoisonError is a change that cannot be published; it names everything needed to find it.
type PoisonError struct {
	Pipeline string
	Table    string
	Key      string
	Pos      change.Position
	Err      error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("pipeline %s: table %s key %s at position %s: %v", e.Pipeline, e.Table, e.Key, e.Pos, e.Err)
}
func (e *PoisonError) Unwrap() error { return e.Err }

// Fatal tells the supervisor not to retry: on_error fail stops on a poison record.
func (e *PoisonError) Fatal() bool { return true }
