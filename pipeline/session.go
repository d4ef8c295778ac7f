package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/dlq"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lingerMax bounds how long a batch at a transaction boundary waits for more input while the
// source is idle; under load batches grow to the size limits or batch.interval instead (the
// next batch fills while a commit is in flight).
const lingerMax = time.Millisecond

// session is one connected run: a source stream, a producer, and the batch in progress. It
// ends at the first error; the supervisor starts a new one.
type session struct {
	p   *Pipeline
	cl  *kgo.Client
	adm *kadm.Client

	committed offsets.Record // last durable position (read at start, then ours)
	// topics: topic -> largest record it accepts. Written by the session goroutine before
	// the first record of the topic is produced; read by the producer (batchLimit) too.
	topicsMu sync.RWMutex
	topics   map[string]int
	deadKeys map[string]string // committed dead keys plus this batch's (see offsets.Record.DeadKeys)

	// the open batch (one Kafka transaction in exactly_once mode)
	open         bool
	started      time.Time
	events       int
	bytes        int
	tail         int // events after the last complete transaction in the batch
	tailBytes    int
	lastPos      change.Position
	lastComplete *change.Commit
	commitTimes  []time.Time
	counts       map[countKey]*count
	deadLetters  []deadLetterCount

	errMu    sync.Mutex
	firstErr error // first failed produce of the batch

	rec encode.Record
}

type countKey struct {
	table *change.Table
	op    change.Op
}

type count struct {
	events, bytes int
}

func (p *Pipeline) session(ctx context.Context) (err error) {
	p.setHealth(false, "starting", "connecting")
	s := &session{p: p, topics: map[string]int{}, counts: map[countKey]*count{}}

	admCl, err := kgo.NewClient(p.cfg.KafkaOpts...)
	if err != nil {
		return kafkaErr(fmt.Errorf("creating kafka client: %w", err))
	}
	defer admCl.Close()
	s.adm = kadm.NewClient(admCl)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = offsets.EnsureTopic(sctx, s.adm, p.cfg.OffsetsTopic, p.cfg.TopicReplication)
	cancel()
	if err != nil {
		return kafkaErr(err)
	}
	first, hasFirst, err := p.loadOffsets(ctx)
	if err != nil {
		return err
	}

	// The source runs under its own context: on shutdown the batch is committed first, then
	// the source is stopped so its last status update carries the final acknowledgement.
	srcCtx, stopSrc := context.WithCancel(context.WithoutCancel(ctx))
	items := make(chan []change.Item, 16)
	streaming := make(chan change.Streaming, 1)
	srcDone := make(chan struct{})
	var srcErr error
	go func() {
		defer close(srcDone)
		srcErr = p.src.Run(srcCtx, change.Resume{Committed: hasFirst, Pos: first.Pos, AckLSN: first.AckLSN,
			OnStreaming: func(st change.Streaming) { streaming <- st }}, items)
	}()
	defer func() {
		stopSrc()
		<-srcDone
	}()
	var stream change.Streaming
	select {
	case stream = <-streaming:
	case <-srcDone:
		return sourceErr(srcErr)
	case <-ctx.Done():
		return nil
	}

	// Only now, holding the stream, take over the transactional id: this fences any older
	// producer of the pipeline and aborts its open transaction.
	opts := append([]kgo.Opt{}, p.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2, as Kafka's Java client
		// A batch must fit its own topic's limit: the broker refuses a larger one and franz-go
		// does not split it, so under a backlog healthy records would read as too large.
		kgo.ProducerBatchMaxBytesFn(s.batchLimit),
		kgo.ProducerLinger(0),
		// New tables' topics are created on the fly: learn their partitions quickly.
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if p.cfg.ExactlyOnce {
		opts = append(opts, kgo.TransactionalID(TransactionalID(p.cfg.Name)), kgo.TransactionTimeout(p.cfg.TransactionTimeout))
	}
	s.cl, err = kgo.NewClient(opts...)
	if err != nil {
		return kafkaErr(fmt.Errorf("creating kafka producer: %w", err))
	}
	defer s.cl.Close()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, _, err = s.cl.ProducerID(ictx)
	cancel()
	if err != nil {
		return kafkaErr(fmt.Errorf("initializing kafka producer %s: %w", TransactionalID(p.cfg.Name), err))
	}
	var hasCommitted bool
	if s.committed, hasCommitted, err = p.loadOffsets(ctx); err != nil {
		return err
	}
	if err := s.checkSlot(stream, hasCommitted); err != nil {
		return err
	}
	if s.committed.AckLSN > 0 {
		// Durable already: the source may confirm it at once (a crash can have come between
		// the Kafka commit and the source hearing of it).
		p.src.Ack(s.committed.AckLSN)
	}
	s.deadKeys = clone(s.committed.DeadKeys)
	if s.committed.Pos.Compare(first.Pos) != 0 {
		p.log.Info("an older instance committed after start-up; resuming after its position", "position", s.committed.Pos.String())
	}
	p.setHealth(true, "streaming", "")
	p.log.Info("pipeline streaming", "resume_after", s.committed.Pos.String(), "complete", s.committed.Complete)

	linger := min(lingerMax, p.cfg.BatchInterval)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var timerC <-chan time.Time
		if s.open && s.tail == 0 {
			timer.Reset(time.Until(s.started.Add(linger)))
			timerC = timer.C
		}
		select {
		case chunk := <-items:
			for i := range chunk {
				if err := s.handle(ctx, &chunk[i]); err != nil {
					return err
				}
			}
			change.PutChunk(chunk)
			if s.open && s.tail == 0 && time.Since(s.started) >= p.cfg.BatchInterval {
				if err := s.commit(ctx); err != nil {
					return err
				}
			}
		case <-timerC:
			if len(items) == 0 || time.Since(s.started) >= p.cfg.BatchInterval {
				if err := s.commit(ctx); err != nil {
					return err
				}
			}
		case <-srcDone:
			if srcErr == nil {
				srcErr = errors.New("source stream ended")
			}
			return sourceErr(srcErr)
		case <-ctx.Done():
			return s.drain(ctx)
		}
	}
}

