package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
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
// acknowledged to the source, since it is durable already.
func (s *Sink) Add(ctx context.Context, it *change.Item) error {
	b := &s.batch
	if c := it.Commit; c != nil {
		if s.committed.Covers(c.Pos, true) {
			// Published by an earlier session: acknowledge it, so the source sees everything it
			// emitted acknowledged. Never beyond what the offsets record holds: the slot must
			// not get ahead of Kafka (an empty position-only commit covered by a partial record
			// could end past the record's ack_lsn).
			if c.AckLSN > 0 {
				s.cfg.Ack(min(c.AckLSN, s.committed.AckLSN))
			}
			return nil
		}
		if !b.open {
			if err := s.begin(); err != nil {
				return err
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
	ev := &it.Event
	if s.committed.Covers(ev.Pos, false) {
		return nil
	}
	if !b.open {
		if err := s.begin(); err != nil {
			return err
		}
	}
	if ev.Err != nil {
		return s.poison(ctx, ev, ev.Err)
	}
	refused := s.mem.refused(ev.Pos)
	if refused == refusedAlone {
		return s.poison(ctx, ev, &encode.Error{Class: encode.ClassRecordTooLarge, Table: ev.Table.QualifiedName(),
			Err: fmt.Errorf("the broker refused the record as too large for topic %s (MESSAGE_TOO_LARGE); raise the topic's max.message.bytes", s.enc.Topic(ev.Table))})
	}
	if err := s.enc.Encode(ctx, ev, &s.rec); err != nil {
		if encode.Retriable(err) {
			if m := s.cfg.Metrics; m != nil {
				m.RegistryErrors.WithLabelValues(s.cfg.Pipeline, "unavailable").Inc()
			}
			return &RegistryError{fmt.Errorf("encoding %s: %w", ev.Table.QualifiedName(), err)}
		}
		if ce := (*encode.Error)(nil); !errors.As(err, &ce) {
			// The registry refused cdcd itself (401/403, a certificate), not this record: dead
			// letters would swallow every change, so stop as on_error: fail does.
			return &PoisonError{Pipeline: s.cfg.Pipeline, Table: ev.Table.QualifiedName(), Key: keyString(ev), Pos: ev.Pos,
				Err: fmt.Errorf("%w (fix: check schema_registry url, username and password, and that this account may read and write subjects)", err)}
		}
		if m := s.cfg.Metrics; m != nil && encode.ClassOf(err) == encode.ClassSchemaRejected {
			m.RegistryErrors.WithLabelValues(s.cfg.Pipeline, "rejected").Inc()
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
	// A record whose batch the broker refused before goes in a batch of its own, so that a
	// refusal now names it alone (and its neighbours of then are not dead-lettered with it).
	alone := refused == refusedInBatch
	rec := s.newDataRecord(ev.Pos, alone)
	rec.Topic, rec.Key, rec.Value = s.rec.Topic, s.copyBytes(s.rec.Key), s.copyBytes(s.rec.Value)
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
		t.Topic, t.Key, t.Headers = rec.Topic, rec.Key, rec.Headers
		s.produce(t)
		size += len(t.Key)
	}
	s.account(ev, size)
	// A single source transaction larger than a batch is split: the offsets record then names
	// its last published event so a restart resumes exactly after it. A snapshot chunk is never
	// split: its progress commits with its last row, and the source bounds its size.
	if ev.Op != change.OpRead && (b.tail >= s.cfg.BatchMaxEvents || b.tailBytes >= s.cfg.BatchMaxBytes) {
		return s.Commit(ctx)
	}
	return nil
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
