package window

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
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
	return &Job{cfg: cfg, spec: cfg.Spec, log: cfg.Log.With("window_job", cfg.Spec.Name), x: newExtractor(cfg.Spec),
		purgeEvery: purgeEvery, procs: map[int32]*Processor{}, idle: map[int32]time.Time{}, toRestore: map[int32]bool{}, revoked: map[int32]bool{}, assigned: map[int32]uint64{}}, nil
}

// Run runs the job until ctx ends (nil) or a fatal error stops it. Anything else — Kafka or
// the registry unreachable, an input topic that has no schema yet — is retried with capped
// exponential backoff, and the state is restored from the changelog on every new attempt.
func (j *Job) Run(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		j.setPhase("starting", "")
		started := time.Now()
		err := j.prepare(ctx)
		if err == nil {
			err = j.loop(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		var fe *FatalError
		if errors.As(err, &fe) {
			j.setPhase("failed", err.Error())
			j.log.Error("window job stopped: not retriable", "err", err)
			return err
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		var we *waitError
		if errors.As(err, &we) {
			j.setPhase("waiting", err.Error())
			j.log.Info("window job waiting", "cause", err.Error(), "next_attempt_in", backoff.String())
		} else {
			j.setPhase("retrying", err.Error())
			j.log.Warn("window job retrying", "cause", err.Error(), "next_attempt_in", backoff.String())
		}
		j.reset()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
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
// job whose state does not fit, a corrupt internal record).
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

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
	return &FatalError{&StateLimitError{Job: j.spec.Name, Bytes: n, Limit: j.cfg.MaxStateBytes, Partitions: len(j.procs)}}
}

// waitError: the job waits for something that is expected to appear (an input topic, its
// first schema).
type waitError struct{ Err error }

func (e *waitError) Error() string { return e.Err.Error() }
func (e *waitError) Unwrap() error { return e.Err }

// prepare checks the job's fields against every input topic's registered schema, creates the
// internal and output topics, and registers the result schemas.
func (j *Job) prepare(ctx context.Context) error {
	var first avro.Schema
	for _, t := range j.spec.Topics {
		sub := t + "-value"
		ss, err := j.cfg.Registry.SchemaByVersion(ctx, sub, -1)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && re.StatusCode == 404 {
				return &waitError{fmt.Errorf("input topic %s has no schema yet (subject %s): waiting for the pipeline that writes it to publish its first change", t, sub)}
			}
			return fmt.Errorf("schema registry: reading the schema of input topic %s (subject %s): %w", t, sub, err)
		}
		s, err := avro.Parse(ss.Schema.Schema)
		if err != nil {
			return &FatalError{fmt.Errorf("parsing the schema of %s: %w", sub, err)}
		}
		if _, err := j.x.compile(ss.ID, s); err != nil {
			return &FatalError{fmt.Errorf("window job %s, input topic %s: %w", j.spec.Name, t, err)}
		}
		if first == nil {
			first = s
		}
	}
	if err := j.buildSchemas(first); err != nil {
		return &FatalError{fmt.Errorf("window job %s: %w", j.spec.Name, err)}
	}
	if err := j.createTopics(ctx); err != nil {
		return err
	}
	for _, s := range []struct {
		subject string
		schema  *outSchema
		id      *int
	}{{j.spec.Output + "-key", j.keySchema, &j.keyID}, {j.spec.Output + "-value", j.valSchema, &j.valID}} {
		ss, err := j.cfg.Registry.CreateSchema(ctx, s.subject, sr.Schema{Schema: s.schema.json, Type: sr.TypeAvro})
		if err != nil {
			err = fmt.Errorf("registering the result schema under %s: %w (fix: if the job's group fields or aggregates changed, write the results to a new output topic)", s.subject, err)
			var re *sr.ResponseError
			if errors.As(err, &re) && re.StatusCode == 409 {
				return &FatalError{err}
			}
			return err
		}
		*s.id = ss.ID
	}
	return nil
}

// buildSchemas derives the result key and value schemas from the first input topic's schema.
func (j *Job) buildSchemas(env avro.Schema) error {
	ns := "io.cdcd.window." + avroName.ReplaceAllString(j.spec.Name, "_")
	var keyFields, valFields []outField
	for _, g := range j.spec.GroupBy {
		ft := fieldType(env, g)
		if ft == nil {
			return fmt.Errorf("group field %s is not in the input schema", g)
		}
		f, err := fieldFor(avroName.ReplaceAllString(g.Field, "_"), ft)
		if err != nil {
			return fmt.Errorf("group_by %s: %w", g, err)
		}
		keyFields = append(keyFields, f)
	}
	ts := outField{name: "window_start", typ: map[string]any{"type": "long", "logicalType": "timestamp-millis"}, write: writeMillis}
	te := ts
	te.name = "window_end"
	keyFields = append(keyFields, ts)
	if j.spec.Window.Type == Count {
		keyFields = append(keyFields, outField{name: "window_index", typ: "long", write: writeLong})
	}
	valFields = append(valFields, keyFields...)
	valFields = append(valFields, te)
	for _, a := range j.spec.Aggs {
		var f outField
		var err error
		switch a.Fn {
		case FnCount, FnCountDistinct:
			f = outField{name: a.Name, typ: "long", write: writeLong}
		case FnAvg:
			f = outField{name: a.Name, typ: "double", nullable: true, write: writeDouble}
		case FnSum:
			f, err = sumField(a.Name, fieldType(env, a.Field))
		default:
			ft := fieldType(env, a.Field)
			if ft == nil && a.Field.Root == "" {
				ft = avro.NewPrimitiveSchema(avro.Long, nil)
			}
			f, err = fieldFor(a.Name, ft)
			f.name = a.Name
		}
		if err != nil {
			return fmt.Errorf("aggregate %s: %w", a.Name, err)
		}
		valFields = append(valFields, f)
	}
	valFields = append(valFields, outField{name: "events", typ: "long", write: writeLong})
	j.keySchema = newOutSchema("Key", ns, keyFields)
	j.valSchema = newOutSchema("Value", ns, valFields)
	return nil
}

func (j *Job) createTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, j.spec.Topics...)
	if err != nil {
		return fmt.Errorf("kafka: describing input topics: %w", err)
	}
	parts := j.cfg.Partitions
	for _, t := range j.spec.Topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			return &waitError{fmt.Errorf("input topic %s does not exist yet: waiting for the pipeline that writes it", t)}
		}
		if j.cfg.Partitions == 0 {
			parts = max(parts, int32(len(td.Partitions)))
		}
	}
	j.expect = j.expect[:0]
	for _, t := range j.spec.Topics {
		for _, p := range tds[t].Partitions.Numbers() {
			j.expect = append(j.expect, Origin{Topic: t, Partition: p})
		}
	}
	create := func(topic string, n int32, cfg map[string]*string) error {
		resp, err := adm.CreateTopic(ctx, n, j.cfg.Replication, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: creating topic %s: %w", topic, err)
		}
		return nil
	}
	plans := InternalTopics(j.spec.Name)
	for _, p := range plans {
		if err := create(p.Topic, parts, ptrs(p.Create)); err != nil {
			return err
		}
	}
	if err := enforceTopicConfigs(ctx, adm, plans); err != nil {
		return err
	}
	// The state lives in changelog partition p with repartition partition p: their counts
	// must agree.
	td, err := adm.ListTopics(ctx, RepartitionTopic(j.spec.Name), ChangelogTopic(j.spec.Name))
	if err != nil {
		return fmt.Errorf("kafka: describing internal topics: %w", err)
	}
	rp, cp := len(td[RepartitionTopic(j.spec.Name)].Partitions), len(td[ChangelogTopic(j.spec.Name)].Partitions)
	if rp == 0 || cp == 0 {
		// Just created: the broker answering may not know the partitions yet. Retried.
		return fmt.Errorf("topics %s (%d partitions) and %s (%d) are not visible yet after their creation",
			RepartitionTopic(j.spec.Name), rp, ChangelogTopic(j.spec.Name), cp)
	}
	if rp != cp {
		return &FatalError{fmt.Errorf("topics %s (%d partitions) and %s (%d) must have the same partitions; fix: %s",
			RepartitionTopic(j.spec.Name), rp, ChangelogTopic(j.spec.Name), cp, InternalPartitionsFix(j.spec.Name))}
	}
	j.parts = int32(rp)
	outParts := j.cfg.OutputPartitions
	if outParts == 0 {
		outParts = -1 // the broker's default
	}
	if err := create(j.spec.Output, outParts, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
		return err
	}
	if j.spec.Late != "" {
		if err := create(j.spec.Late, outParts, nil); err != nil {
			return err
		}
	}
	if j.spec.DeadLetter != "" {
		return create(j.spec.DeadLetter, 1, DeadLetterTopicConfig(j.cfg.MaxMessageBytes))
	}
	return nil
}