// checkSlot compares the slot's confirmed position with the committed state, and makes the
// slot's starting point part of that state.
//
// A new pipeline has no offsets record: its committed state starts at the slot's confirmed
// position, so even the partial offsets records of a first transaction that is split carry
// an ack_lsn the slot agrees with. Records written before that rule (ack_lsn 0 on a record
// that is not complete: the pipeline never finished a transaction) are accepted when the slot
// is not confirmed past the transaction they name: every transaction before it reached the
// pipeline first, so the slot moved over nothing the pipeline did not see.
func (s *session) checkSlot(stream change.Streaming, hasCommitted bool) error {
	switch {
	case !hasCommitted:
		s.committed.AckLSN = stream.AckedLSN
	case s.committed.AckLSN == 0 && !s.committed.Complete && stream.AckedLSN <= s.committed.Pos.Tx:
		s.committed.AckLSN = stream.AckedLSN
	case stream.AckedLSN > s.committed.AckLSN:
		return &GapError{AckedLSN: stream.AckedLSN, Committed: s.committed}
	}
	return nil
}

func (p *Pipeline) loadOffsets(ctx context.Context) (offsets.Record, bool, error) {
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rec, ok, err := offsets.Load(lctx, p.cfg.KafkaOpts, p.cfg.OffsetsTopic, p.cfg.Name)
	if err != nil {
		return rec, false, kafkaErr(fmt.Errorf("reading committed position: %w", err))
	}
	return rec, ok, nil
}

