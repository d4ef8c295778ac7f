package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/dlq"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers of dead-letter records.
const (
	HeaderErrorClass     = "cdcd.error.class"
	HeaderErrorMessage   = "cdcd.error.message"
	HeaderPipeline       = "cdcd.pipeline"
	HeaderSourceTable    = "cdcd.source.table"
	HeaderSourcePosition = "cdcd.source.position"
	HeaderTopic          = "cdcd.topic"          // the topic the change was meant for
	HeaderSchemaSubject  = "cdcd.schema.subject" // the subject that refused it, or the topic's value subject
	HeaderVersion        = "cdcd.version"
	HeaderTime           = "cdcd.time"
)

// HeaderAfterDeadLetter marks a change published after an earlier change of the same key went
// to the dead-letter topic; its value is that dead letter's source position.
const HeaderAfterDeadLetter = "cdcd.after_dead_letter"

// deadLetter handles a poison change of class: with on_error fail it stops the pipeline
// naming table, key, position and cause; with on_error dlq it writes the change to the
// dead-letter topic in the open transaction, so it commits with the batch and its position.
func (s *Sink) deadLetter(ctx context.Context, ev *change.Event, cause error, class string) error {
	perr := &PoisonError{Pipeline: s.cfg.Pipeline, Table: ev.Table.QualifiedName(), Key: keyString(ev), Pos: ev.Pos, Err: cause}
	if !s.cfg.DeadLetter {
		return perr
	}
	key, value, err := dlq.Marshal(s.cfg.Pipeline, ev, class, cause.Error())
	if err != nil {
		return fmt.Errorf("%w (and writing its dead letter failed: %v)", perr, err)
	}
	if len(key)+len(value)+recordOverhead > s.cfg.DLQMaxMessageBytes {
		return fmt.Errorf("%w (and its dead letter of %d bytes exceeds dlq.max_message_bytes %d; raise it)", perr, len(key)+len(value), s.cfg.DLQMaxMessageBytes)
	}
	if err := s.ensureDLQ(ctx); err != nil {
		return err
	}
	topic := s.enc.Topic(ev.Table)
	if ev.Outbox != nil && ev.Outbox.Topic != "" {
		topic = ev.Outbox.Topic
	}
	subject := topic + "-value"
	var ee *encode.Error
	if errors.As(cause, &ee) && ee.Subject != "" {
		subject = ee.Subject
	}
	hdr := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	s.produce(&kgo.Record{Topic: s.cfg.DLQTopic, Key: key, Value: value, Headers: []kgo.RecordHeader{
		hdr(HeaderErrorClass, class),
		hdr(HeaderErrorMessage, cause.Error()),
		hdr(HeaderPipeline, s.cfg.Pipeline),
		hdr(HeaderSourceTable, ev.Table.QualifiedName()),
		hdr(HeaderSourcePosition, ev.Pos.String()),
		hdr(HeaderTopic, topic),
		hdr(HeaderSchemaSubject, subject),
		hdr(HeaderVersion, s.cfg.Version),
		hdr(HeaderTime, time.Now().UTC().Format(time.RFC3339Nano)),
	}})
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
	s.batch.deadLetters = append(s.batch.deadLetters, deadLetterCount{ev.Table.QualifiedName(), class})
	s.account(ev, len(key)+len(value))
	if n, ok := s.mem.logDeadLetter(ev.Table.QualifiedName(), class); ok {
		s.log.Warn("change dead-lettered", "table", ev.Table.QualifiedName(), "key", keyString(ev), "position", ev.Pos.String(),
			"class", class, "dlq_topic", s.cfg.DLQTopic, "cause", cause.Error(), "more_since_last_line", n)
	}
	return nil
}

func deadKey(topic string, ev *change.Event) string { return topic + "\x00" + dlq.KeyJSON(ev) }