// partitioner sends changelog and repartition records to the partition set on them (the
// state's own partition, the group's partition) and everything else by key, as Kafka's Java
// client does.
type partitioner struct {
	changelog   string
	repartition string
	byKey       kgo.Partitioner
}

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.changelog || t == p.repartition {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return p.byKey.ForTopic(t)
}

func (j *Job) loop(ctx context.Context) error {
	repart := RepartitionTopic(j.spec.Name)
	opts := append([]kgo.Opt{}, j.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(GroupID(j.spec.Name)),
		kgo.ConsumeTopics(append(append([]string{}, j.spec.Topics...), repart)...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.TransactionalID("cdcd-window-"+j.spec.Name+"-"+j.cfg.InstanceID),
		kgo.TransactionTimeout(j.cfg.TransactionTimeout),
		kgo.RecordPartitioner(partitioner{changelog: ChangelogTopic(j.spec.Name), repartition: repart, byKey: kgo.StickyKeyPartitioner(nil)}),
		kgo.ProducerLinger(0),
		// Backpressure: the loop takes a fetch, produces and commits it before it takes the
		// next, and the client keeps at most one fetch buffered per broker, so fetching
		// pauses while producing or committing lags. This bounds that one fetch (1 MiB per
		// partition by default) within the job's share of the memory budget.
		kgo.FetchMaxBytes(jobFetchMaxBytes),
	)
	if j.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(j.cfg.SessionTimeout))
	}
	if j.cfg.StaticMembership {
		opts = append(opts, kgo.InstanceID(j.cfg.InstanceID))
	}
	opts = append(opts,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.mu.Lock()
			defer j.mu.Unlock()
			j.joined = true
			for _, p := range m[repart] {
				j.toRestore[p] = true
				j.assigned[p]++
				delete(j.revoked, p)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.mu.Lock()
			defer j.mu.Unlock()
			for _, p := range m[repart] {
				j.revoked[p] = true
				delete(j.toRestore, p)
			}
		}),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("kafka: creating the job's consumer: %w", err)
	}
	defer sess.Close()
	// Initialize the transactional producer now, before any restore: InitProducerID fences
	// this instance's previous incarnation and aborts a transaction it left open (a crash, a
	// SIGKILL), which would otherwise hold the changelog's last stable offset, and with it
	// the restore of every partition that transaction wrote, until the transaction timeout.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka: initializing the job's transactional producer %s: %w", "cdcd-window-"+j.spec.Name+"-"+j.cfg.InstanceID, err)
	}
	j.setPhase("joining", "waiting for the consumer group "+GroupID(j.spec.Name)+" to assign partitions")
	j.log.Info("window job joining its group", "inputs", j.spec.Topics, "output", j.spec.Output, "partitions", j.parts)

	var recs []Rec
	purged := time.Now()
	for {
		if err := j.applyAssignment(ctx); err != nil {
			return err
		}
		if time.Since(purged) >= j.purgeEvery {
			purged = time.Now()
			j.deleteProcessed(ctx, sess.Client())
		}
		j.mu.Lock()
		ready := j.joined && len(j.toRestore) == 0
		j.mu.Unlock()
		if ready && j.phase != "running" {
			j.setPhase("running", "")
			j.log.Info("window job running", "partitions", j.owned())
		}
		pctx, cancel := context.WithTimeout(ctx, j.cfg.CommitInterval)
		fs := sess.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fatalFetchErr(fs); err != nil {
			return err
		}
		touched := map[int32]bool{}
		now := time.Now()
		ticks := append(j.idleTicks(ctx, now, fs), j.releaseTicks(ctx, now)...)
		if fs.NumRecords() == 0 && len(ticks) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("kafka: beginning a transaction: %w", err)
		}
		began := time.Now()
		var perrMu sync.Mutex
		var perr error
		var counts txnCounts
		produce := func(r *kgo.Record) {
			switch r.Topic {
			case j.spec.Output:
				counts.out++
			case j.spec.Late:
				counts.late++
			}
			sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
				perrMu.Lock()
				defer perrMu.Unlock()
				if err != nil && perr == nil {
					perr = err
				}
			})
		}
		var failure error
		abort := false
		reached := inputReached{}
		fs.EachRecord(func(r *kgo.Record) {
			if failure != nil || abort {
				return
			}
			if r.Topic == repart {
				p := j.procs[r.Partition]
				if p == nil || j.stale(r.Partition) {
					// Assigned during this poll (perhaps again, after another owner had it)
					// and not restored yet: abort, so the records are read again after the
					// restore.
					abort = true
					return
				}
				rec, origin, err := unmarshalRec(r.Value)
				if err != nil {
					failure = &FatalError{fmt.Errorf("%s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)}
					return
				}
				rec.Seq, rec.Origin = uint64(r.Offset), origin
				touched[r.Partition] = true
				j.idle[r.Partition] = now
				if rec.Sign == 0 {
					if origin.Topic == "" { // an idle tick: stream time follows the wall clock
						p.AdvanceTo(rec.T)
					} else { // an input partition's watermark
						p.Watermark(origin, rec.T)
					}
					return
				}
				if rec.T == noTime {
					produce(j.lateRecord(LateRec{Rec: rec, Reason: "the time field " + j.spec.Time.String() + " is null"}))
					return
				}
				if err := p.Add(rec); err != nil {
					failure = fmt.Errorf("window job %s: %w", j.spec.Name, err)
				}
				return
			}
			counts.in++
			out, err := j.fromInput(r, recs[:0])
			if err != nil {
				class := unprocessable(err)
				switch {
				case class == "":
					failure = err // a service failed: retried
				case j.spec.DeadLetter == "":
					// Retrying reads the same record again: stop with the fix instead.
					failure = &FatalError{fmt.Errorf("%w (or set on_error: dlq to send such records to a dead-letter topic and go on)", err)}
				default:
					counts.dlq++
					if counts.dlqCause == nil {
						counts.dlqCause = err
					}
					produce(j.deadLetter(r, class, err, now))
				}
				return
			}
			recs = out
			origin := Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
			reached.see(inputPart{r.Topic, r.Partition}, recs)
			for i := range recs {
				key := j.groupKey(&recs[i])
				produce(&kgo.Record{Topic: repart, Partition: j.partitionOf(key), Key: key, Value: marshalRec(nil, &recs[i], origin)})
			}
		})
		for _, tick := range ticks {
			produce(tick)
		}
		if failure == nil && !abort {
			j.produceWatermarks(reached, produce)
		}
		if failure == nil && !abort {
			failure = j.flushOutputs(touched, produce)
		}
		if failure == nil && !abort {
			failure = j.checkStateLimit()
		}
		if failure != nil {
			_, _ = sess.End(context.WithoutCancel(ctx), kgo.TryAbort)
			j.cfg.OnTransaction(false, time.Since(began))
			return failure
		}
		if err := sess.Client().Flush(ctx); err != nil {
			return fmt.Errorf("kafka: flushing the transaction's records: %w", err)
		}
		commit := kgo.TryCommit
		perrMu.Lock()
		if perr != nil {
			j.log.Warn("producing failed; aborting the transaction", "err", perr)
			commit = kgo.TryAbort
		}
		perrMu.Unlock()
		if abort {
			j.log.Debug("aborting: records of a partition whose state is not restored yet")
			commit = kgo.TryAbort
		}
		committed, err := sess.End(ctx, commit)
		j.cfg.OnTransaction(committed && err == nil, time.Since(began))
		if err != nil {
			return fmt.Errorf("kafka: ending the transaction: %w", err)
		}
		j.ended(counts, committed)
		if committed && counts.dlq > 0 && now.Sub(j.dlqLogged) >= time.Minute {
			// One line a minute at most: a schema change can dead-letter every record.
			j.dlqLogged = now
			j.log.Warn("window job dead-lettered input records it can never process; they count in no window (cdcd_window_dead_letters_total counts them all)",
				"records", counts.dlq, "topic", j.spec.DeadLetter, "first_cause", counts.dlqCause.Error())
		}
		if !committed {
			// The consumer rewound to the committed offsets: so must the state.
			j.log.Debug("transaction aborted; restoring state from the changelog")
			j.resetState()
		}
	}
}

