package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/dlq"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batch is the open batch: one Kafka transaction in exactly_once mode.
type batch struct {
	open         bool
	started      time.Time
	events       int
	bytes        int
	tail         int // events after the last complete transaction in the batch
	tailBytes    int
	lastPos      change.Position
	lastComplete *change.Commit
	// state is the State of the batch's last Commit that carried one.
	state       []byte
	commitTimes []time.Time
	counts      map[countKey]*count
	deadLetters []deadLetterCount
}

type countKey struct {
	table *change.Table
	op    change.Op
}

type count struct {
	events, bytes int
}

type deadLetterCount struct{ table, class string }

func (b *batch) reset() {
	b.open, b.events, b.bytes, b.tail, b.tailBytes, b.lastComplete, b.state = false, 0, 0, 0, 0, nil, nil
	b.commitTimes = b.commitTimes[:0]
	b.deadLetters = b.deadLetters[:0]
	clear(b.counts)
}

// Add publishes one item into the open batch (opening one if needed), and commits the batch
// when it is full. Items the committed state covers are dropped; a covered Commit is
// acknowledged to the source, since it is durable already. A change that cannot become a
// record takes the poison path (refuse); everything else reads straight down.
func (s *Sink) Add(ctx context.Context, it *change.Item) error {
	if c := it.Commit; c != nil {
		return s.addCommit(ctx, c)
	}
	ev := &it.Event
	// Every event of a source transaction is counted, covered or not: the source replays a
	// transaction from its start, so its orders are the same in every session.
	inTx := ev.TxID != "" && ev.Op != change.OpRead
	var order encode.TxOrder
	if inTx {
		order, _ = s.tx.Next(ev)
	}
	if s.committed.Covers(ev.Pos, false) {
		if inTx {
			s.tx.MarkBegun() // its BEGIN committed with the transaction's first event
		}
		return nil
	}
	if !s.batch.open {
		if err := s.begin(); err != nil {
			return err
		}
	}
	if inTx && s.cfg.TransactionTopic != "" && !s.tx.Begun() {
		id, ts, _ := s.tx.Open(ev.Pos.Tx)
		if err := s.produceTxBoundary(ctx, encode.TxBoundary{Topic: s.cfg.TransactionTopic, ID: id, TS: ts}); err != nil {
			return err
		}
		s.tx.MarkBegun()
	}
	refused := s.mem.refused(ev.Pos)
	if err := s.encode(ctx, ev, inTx, order, refused); err != nil {
		return s.refuse(ctx, ev, err)
	}
	limit, err := s.topicLimit(ctx, s.rec.Topic)
	if err != nil {
		return err
	}
	size := len(s.rec.Key) + len(s.rec.Value)
	if size+recordOverhead > limit {
		return s.deadLetter(ctx, ev, &encode.Error{Class: encode.ClassRecordTooLarge, Table: ev.Table.QualifiedName(),
			Err: fmt.Errorf("record of %d bytes does not fit topic %s (limit %d bytes: the smaller of the topic's max.message.bytes and kafka.max_message_bytes, less %d bytes of batch overhead); raise both", size, s.rec.Topic, limit, recordOverhead)},
			dlq.ClassRecordTooLarge)
	}
	// A record whose batch the broker refused before goes in a batch of its own, so that a
	// refusal now names it alone (and its neighbours of then are not dead-lettered with it).
	alone := refused == refusedInBatch
	rec := s.newDataRecord(ev.Pos, alone)
	rec.Topic, rec.Key, rec.Value, rec.Timestamp = s.rec.Topic, s.copyBytes(s.rec.Key), s.copyBytes(s.rec.Value), s.rec.Time
	for _, h := range s.rec.Headers { // an outbox event's
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: s.copyBytes(h.Value)})
	}
	if len(s.deadKeys) > 0 {
		if pos, ok := s.deadKeys[deadKey(s.rec.Topic, ev)]; ok {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderAfterDeadLetter, Value: []byte(pos)})
		}
	}
	if alone {
		if err := s.produceAlone(ctx, rec); err != nil {
			return err
		}
	} else {
		s.produce(rec)
	}
	if s.cfg.Tombstones && s.rec.Op == change.OpDelete && rec.Key != nil {
		// The delete's tombstone: the same topic and key (never written again), no value.
		t := s.newDataRecord(ev.Pos, false)
		t.Topic, t.Key, t.Headers, t.Timestamp = rec.Topic, rec.Key, rec.Headers, rec.Timestamp
		s.produce(t)
		size += len(t.Key)
	}
	s.account(ev, size)
	// A single source transaction larger than a batch is split: the offsets record then names
	// its last published event so a restart resumes exactly after it. A snapshot chunk is never
	// split: its progress commits with its last row, and the source bounds its size.
	b := &s.batch
	if ev.Op != change.OpRead && (b.tail >= s.cfg.BatchMaxEvents || b.tailBytes >= s.cfg.BatchMaxBytes) {
		return s.Commit(ctx)
	}
	return nil
}