// drain finishes the open batch on shutdown: a batch that ends at a transaction boundary is
// committed (and acknowledged); a partial one is aborted and replays on the next start.
func (s *session) drain(ctx context.Context) error {
	if !s.open {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Second)
	defer cancel()
	if s.tail == 0 {
		if err := s.commit(dctx); err != nil {
			s.p.log.Warn("final commit failed; the batch replays on the next start", "err", err)
		}
		return nil
	}
	if s.p.cfg.ExactlyOnce {
		_ = s.cl.AbortBufferedRecords(dctx)
		_ = s.cl.EndTransaction(dctx, kgo.TryAbort)
	}
	return nil
}

func (s *session) begin() error {
	if s.p.cfg.ExactlyOnce {
		if err := s.cl.BeginTransaction(); err != nil {
			return kafkaErr(fmt.Errorf("beginning kafka transaction: %w", err))
		}
	}
	s.open, s.started = true, time.Now()
	return nil
}

func (s *session) handle(ctx context.Context, it *change.Item) error {
	if c := it.Commit; c != nil {
		if s.committed.Covers(c.Pos, true) {
			// Durable already (published by an earlier session): tell the source, which may
			// confirm the server's WAL end only once everything it emitted is acknowledged.
			if c.AckLSN > 0 {
				s.p.src.Ack(c.AckLSN)
			}
			return nil
		}
		if !s.open {
			if err := s.begin(); err != nil {
				return err
			}
		}
		s.lastComplete, s.lastPos, s.tail, s.tailBytes = c, c.Pos, 0, 0
		if !c.Time.IsZero() {
			s.commitTimes = append(s.commitTimes, c.Time)
		}
		if m := s.p.cfg.Metrics; m != nil && !c.Time.IsZero() {
			m.SourceLagSecs.WithLabelValues(s.p.cfg.Name).Set(max(0, time.Since(c.Time).Seconds()))
		}
		if s.events >= s.p.cfg.BatchMaxEvents || s.bytes >= s.p.cfg.BatchMaxBytes {
			return s.commit(ctx)
		}
		return nil
	}
	ev := &it.Event
	if s.committed.Covers(ev.Pos, false) {
		return nil
	}
	if !s.open {
		if err := s.begin(); err != nil {
			return err
		}
	}
	if ev.Err != nil {
		return s.poison(ctx, ev, ev.Err)
	}
	if s.p.isTooLarge(ev.Pos) {
		return s.poison(ctx, ev, &encode.Error{Class: encode.ClassRecordTooLarge, Table: ev.Table.QualifiedName(),
			Err: fmt.Errorf("the broker refused the record as too large for topic %s (MESSAGE_TOO_LARGE); raise the topic's max.message.bytes", s.p.enc.Topic(ev.Table))})
	}
	if err := s.p.enc.Encode(ctx, ev, &s.rec); err != nil {
		if encode.Retriable(err) {
			if m := s.p.cfg.Metrics; m != nil {
				m.RegistryErrors.WithLabelValues(s.p.cfg.Name, "unavailable").Inc()
			}
			return registryErr(fmt.Errorf("encoding %s: %w", ev.Table.QualifiedName(), err))
		}
		if m := s.p.cfg.Metrics; m != nil && encode.ClassOf(err) == encode.ClassSchemaRejected {
			m.RegistryErrors.WithLabelValues(s.p.cfg.Name, "rejected").Inc()
		}
		return s.poison(ctx, ev, err)
	}
	limit, err := s.topicLimit(ctx, s.rec.Topic)
	if err != nil {
		return err
	}
	size := len(s.rec.Key) + len(s.rec.Value)
	if size+recordOverhead > limit {
		return s.poison(ctx, ev, &encode.Error{Class: encode.ClassRecordTooLarge, Table: ev.Table.QualifiedName(),
			Err: fmt.Errorf("record of %d bytes does not fit topic %s (limit %d bytes: the smaller of the topic's max.message.bytes and kafka.max_message_bytes, less %d bytes of batch overhead); raise both", size, s.rec.Topic, limit, recordOverhead)})
	}
	rec := &kgo.Record{Topic: s.rec.Topic, Key: bytes.Clone(s.rec.Key), Value: bytes.Clone(s.rec.Value)}
	if len(s.deadKeys) > 0 {
		if pos, ok := s.deadKeys[deadKey(s.rec.Topic, ev)]; ok {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderAfterDeadLetter, Value: []byte(pos)})
		}
	}
	s.produceData(ctx, rec, ev.Pos)
	if s.p.cfg.Tombstones {
		if t, ok := s.rec.Tombstone(); ok {
			s.produceData(ctx, &kgo.Record{Topic: t.Topic, Key: t.Key, Headers: rec.Headers}, ev.Pos)
			size += len(t.Key)
		}
	}
	s.account(ev, size)
	// A single source transaction larger than a batch is split: the offsets record then names
	// its last published event so a restart resumes exactly after it.
	if s.tail >= s.p.cfg.BatchMaxEvents || s.tailBytes >= s.p.cfg.BatchMaxBytes {
		return s.commit(ctx)
	}
	return nil
}