func fatalFetchErr(fs kgo.Fetches) error {
	var out error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if out == nil && !kerr.IsRetriable(err) {
			out = fmt.Errorf("kafka: fetching %s[%d]: %w", t, p, err)
		}
	})
	return out
}

// applyAssignment drops revoked partitions' state and restores newly assigned ones from the
// changelog before any of their records is processed.
func (j *Job) applyAssignment(ctx context.Context) error {
	j.mu.Lock()
	for p := range j.revoked {
		delete(j.procs, p)
		delete(j.idle, p)
		delete(j.toRestore, p)
	}
	clear(j.revoked)
	var restore []int32
	gens := map[int32]uint64{}
	for p := range j.toRestore {
		restore = append(restore, p)
		gens[p] = j.assigned[p]
		delete(j.procs, p) // whatever it held predates this assignment
	}
	j.mu.Unlock()
	if len(restore) == 0 {
		return nil
	}
	sort.Slice(restore, func(a, b int) bool { return restore[a] < restore[b] })
	j.setPhase("restoring", fmt.Sprintf("restoring the state of partitions %v from %s", restore, ChangelogTopic(j.spec.Name)))
	t0 := time.Now()
	j.restoring(len(restore), 0)
	procs, keys, err := j.restore(ctx, restore)
	j.restoring(0, 0)
	if err != nil {
		return err
	}
	j.mu.Lock()
	for p, proc := range procs {
		if j.toRestore[p] && j.assigned[p] == gens[p] { // still ours, and the same assignment
			proc.Expect(j.expect)
			j.procs[p] = proc
			j.idle[p] = time.Now()
			delete(j.toRestore, p)
		}
	}
	j.mu.Unlock()
	j.log.Info("window state restored", "partitions", restore, "keys", keys, "took", time.Since(t0).Round(time.Millisecond).String())
	if err := j.checkStateLimit(); err != nil {
		return err // the restored state alone is over the limit
	}
	return nil
}

