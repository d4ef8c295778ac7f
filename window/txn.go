package window

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// loop joins the job's group and runs transactions until ctx ends or one fails.
func (j *Job) loop(ctx context.Context) error {
	sess, err := kgo.NewGroupTransactSession(j.sessionOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: creating the job's consumer: %w", err)
	}
	defer sess.Close()
	// Initialize the transactional producer now, before any restore: InitProducerID fences
	// this instance's previous incarnation and aborts a transaction it left open (a crash, a
	// SIGKILL), which would otherwise hold the changelog's last stable offset, and with it
	// the restore of every partition that transaction wrote, until the transaction timeout.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka: initializing the job's transactional producer %s: %w", j.transactionalID(), err)
	}
	j.setPhase("joining", "waiting for the consumer group "+GroupID(j.spec.Name)+" to assign partitions")
	j.log.Info("window job joining its group", "inputs", j.spec.Topics, "output", j.spec.Output, "partitions", j.parts)

	var recs []Rec // reused by every transaction
	purged, checked := time.Now(), time.Now()
	for {
		if err := j.applyAssignment(ctx); err != nil {
			return err
		}
		j.held()
		if time.Since(purged) >= j.purgeEvery {
			purged = time.Now()
			j.deleteProcessed(ctx, sess.Client())
		}
		if time.Since(checked) >= ownerCheckEvery {
			checked = time.Now()
			j.confirmOwned(ctx, sess.Client(), nil)
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
		now := time.Now()
		ticks := append(j.idleTicks(ctx, now, fs), j.releaseTicks(ctx, now)...)
		if len(ticks) > 0 {
			// Only a partition's owner may write ticks into it.
			checked = now
			ticks = j.confirmOwned(ctx, sess.Client(), ticks)
		}
		if fs.NumRecords() == 0 && len(ticks) == 0 {
			if err := j.endIdle(ctx, sess); err != nil {
				return err
			}
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("kafka: beginning a transaction: %w", err)
		}
		t := &txn{j: j, ctx: ctx, sess: sess, now: now, began: time.Now(), recs: recs, touched: map[int32]bool{}, reached: inputReached{}}
		fs.EachRecord(t.record)
		recs = t.recs
		for _, tick := range ticks {
			t.produce(tick)
		}
		if err := t.end(); err != nil {
			return err
		}
	}
}

func (j *Job) transactionalID() string { return "cdcd-window-" + j.spec.Name + "-" + j.cfg.InstanceID }

// sessionOpts are the options of the job's group transact session.
func (j *Job) sessionOpts() []kgo.Opt {
	repart := RepartitionTopic(j.spec.Name)
	opts := append([]kgo.Opt{}, j.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(GroupID(j.spec.Name)),
		kgo.ConsumeTopics(append(append([]string{}, j.spec.Topics...), repart)...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.TransactionalID(j.transactionalID()),
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
	return append(opts,
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
			j.revocation() // also called for lost partitions (no OnPartitionsLost is set)
			j.mu.Lock()
			defer j.mu.Unlock()
			for _, p := range m[repart] {
				j.revoked[p] = true
				delete(j.toRestore, p)
			}
		}),
	)
}

// txn is one transaction of the job: it ingests input records (first stage: to the
// repartition topic), aggregates repartition records (second stage: into the owned
// partitions' windows), and ends with their results, late records, changelog records and
// the input partitions' watermarks, committed with the consumed offsets or aborted together.
type txn struct {
	j          *Job
	ctx        context.Context
	sess       *kgo.GroupTransactSession
	now, began time.Time
	recs       []Rec
	touched    map[int32]bool // repartition partitions whose windows changed
	reached    inputReached   // input partitions read, and their largest event time
	counts     txnCounts

	perrMu sync.Mutex
	perr   error // the first produce that failed

	// Slabs the repartition records and their keys and values are cut from: two
	// allocations per few hundred records instead of three per record. Kafka holds a
	// record until the transaction is flushed; a transaction's slabs are its own.
	recSlab  []kgo.Record
	byteSlab []byte

	failure error // stops the job (after an abort)
	abort   bool  // a partition's state is not restored yet: abort, read again
}

// record processes one consumed record.
func (t *txn) record(r *kgo.Record) {
	if t.failure != nil || t.abort {
		return
	}
	if r.Topic == t.j.repart {
		t.aggregate(r)
	} else {
		t.ingest(r)
	}
}

// newRecord returns a zero record from the transaction's slab.
func (t *txn) newRecord() *kgo.Record {
	if len(t.recSlab) == cap(t.recSlab) {
		t.recSlab = make([]kgo.Record, 0, 256)
	}
	t.recSlab = t.recSlab[:len(t.recSlab)+1]
	return &t.recSlab[len(t.recSlab)-1]
}