// recordOverhead is what a record batch adds around one record's key and value (batch header,
// record framing, headers); a record must fit the topic's limit with it.
const recordOverhead = 512

// HeaderAfterDeadLetter marks a change published after an earlier change of the same key went
// to the dead-letter topic; its value is that dead letter's source position.
const HeaderAfterDeadLetter = "cdcd.after_dead_letter"

func (s *session) account(ev *change.Event, size int) {
	c := s.counts[countKey{ev.Table, ev.Op}]
	if c == nil {
		c = &count{}
		s.counts[countKey{ev.Table, ev.Op}] = c
	}
	c.events++
	c.bytes += size
	s.events++
	s.bytes += size
	s.tail++
	s.tailBytes += size
	s.lastPos = ev.Pos
}

// poison handles a change that cannot be published: with on_error fail it stops the pipeline
// naming table, key, position and cause; with on_error dlq it writes the change to the
// dead-letter topic in the open transaction, so it commits with the batch and its position.
func (s *session) poison(ctx context.Context, ev *change.Event, cause error) error {
	perr := &PoisonError{Pipeline: s.p.cfg.Name, Table: ev.Table.QualifiedName(), Key: keyString(ev), Pos: ev.Pos, Err: cause}
	if !s.p.cfg.DeadLetter {
		return perr
	}
	class, ok := dlq.Classify(cause)
	if !ok {
		class = dlq.ClassOther
	}
	key, value, err := dlq.Marshal(s.p.cfg.Name, ev, class, cause.Error())
	if err != nil {
		return fmt.Errorf("%w (and writing its dead letter failed: %v)", perr, err)
	}
	if len(key)+len(value)+recordOverhead > s.p.cfg.DLQMaxMessageBytes {
		return fmt.Errorf("%w (and its dead letter of %d bytes exceeds dlq.max_message_bytes %d; raise it)", perr, len(key)+len(value), s.p.cfg.DLQMaxMessageBytes)
	}
	if err := s.ensureDLQ(ctx); err != nil {
		return err
	}
	topic := s.p.enc.Topic(ev.Table)
	now := time.Now().UTC()
	hdr := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	rec := &kgo.Record{Topic: s.p.cfg.DLQTopic, Key: key, Value: value, Headers: []kgo.RecordHeader{
		hdr("cdcd.error.class", class),
		hdr("cdcd.error.message", cause.Error()),
		hdr("cdcd.pipeline", s.p.cfg.Name),
		hdr("cdcd.source.table", ev.Table.QualifiedName()),
		hdr("cdcd.source.position", ev.Pos.String()),
		hdr("cdcd.topic", topic),
		hdr("cdcd.schema.subject", topic+"-value"),
		hdr("cdcd.version", s.p.cfg.Version),
		hdr("cdcd.time", now.Format(time.RFC3339Nano)),
	}}
	var ee *encode.Error
	if errors.As(cause, &ee) && ee.Subject != "" {
		rec.Headers[6] = hdr("cdcd.schema.subject", ee.Subject)
	}
	s.produce(ctx, rec)
	if s.deadKeys == nil {
		s.deadKeys = map[string]string{}
	}
	if len(s.deadKeys) >= offsets.MaxDeadKeys {
		for k := range s.deadKeys { // forget an arbitrary old one
			delete(s.deadKeys, k)
			break
		}
	}
	s.deadKeys[deadKey(topic, ev)] = ev.Pos.String()
	s.deadLetters = append(s.deadLetters, deadLetterCount{ev.Table.QualifiedName(), class})
	s.account(ev, len(key)+len(value))
	if n, ok := s.p.logDeadLetter(ev.Table.QualifiedName(), class); ok {
		s.p.log.Warn("change dead-lettered", "table", ev.Table.QualifiedName(), "key", keyString(ev), "position", ev.Pos.String(),
			"class", class, "dlq_topic", s.p.cfg.DLQTopic, "cause", cause.Error(), "more_since_last_line", n)
	}
	return nil
}