// addCommit closes a source transaction in the batch, and commits the batch when it is full.
func (s *Sink) addCommit(ctx context.Context, c *change.Commit) error {
	b := &s.batch
	if s.committed.Covers(c.Pos, true) {
		// Published by an earlier session: acknowledge it, so the source sees everything it
		// emitted acknowledged. Never beyond what the offsets record holds: the slot must
		// not get ahead of Kafka (an empty position-only commit covered by a partial record
		// could end past the record's ack_lsn).
		if c.AckPosition > 0 {
			s.cfg.Ack(min(c.AckPosition, s.committed.AckPosition))
		}
		return nil
	}
	if !b.open {
		if err := s.begin(); err != nil {
			return err
		}
	}
	if _, _, open := s.tx.Open(c.Pos.Tx); open {
		end := s.tx.End(s.cfg.TransactionTopic, c.Time)
		if s.cfg.TransactionTopic != "" {
			if err := s.produceTxBoundary(ctx, end); err != nil {
				return err
			}
		}
	}
	b.lastComplete, b.lastPos, b.tail, b.tailBytes = c, c.Pos, 0, 0
	if c.State != nil {
		b.state = c.State
	}
	if !c.Time.IsZero() {
		b.commitTimes = append(b.commitTimes, c.Time)
		if m := s.cfg.Metrics; m != nil {
			m.SourceLagSecs.WithLabelValues(s.cfg.Pipeline).Set(max(0, time.Since(c.Time).Seconds()))
		}
	}
	if b.events >= s.cfg.BatchMaxEvents || b.bytes >= s.cfg.BatchMaxBytes {
		return s.Commit(ctx)
	}
	return nil
}

// errSourceEvent marks the source's own error about an event (change.Event.Err), so refuse
// knows an unclassified cause still concerns that event alone.
type errSourceEvent struct{ error }

func (e errSourceEvent) Unwrap() error { return e.error }

// encode makes ev into s.rec. An error is this change's failure to become a record; refuse
// decides what it calls for.
func (s *Sink) encode(ctx context.Context, ev *change.Event, inTx bool, order encode.TxOrder, refused refusal) error {
	if ev.Err != nil {
		return errSourceEvent{ev.Err}
	}
	if refused == refusedAlone {
		return &encode.Error{Class: encode.ClassRecordTooLarge, Table: ev.Table.QualifiedName(),
			Err: fmt.Errorf("the broker refused the record as too large for topic %s (MESSAGE_TOO_LARGE); raise the topic's max.message.bytes", s.enc.Topic(ev.Table))}
	}
	if inTx {
		return s.enc.EncodeInTx(ctx, ev, order, &s.rec)
	}
	return s.enc.Encode(ctx, ev, &s.rec)
}