// owned lists the repartition partitions whose state this instance holds.
func (j *Job) owned() []int32 {
	out := make([]int32, 0, len(j.procs))
	for p := range j.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// stale reports whether partition p was assigned (again) since its state was restored.
func (j *Job) stale(p int32) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.toRestore[p]
}

// resetState forgets all in-memory state after an aborted transaction: every owned partition
// is restored from the changelog again.
func (j *Job) resetState() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for p := range j.procs {
		if !j.revoked[p] {
			j.toRestore[p] = true
		}
	}
	clear(j.procs)
}

// restore reads the changelog partitions read_committed up to their last stable offset.
//
// Why this cannot miss state: the previous owner of a partition writes its changelog records in
// the same transaction as its offset commit for the partition's input. So first wait until the
// group has no pending transactional offset commit (an OffsetFetch with RequireStable, KIP-447):
// every transaction of a previous owner has then committed or aborted, and none can commit
// later (the group generation fences it). The changelog's last stable offset then covers every
// committed update, and records past it belong to transactions that will abort.
func (j *Job) restore(ctx context.Context, parts []int32) (map[int32]*Processor, int, error) {
	topic := ChangelogTopic(j.spec.Name)
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return nil, 0, err
	}
	adm := kadm.NewClient(cl)
	for {
		offs, err := adm.FetchOffsetsForTopics(kadm.RequireStable(ctx), GroupID(j.spec.Name), RepartitionTopic(j.spec.Name))
		if err == nil {
			err = offs.Error()
		}
		if err == nil || errors.Is(err, kerr.GroupIDNotFound) { // a group that never committed has nothing pending
			break
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) {
			cl.Close()
			return nil, 0, fmt.Errorf("kafka: waiting for the group's pending transactions: %w", err)
		}
		select {
		case <-ctx.Done():
			cl.Close()
			return nil, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	ends, err := j.settledEnds(ctx, adm, topic, parts)
	cl.Close()
	if err != nil {
		return nil, 0, err
	}
	procs := map[int32]*Processor{}
	offs := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range parts {
		procs[p] = NewProcessor(j.spec)
		procs[p].partitions = j.parts
		if o, ok := ends.Lookup(topic, p); ok && o.Offset > 0 {
			offs[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	if len(offs) == 0 {
		return procs, 0, nil
	}

	rc, err := kgo.NewClient(append(append([]kgo.Opt{}, j.cfg.KafkaOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// A restore reads whole partitions as fast as it can: larger fetches than a
		// consumer's default 1 MiB per partition cut the round trips.
		kgo.FetchMaxPartitionBytes(restoreFetchBytes), kgo.FetchMaxBytes(restoreFetchBytes),
		kgo.BrokerMaxReadBytes(2*restoreFetchBytes))...)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	latest := map[int32]map[string][]byte{}
	read := map[int32]int64{} // next offset per partition
	left := func() int64 {
		var n int64
		for p, end := range want {
			n += end - read[p]
		}
		return n
	}
	for p := range want {
		latest[p] = map[string][]byte{}
	}
	j.restoring(len(parts), left())
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, 0, fmt.Errorf("kafka: reading %s: %w", topic, ferr)
		}
		var n, bytes uint64
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				latest[r.Partition][string(r.Key)] = r.Value
				n++
				bytes += uint64(len(r.Key) + len(r.Value))
			}
			read[r.Partition] = r.Offset + 1
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		j.restored(n, bytes, left())
	}
	keys := 0
	for p, kvs := range latest {
		// Restore accepts any order, but the spec's fingerprint goes first: a changed spec
		// is reported as such, not as a window that does not fit.
		if v, ok := kvs[string([]byte{keySpec})]; ok && v != nil {
			if err := procs[p].Restore([]byte{keySpec}, v); err != nil {
				return nil, 0, &FatalError{fmt.Errorf("restoring %s[%d]: %w", topic, p, err)}
			}
		}
		for k, v := range kvs {
			if v == nil {
				continue
			}
			if err := procs[p].Restore([]byte(k), v); err != nil {
				return nil, 0, &FatalError{fmt.Errorf("restoring %s[%d]: %w", topic, p, err)}
			}
			keys++
		}
	}
	return procs, keys, nil
}

// settledEnds waits until no transaction is open on the changelog partitions parts (their
// last stable offset equals their high watermark) and returns their last stable offsets.
//
// RequireStable alone is not enough: the coordinator writes a commit's markers to each
// partition of the transaction independently, so the group's offsets can be stable while the
// changelog's marker has not landed yet, and reading up to that last stable offset would miss
// the state of the very transaction whose offsets the group now holds. Once the last stable
// offset reaches the high watermark, every transaction that wrote the partition has ended;
// one a previous owner still has open ends by abort (the group fences its offset commit)
// within the transaction timeout, and the same open transaction holds back the repartition
// records this instance would process anyway.
func (j *Job) settledEnds(ctx context.Context, adm *kadm.Client, topic string, parts []int32) (kadm.ListedOffsets, error) {
	start := time.Now()
	logged := false
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		var hw kadm.ListedOffsets
		if err == nil {
			hw, err = adm.ListEndOffsets(ctx, topic)
		}
		if err == nil {
			err = hw.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("kafka: reading the end of %s: %w", topic, err)
		}
		var open []int32
		for _, p := range parts {
			l, _ := lso.Lookup(topic, p)
			h, _ := hw.Lookup(topic, p)
			if h.Offset > l.Offset {
				open = append(open, p)
			}
		}
		if len(open) == 0 {
			return lso, nil
		}
		if !logged && time.Since(start) > 5*time.Second {
			logged = true
			j.log.Info("restore waits for a transaction still open on the changelog (a previous owner's: it ends within the transaction timeout)",
				"topic", topic, "partitions", open)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restoreFetchBytes bounds one fetch of a restore (and one partition's share of it).
const restoreFetchBytes = 32 << 20

// fromInput turns an input change record into Recs.
func (j *Job) fromInput(r *kgo.Record, out []Rec) ([]Rec, error) {
	if r.Value == nil {
		return out, nil // a tombstone: the delete before it carried the change
	}
	if len(r.Value) < 5 || r.Value[0] != 0 {
		return out, &wireFormatError{fmt.Sprintf("window job %s: %s[%d]@%d is not in the schema registry's wire format (a zero byte, a 4-byte schema id, then Avro), so it was not written by cdcd; fix: keep other writers off cdcd's change topics", j.spec.Name, r.Topic, r.Partition, r.Offset)}
	}
	id := int(binary.BigEndian.Uint32(r.Value[1:5]))
	p := j.x.plans[id]
	if p == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ss, err := j.cfg.Registry.SchemaByID(ctx, id)
		cancel()
		if err != nil {
			return out, fmt.Errorf("reading schema %d of %s[%d]@%d: %w", id, r.Topic, r.Partition, r.Offset, err)
		}
		s, err := avro.Parse(ss.Schema)
		if err != nil {
			return out, &wireFormatError{fmt.Sprintf("window job %s: %s[%d]@%d names schema %d, which is not an Avro schema cdcd can read (%v); fix: keep other writers off cdcd's change topics", j.spec.Name, r.Topic, r.Partition, r.Offset, id, err)}
		}
		if p, err = j.x.compile(id, s); err != nil {
			return out, fmt.Errorf("window job %s: topic %s changed schema (id %d): %w; fix: change the job to fields that exist, under a new job name", j.spec.Name, r.Topic, id, err)
		}
	}
	n := len(out)
	out, err := j.x.extract(p, r.Value[5:], uint64(r.Offset), out)
	if err != nil {
		fix := ""
		if errors.Is(err, errShort) {
			fix = "; fix: keep other writers off cdcd's change topics"
		}
		return out, fmt.Errorf("window job %s: %s[%d]@%d: %w%s", j.spec.Name, r.Topic, r.Partition, r.Offset, err, fix)
	}
	if j.spec.Mode == ModeTable { // first and last follow rows there (see Rec.Row)
		if row := rowID(r.Key); row != 0 {
			for i := n; i < len(out); i++ {
				out[i].Row = row
			}
		}
	}
	return out, nil
}

// rowID identifies an input row by its key: a hash of the key's Avro body (past the
// registry's 5-byte header, so a new key schema id alone does not change it); 0 for a table
// without a key. The same on every instance and across restarts (FNV-1a).
func rowID(key []byte) uint64 {
	if len(key) <= 5 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, c := range key[5:] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return max(h, 1)
}

// groupKey is the repartition key: the group's canonical bytes (one partition per group).
func (j *Job) groupKey(r *Rec) []byte {
	var k []byte
	for _, v := range r.Group {
		k = appendKey(k, v)
	}
	if len(k) == 0 {
		k = []byte{0} // one global group
	}
	return k
}

// partitionOf is the repartition partition of a group key: FNV-1a, stable across versions.
func (j *Job) partitionOf(key []byte) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(j.parts))
}

// idleTicks makes an idle tick for each owned repartition partition that had no record for
// idle_timeout while it holds windows the wall clock would close, once the whole job has
// caught up with its input (see caughtUp).
//
// A tick is a record in the partition itself (Sign 0, T = now), not a change of state made on
// the side: the owner processes it like any record, in a transaction that commits its offset
// (so a previous owner that lost the partition can never commit state for it: the group
// generation fences offset commits, and a transaction that commits no offset would not be
// fenced), and a replay of the partition gives the same results.
func (j *Job) idleTicks(ctx context.Context, now time.Time, fs kgo.Fetches) []*kgo.Record {
	if j.spec.IdleTimeout <= 0 {
		return nil
	}
	active := map[int32]bool{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Topic == RepartitionTopic(j.spec.Name) && len(p.Records) > 0 {
			active[p.Partition] = true
		}
	})
	var due []int32
	for p, proc := range j.procs {
		if active[p] {
			continue
		}
		last, ok := j.idle[p]
		if !ok || now.Sub(last) < j.spec.IdleTimeout {
			continue
		}
		if next, ok := proc.NextClose(); !ok || next > now.UnixMicro() {
			continue
		}
		j.idle[p] = now // one tick (or check) per idle_timeout
		due = append(due, p)
	}
	if len(due) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, j.spec.IdleTimeout+5*time.Second)
	ok, err := j.caughtUp(ctx)
	cancel()
	if err != nil || !ok {
		if err != nil {
			j.log.Debug("idle check failed; no tick this time", "err", err)
		}
		return nil // input is still on its way: stream time waits for it
	}
	var out []*kgo.Record
	for _, p := range due {
		r := Rec{T: now.UnixMicro()}
		out = append(out, &kgo.Record{Topic: RepartitionTopic(j.spec.Name), Partition: p, Value: marshalRec(nil, &r, Origin{})})
	}
	return out
}