// deadLetterLogEvery bounds dead-letter log lines to one per table and class per interval: a
// table whose schema the registry refuses dead-letters every row, and the log must stay
// readable. The metric counts every one.
const deadLetterLogEvery = 10 * time.Second

type dlLog struct {
	at         time.Time
	suppressed int
}

// logDeadLetter reports whether to log a dead letter now, and how many were not logged since
// the last line. Only the session goroutine calls it.
func (p *Pipeline) logDeadLetter(table, class string) (int, bool) {
	if p.dlLogs == nil {
		p.dlLogs = map[[2]string]*dlLog{}
	}
	k := [2]string{table, class}
	l := p.dlLogs[k]
	if l == nil {
		l = &dlLog{}
		p.dlLogs[k] = l
	}
	if time.Since(l.at) < deadLetterLogEvery {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.at, l.suppressed = time.Now(), 0
	return n, true
}

type deadLetterCount struct{ table, class string }

func deadKey(topic string, ev *change.Event) string { return topic + "\x00" + dlq.KeyJSON(ev) }

// batchLimit is the producer's batch cap for topic: the limit learned before its first
// record was produced (franz-go asks once per partition, when it first sees it).
func (s *session) batchLimit(topic string) int32 {
	s.topicsMu.RLock()
	l, ok := s.topics[topic]
	s.topicsMu.RUnlock()
	if !ok {
		l = s.p.cfg.MaxMessageBytes
	}
	return int32(min(max(l, 512), 1<<30))
}

func (s *session) limitOf(topic string) (int, bool) {
	s.topicsMu.RLock()
	defer s.topicsMu.RUnlock()
	l, ok := s.topics[topic]
	return l, ok
}

func (s *session) setLimit(topic string, limit int) {
	s.topicsMu.Lock()
	s.topics[topic] = limit
	s.topicsMu.Unlock()
}

func (s *session) ensureDLQ(ctx context.Context) error {
	if _, ok := s.limitOf(s.p.cfg.DLQTopic); ok {
		return nil
	}
	if err := dlq.EnsureTopic(ctx, s.adm, s.p.cfg.DLQTopic, s.p.cfg.TopicReplication, s.p.cfg.DLQMaxMessageBytes); err != nil {
		return kafkaErr(err)
	}
	s.setLimit(s.p.cfg.DLQTopic, s.p.cfg.DLQMaxMessageBytes)
	return nil
}

func (p *Pipeline) isTooLarge(pos change.Position) bool {
	if p.tooLargeN.Load() == 0 { // the common case, without a lock per event
		return false
	}
	p.tooLargeMu.Lock()
	defer p.tooLargeMu.Unlock()
	return p.tooLarge[pos]
}

type posKey struct{}

// produceData produces a data record; a broker refusal as too large is remembered by position.
func (s *session) produceData(ctx context.Context, r *kgo.Record, pos change.Position) {
	r.Context = context.WithValue(ctx, posKey{}, pos)
	s.produce(ctx, r)
}

func (s *session) produce(ctx context.Context, r *kgo.Record) {
	s.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			if pos, ok := r.Context.Value(posKey{}).(change.Position); ok && errors.Is(err, kerr.MessageTooLarge) {
				s.p.tooLargeMu.Lock()
				s.p.tooLarge[pos] = true
				s.p.tooLargeN.Store(int32(len(s.p.tooLarge)))
				s.p.tooLargeMu.Unlock()
			}
			s.errMu.Lock()
			if s.firstErr == nil {
				s.firstErr = err
			}
			s.errMu.Unlock()
		}
	})
}