// produceTxBoundary produces a transaction metadata record (BEGIN or END) in the open Kafka
// transaction. A failure is registry or Kafka trouble, retried by a new session.
func (s *Sink) produceTxBoundary(ctx context.Context, b encode.TxBoundary) error {
	if err := s.enc.EncodeTxBoundary(ctx, b, &s.txRec); err != nil {
		if encode.Retriable(err) {
			return &RegistryError{fmt.Errorf("transaction metadata: %w", err)}
		}
		return fmt.Errorf("transaction metadata on %s: %w", b.Topic, err)
	}
	if _, err := s.topicLimit(ctx, b.Topic); err != nil {
		return err
	}
	s.produce(&kgo.Record{Topic: b.Topic, Key: bytes.Clone(s.txRec.Key), Value: bytes.Clone(s.txRec.Value), Context: s.prodCtx})
	return nil
}

// refuse is the poison path of a change that could not become a record, classified once
// (dlq.Classify): a registry outage is retried by a new session; a source's error about the
// event, or a record the registry or the size limit refuses, is poison (dead-lettered or
// stopping the pipeline, per on_error); an encoder failure that is not about this change (the
// registry refusing cdcd's own credentials) stops the pipeline, since dead letters would
// swallow every change.
func (s *Sink) refuse(ctx context.Context, ev *change.Event, err error) error {
	verdict, class := dlq.Classify(err)
	var src errSourceEvent
	fromSource := errors.As(err, &src)
	if fromSource {
		err = src.error
	}
	switch {
	case verdict == dlq.Retry:
		if m := s.cfg.Metrics; m != nil {
			m.RegistryErrors.WithLabelValues(s.cfg.Pipeline, "unavailable").Inc()
		}
		return &RegistryError{fmt.Errorf("encoding %s: %w", ev.Table.QualifiedName(), err)}
	case verdict == dlq.Unknown && fromSource:
		class = dlq.ClassOther
	case verdict == dlq.Unknown:
		return &PoisonError{Pipeline: s.cfg.Pipeline, Table: ev.Table.QualifiedName(), Key: keyString(ev), Pos: ev.Pos,
			Err: fmt.Errorf("%w (fix: check schema_registry url, username and password, and that this account may read and write subjects)", err)}
	}
	if m := s.cfg.Metrics; m != nil && class == dlq.ClassSchemaRejected {
		m.RegistryErrors.WithLabelValues(s.cfg.Pipeline, "rejected").Inc()
	}
	return s.deadLetter(ctx, ev, err, class)
}

// produceAlone produces r in a producer batch of its own: it flushes what was produced before
// it, then r itself (inside the transaction).
func (s *Sink) produceAlone(ctx context.Context, r *kgo.Record) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.produce(r)
	return s.flush(ctx)
}

// flush waits until every record produced so far was answered.
func (s *Sink) flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		s.countKafkaError("flush")
		return &KafkaError{fmt.Errorf("flushing records: %w", err)}
	}
	return nil
}

func (s *Sink) account(ev *change.Event, size int) {
	b := &s.batch
	c := b.counts[countKey{ev.Table, ev.Op}]
	if c == nil {
		c = &count{}
		b.counts[countKey{ev.Table, ev.Op}] = c
	}
	c.events++
	c.bytes += size
	b.events++
	b.bytes += size
	b.tail++
	b.tailBytes += size
	b.lastPos = ev.Pos
}

// produce produces r under the sink's produce context, which survives the session's (see
// Sink.prodCtx); it blocks while the producer's buffer is full.
func (s *Sink) produce(r *kgo.Record) {
	s.cl.Produce(s.prodCtx, r, s.onProduced)
}

// produced is every record's promise (one func value for all, see Open). A data record the
// broker refuses as too large is remembered by its change's position.
func (s *Sink) produced(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	if pos, alone, ok := positionOf(r); ok && errors.Is(err, kerr.MessageTooLarge) {
		s.mem.markTooLarge(pos, alone)
	}
	s.errMu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.errMu.Unlock()
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
	case change.KindBool, change.KindInt16, change.KindInt32, change.KindInt64, change.KindDate, change.KindTime, change.KindDuration, change.KindTimestamp, change.KindTimestampTZ:
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