// flushOutputs produces the results, late records and changelog records of the touched
// partitions.
func (j *Job) flushOutputs(touched map[int32]bool, produce func(*kgo.Record)) error {
	for p := range touched {
		proc := j.procs[p]
		if proc == nil {
			continue
		}
		res, late := proc.TakeResults()
		for _, r := range res {
			rec, err := j.resultRecord(r)
			if err != nil {
				return err
			}
			produce(rec)
		}
		for _, l := range late {
			produce(j.lateRecord(l))
		}
		for _, kv := range proc.TakeChanges() {
			produce(&kgo.Record{Topic: ChangelogTopic(j.spec.Name), Partition: p, Key: kv.Key, Value: kv.Value})
		}
	}
	return nil
}

func (j *Job) resultRecord(r Result) (*kgo.Record, error) {
	kv := append([]Value{}, r.Group...)
	kv = append(kv, TimeMicros(r.Start))
	if j.spec.Window.Type == Count {
		kv = append(kv, Long(r.Index))
	}
	key := confluentHeader(j.keyID)
	key, err := j.keySchema.append(key, kv)
	if err != nil {
		return nil, fmt.Errorf("window job %s: writing a result key: %w", j.spec.Name, err)
	}
	vv := append(kv, TimeMicros(r.End))
	vv = append(vv, r.Aggs...)
	vv = append(vv, Long(r.Events))
	val := confluentHeader(j.valID)
	val, err = j.valSchema.append(val, vv)
	if err != nil {
		return nil, fmt.Errorf("window job %s: writing a result: %w", j.spec.Name, err)
	}
	rec := &kgo.Record{Topic: j.spec.Output, Key: key, Value: val}
	if r.Final {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "cdcd.window.final", Value: []byte("true")})
	}
	return rec, nil
}