// carve returns what appendTo appends, cut from the transaction's byte slab (a value larger
// than what is left gets an array of its own from append).
func (t *txn) carve(appendTo func([]byte) []byte) []byte {
	if cap(t.byteSlab)-len(t.byteSlab) < 1024 {
		t.byteSlab = make([]byte, 0, 64<<10)
	}
	n := len(t.byteSlab)
	b := appendTo(t.byteSlab)
	if &b[:1][0] != &t.byteSlab[:1][0] {
		// Outgrew the slab: append copied the slab into a larger array. Write the value alone
		// into a fresh slab of its size, so that array is not kept.
		t.byteSlab = make([]byte, 0, max(64<<10, len(b)-n))
		return t.carve(appendTo)
	}
	t.byteSlab = b
	return b[n:len(b):len(b)]
}

// produce writes a record in the transaction.
func (t *txn) produce(r *kgo.Record) {
	switch r.Topic {
	case t.j.spec.Output:
		t.counts.out++
	case t.j.spec.Late:
		t.counts.late++
	}
	t.sess.Produce(t.ctx, r, func(_ *kgo.Record, err error) {
		t.perrMu.Lock()
		defer t.perrMu.Unlock()
		if err != nil && t.perr == nil {
			t.perr = err
		}
	})
}

// ingest turns an input change into repartition records (first stage).
func (t *txn) ingest(r *kgo.Record) {
	j := t.j
	t.counts.in++
	out, err := j.fromInput(r, t.recs[:0])
	if err != nil {
		class := unprocessable(err)
		switch {
		case class == "":
			t.failure = err // a service failed: retried
		case j.spec.DeadLetter == "":
			// Retrying reads the same record again: stop with the fix instead.
			t.failure = &FatalError{Err: fmt.Errorf("%w (or set on_error: dlq to send such records to a dead-letter topic and go on)", err)}
		default:
			t.counts.dlq++
			if t.counts.dlqCause == nil {
				t.counts.dlqCause = err
			}
			t.produce(j.deadLetter(r, class, err, t.now))
		}
		return
	}
	t.recs = out
	origin := Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	t.reached.see(inputPart{r.Topic, r.Partition}, out)
	for i := range out {
		r := t.newRecord()
		r.Topic, r.Key = j.repart, t.carve(func(b []byte) []byte { return appendGroupKey(b, &out[i]) })
		r.Partition, r.Value = j.partitionOf(r.Key), t.carve(func(b []byte) []byte { return marshalRec(b, &out[i], origin) })
		t.produce(r)
	}
}