// topicLimit creates topic if needed and returns the largest record it accepts: the smaller of
// its max.message.bytes and the producer's limit.
func (s *session) topicLimit(ctx context.Context, topic string) (int, error) {
	if l, ok := s.limitOf(topic); ok {
		return l, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.adm.CreateTopic(cctx, s.p.cfg.TopicPartitions, s.p.cfg.TopicReplication, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, kafkaErr(fmt.Errorf("creating topic %s: %w", topic, err))
	}
	limit := s.p.cfg.MaxMessageBytes
	rcs, err := s.adm.DescribeTopicConfigs(cctx, topic)
	if err != nil {
		return 0, kafkaErr(fmt.Errorf("reading the configuration of topic %s: %w", topic, err))
	}
	if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n < limit {
					limit = n
				}
			}
		}
	}
	s.setLimit(topic, limit)
	return limit, nil
}

// commit makes the batch durable with its offsets record, then acknowledges the source.
func (s *session) commit(ctx context.Context) error {
	if !s.open {
		return nil
	}
	off := offsets.Record{Pos: s.lastPos, Complete: s.tail == 0, AckLSN: s.committed.AckLSN, CommitTime: s.committed.CommitTime,
		WrittenAt: time.Now().UTC(), DeadKeys: s.deadKeys}
	if c := s.lastComplete; c != nil {
		off.AckLSN, off.CommitTime = c.AckLSN, c.Time
	}
	t0 := time.Now()
	// A commit that cannot finish within the transaction timeout will be aborted by the broker
	// anyway: give up then and let the supervisor start over (and say so in the log).
	ctx, cancel := context.WithTimeout(ctx, max(s.p.cfg.TransactionTimeout, 5*time.Second))
	defer cancel()
	offRec := off.KafkaRecord(s.p.cfg.OffsetsTopic, s.p.cfg.Name)
	if s.p.cfg.ExactlyOnce {
		s.produce(ctx, offRec)
	}
	if err := s.cl.Flush(ctx); err != nil {
		s.countKafkaError("flush")
		return kafkaErr(fmt.Errorf("flushing records: %w", err))
	}
	s.errMu.Lock()
	perr := s.firstErr
	s.errMu.Unlock()
	if perr != nil {
		s.countKafkaError("produce")
		s.abort(ctx)
		if errors.Is(perr, kerr.MessageTooLarge) && !s.p.cfg.DeadLetter {
			s.p.tooLargeMu.Lock()
			var at []string
			for pos := range s.p.tooLarge {
				at = append(at, pos.String())
			}
			s.p.tooLargeMu.Unlock()
			return &PoisonError{Pipeline: s.p.cfg.Name, Table: "(see position)", Key: "(unknown)", Pos: s.lastPos,
				Err: fmt.Errorf("the broker refused records at %v as too large (MESSAGE_TOO_LARGE): raise the topic's max.message.bytes, or use on_error: dlq", at)}
		}
		return kafkaErr(fmt.Errorf("producing records: %w", perr))
	}
	if s.p.cfg.ExactlyOnce {
		if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			s.countTxn("abort")
			s.countKafkaError("commit")
			// The outcome may be unknown (the commit can succeed although this errs): the next
			// session reads the offsets topic and resumes after whatever did commit.
			return kafkaErr(fmt.Errorf("committing kafka transaction: %w", err))
		}
	} else {
		// at_least_once: the position is written only after every record was acknowledged.
		if err := s.cl.ProduceSync(ctx, offRec).FirstErr(); err != nil {
			return kafkaErr(fmt.Errorf("writing position: %w", err))
		}
	}
	now := time.Now()
	s.countTxn("commit")
	if m := s.p.cfg.Metrics; m != nil {
		name := s.p.cfg.Name
		m.CommitDuration.WithLabelValues(name).Observe(now.Sub(t0).Seconds())
		e2e := m.EndToEnd.WithLabelValues(name)
		for _, ct := range s.commitTimes {
			e2e.Observe(max(0, now.Sub(ct).Seconds()))
		}
		for k, c := range s.counts {
			m.EventsPublished.WithLabelValues(name, k.table.QualifiedName(), k.op.Name()).Add(float64(c.events))
			m.BytesPublished.WithLabelValues(name, k.table.QualifiedName(), k.op.Name()).Add(float64(c.bytes))
		}
		if !off.CommitTime.IsZero() {
			m.LastCommitted.WithLabelValues(name).Set(float64(off.CommitTime.UnixNano()) / 1e9)
		}
		for _, d := range s.deadLetters {
			m.DeadLetters.WithLabelValues(name, d.table, d.class).Inc()
		}
	}
	s.p.published.Add(uint64(s.events))
	if off.AckLSN > 0 {
		s.p.src.Ack(off.AckLSN)
	}
	s.committed = off
	s.deadKeys = clone(off.DeadKeys)
	s.reset()
	return nil
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