func confluentHeader(id int) []byte {
	b := make([]byte, 5, 64)
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return b
}

// lateRecord is a JSON record for the late topic: what arrived, why it is late, where from.
func (j *Job) lateRecord(l LateRec) *kgo.Record {
	o := l.Rec.Origin
	vals := map[string]string{}
	for i, a := range j.spec.Aggs {
		if a.Fn != FnCount {
			vals[a.Name] = l.Rec.Vals[i].Text()
		}
	}
	group := map[string]string{}
	for i, g := range j.spec.GroupBy {
		group[g.String()] = l.Rec.Group[i].Text()
	}
	var missed []map[string]int64
	for _, m := range l.Missed {
		missed = append(missed, map[string]int64{"start_ms": floorDiv(m[0], 1000), "end_ms": floorDiv(m[1], 1000)})
	}
	body := map[string]any{"job": j.spec.Name, "reason": l.Reason, "group": group, "values": vals, "retraction": l.Rec.Sign < 0, "missed_windows": missed}
	if l.Rec.T != noTime {
		body["event_time_ms"] = floorDiv(l.Rec.T, 1000)
	}
	v, _ := json.Marshal(body)
	h := fnv.New64a()
	for _, g := range l.Rec.Group {
		h.Write(appendKey(nil, g))
	}
	rec := &kgo.Record{Topic: j.spec.Late, Key: []byte(strconv.FormatUint(h.Sum64(), 16)), Value: v, Headers: []kgo.RecordHeader{
		{Key: "cdcd.window.job", Value: []byte(j.spec.Name)},
		{Key: "cdcd.window.reason", Value: []byte(l.Reason)},
	}}
	if o.Topic != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "cdcd.origin", Value: []byte(fmt.Sprintf("%s[%d]@%d", o.Topic, o.Partition, o.Offset))})
	}
	return rec
}