// aggregate adds a repartition record to its partition's windows (second stage).
func (t *txn) aggregate(r *kgo.Record) {
	j := t.j
	p := j.procs[r.Partition]
	if p == nil || j.stale(r.Partition) {
		// Assigned during this poll (perhaps again, after another owner had it) and not
		// restored yet: abort, so the records are read again after the restore.
		t.abort = true
		return
	}
	rec, origin, err := t.j.dec.unmarshal(r.Value)
	if err != nil {
		t.failure = &FatalError{Err: fmt.Errorf("%s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)}
		return
	}
	rec.Seq, rec.Origin = uint64(r.Offset), origin
	t.touched[r.Partition] = true
	j.idle[r.Partition] = t.now
	switch {
	case rec.Sign == 0 && origin.Topic == "": // an idle tick: stream time follows the wall clock
		p.AdvanceTo(rec.T)
	case rec.Sign == 0: // an input partition's watermark
		p.Watermark(origin, rec.T)
	case rec.T == noTime:
		t.produce(j.lateRecord(LateRec{Rec: rec, Reason: "the time field " + j.spec.Time.String() + " is null"}))
	default:
		if err := p.Add(rec); err != nil {
			t.failure = fmt.Errorf("window job %s: %w", j.spec.Name, err)
		}
	}
}

// end writes the transaction's outputs and commits it, or aborts it (then the state is
// restored from the changelog, as the consumer rewinds to the committed offsets).
func (t *txn) end() error {
	j := t.j
	if t.failure == nil && !t.abort {
		j.produceWatermarks(t.reached, t.produce)
		t.failure = j.flushOutputs(t.touched, t.produce)
	}
	if t.failure == nil && !t.abort {
		t.failure = j.checkStateLimit()
	}
	if t.failure != nil {
		_, _ = t.sess.End(context.WithoutCancel(t.ctx), kgo.TryAbort)
		j.cfg.OnTransaction(false, time.Since(t.began))
		return t.failure
	}
	if err := t.sess.Client().Flush(t.ctx); err != nil {
		return fmt.Errorf("kafka: flushing the transaction's records: %w", err)
	}
	commit := kgo.TryCommit
	t.perrMu.Lock()
	perr := t.perr
	t.perrMu.Unlock()
	if perr != nil {
		if errors.Is(perr, kerr.MessageTooLarge) || errors.Is(perr, kerr.RecordListTooLarge) {
			// The same input would produce the same record: stop, do not retry forever.
			_, _ = t.sess.End(context.WithoutCancel(t.ctx), kgo.TryAbort)
			j.cfg.OnTransaction(false, time.Since(t.began))
			return &FatalError{Err: fmt.Errorf("window job %s: a record is over the limit of its topic: %w; fix: raise kafka.max_message_bytes and the topic's max.message.bytes", j.spec.Name, perr)}
		}
		j.log.Warn("producing failed; aborting the transaction", "err", perr)
		commit = kgo.TryAbort
	}
	if t.abort {
		j.log.Debug("aborting: records of a partition whose state is not restored yet")
		commit = kgo.TryAbort
	}
	// What this transaction commits, should it commit (the offsets consumed), and what was
	// committed before it: End does not poll, so neither moves before End takes them. Only a
	// commit reported as failed needs them (confirmAborted).
	var before, after map[string]map[int32]kgo.EpochOffset
	if commit == kgo.TryCommit {
		before, after = t.sess.Client().CommittedOffsets(), t.sess.Client().UncommittedOffsets()
	}
	j.revokePending.Store(false) // End clears the session's pending revocation (see endIdle)
	committed, err := t.sess.End(t.ctx, commit)
	j.cfg.OnTransaction(committed && err == nil, time.Since(t.began))
	if err != nil {
		return fmt.Errorf("kafka: ending the transaction: %w", err)
	}
	if commit == kgo.TryCommit && !committed {
		if err := j.confirmAborted(t.ctx, t.sess.Client(), before, after); err != nil {
			return err
		}
	}
	j.ended(t.counts, committed)
	if committed && t.counts.dlq > 0 && t.now.Sub(j.dlqLogged) >= time.Minute {
		// One line a minute at most: a schema change can dead-letter every record.
		j.dlqLogged = t.now
		j.log.Warn("window job dead-lettered input records it can never process; they count in no window (cdcd_window_dead_letters_total counts them all)",
			"records", t.counts.dlq, "topic", j.spec.DeadLetter, "first_cause", t.counts.dlqCause.Error())
	}
	if !committed {
		j.log.Debug("transaction aborted; restoring state from the changelog")
		j.resetState()
	}
	return nil
}

// AmbiguousCommitError: a transaction the job asked to commit was reported as not committed,
// yet the group's committed offsets show (or cannot rule out) that it did commit. franz-go
// answers an EndTxn that failed with an unknown outcome (UNKNOWN_SERVER_ERROR, say) by
// retrying it as an abort and rewinding the consumer to the offsets it last saw committed;
// going on from there would read input again whose results and state are committed already.
// The job restarts its session instead: committed offsets and state are read afresh.
type AmbiguousCommitError struct{ Err error }

func (e *AmbiguousCommitError) Error() string {
	return "kafka: the outcome of a transaction's commit was unknown to the client (it retried the commit as an abort): " +
		e.Err.Error() + "; restarting from the committed state"
}
func (e *AmbiguousCommitError) Unwrap() error { return e.Err }

// confirmAborted checks, after End reported a transaction the job asked to commit as not
// committed, that the group's committed offsets are still those before the transaction
// (before), not those it would have committed (after). A transaction that committed no
// offset cannot be checked, nor does it need to be: it wrote only idle ticks, which move
// stream time to a wall clock time again when repeated.
func (j *Job) confirmAborted(ctx context.Context, cl *kgo.Client, before, after map[string]map[int32]kgo.EpochOffset) error {
	var topics []string
	for topic, ps := range after {
		for p, o := range ps {
			if b, ok := before[topic][p]; !ok || b.Offset != o.Offset {
				topics = append(topics, topic)
				break
			}
		}
	}
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	for {
		// RequireStable: a partition's offset is answered once no transaction of the group is
		// pending on it. Only the transaction's partitions count: others may be another
		// instance's, in the middle of its own transaction.
		offs, err := adm.FetchOffsetsForTopics(kadm.RequireStable(ctx), GroupID(j.spec.Name), topics...)
		unstable := errors.Is(err, kerr.UnstableOffsetCommit)
		if err != nil && !unstable {
			return &AmbiguousCommitError{fmt.Errorf("the group's committed offsets could not be read to tell: %w", err)}
		}
		for _, topic := range topics {
			for p, o := range after[topic] {
				if b, ok := before[topic][p]; ok && b.Offset == o.Offset {
					continue
				}
				c, ok := offs.Lookup(topic, p)
				switch {
				case !ok || unstable:
				case errors.Is(c.Err, kerr.UnstableOffsetCommit):
					unstable = true
				case c.Err != nil:
					return &AmbiguousCommitError{fmt.Errorf("the group's committed offset of %s[%d] could not be read to tell: %w", topic, p, c.Err)}
				case c.At == o.Offset:
					return &AmbiguousCommitError{fmt.Errorf("the group's offset of %s[%d] is %d, the transaction's", topic, p, c.At)}
				}
			}
		}
		if !unstable {
			return nil
		}
		select {
		case <-ctx.Done():
			return &AmbiguousCommitError{fmt.Errorf("the group's committed offsets stayed unstable: %w", ctx.Err())}
		case <-time.After(20 * time.Millisecond):
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