func (s *session) abort(ctx context.Context) {
	if s.p.cfg.ExactlyOnce {
		_ = s.cl.AbortBufferedRecords(ctx)
		_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
		s.countTxn("abort")
	}
	s.deadKeys = clone(s.committed.DeadKeys)
	s.reset()
}

func (s *session) countKafkaError(kind string) {
	if m := s.p.cfg.Metrics; m != nil {
		m.KafkaErrors.WithLabelValues(s.p.cfg.Name, kind).Inc()
	}
}

func (s *session) countTxn(outcome string) {
	if m := s.p.cfg.Metrics; m != nil {
		m.Transactions.WithLabelValues(s.p.cfg.Name, outcome).Inc()
	}
}

func (s *session) reset() {
	s.open, s.events, s.bytes, s.tail, s.tailBytes, s.lastComplete = false, 0, 0, 0, 0, nil
	s.commitTimes = s.commitTimes[:0]
	s.deadLetters = s.deadLetters[:0]
	clear(s.counts)
	s.firstErr = nil
}

// keyString renders an event's key for error messages, e.g. {id=42, region="eu"}.
func keyString(ev *change.Event) string {
	row := ev.After
	if row == nil {
		row = ev.Before
	}
	if ev.Table == nil || len(ev.Table.KeyColumns) == 0 || row == nil {
		return "(no key)"
	}
	var b strings.Builder
	b.WriteByte('{')
	for n, i := range ev.Table.KeyColumns {
		if n > 0 {
			b.WriteString(", ")
		}
		c := ev.Table.Columns[i]
		b.WriteString(c.Name)
		b.WriteByte('=')
		if i < len(row) {
			b.WriteString(formatValue(c, row[i]))
		}
	}
	b.WriteByte('}')
	return b.String()
}

func formatValue(c change.Column, v change.Value) string {
	switch v.State {
	case change.Null:
		return "NULL"
	case change.Unchanged:
		return "(unchanged)"
	case change.Absent:
		return "(absent)"
	}
	switch c.Kind {
	case change.KindBool, change.KindInt16, change.KindInt32, change.KindInt64, change.KindDate, change.KindTime, change.KindTimestamp, change.KindTimestampTZ:
		return fmt.Sprint(v.Int)
	case change.KindUint64:
		return fmt.Sprint(v.Uint)
	case change.KindFloat32, change.KindFloat64:
		return fmt.Sprint(v.Float)
	case change.KindBytes:
		return fmt.Sprintf("%x", v.Bytes)
	}
	return fmt.Sprintf("%q", v.Str)
}
