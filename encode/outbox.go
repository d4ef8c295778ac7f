package encode

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/hamba/avro/v2"
)

// An outbox event (change.OutboxEvent, made by package shape) is encoded as a record of its
// own topic: the key is the key column's value under subject <topic>-key (the column's Avro
// type, e.g. "string"), the value the payload alone under <topic>-value: the payload column's
// Avro type (a JSON column is an Avro string), or, with a payload schema, the JSON payload
// parsed and written against it. A NULL key is a null key, a NULL payload a null value.

// outboxSuffix marks, in Encoder.topics, a topic written by outbox events: outbox tables may
// share topics with each other (Debezium's router routes many tables alike), never with a
// table's change records.
const outboxSuffix = " (outbox events)"

// outboxIDs are the schema ids of one outbox topic's key and value schemas.
type outboxIDs struct {
	keyID, valueID int
	err            error
	retryAt        time.Time
}

type outboxIDKey struct{ topic, key, value string }

type payloadSchema struct {
	s   avro.Schema
	err error
}

func (e *Encoder) encodeOutbox(ctx context.Context, ev *change.Event, dst *Record) error {
	o := ev.Outbox
	qname := ev.Table.QualifiedName()
	fail := func(class Class, col string, err error) error {
		return &Error{Class: class, Table: qname, Column: col, Err: err}
	}
	if o.Topic == "" {
		return fail(ClassValueNotRepresentable, o.RouteColumn, fmt.Errorf(
			"the outbox row names no topic: its route column is NULL or empty; fix: the application must set it on every row (or configure outbox.%s.topic without %s)", qname, "${routedByValue}"))
	}
	if err := checkTopic(o.Topic); err != nil {
		return fail(ClassValueNotRepresentable, o.RouteColumn, fmt.Errorf(
			"the outbox row's topic %q is not a valid Kafka topic name (%v); fix: route by values of letters, digits, '.', '_' and '-'", o.Topic, err))
	}

	// The key.
	var keyPlan colPlan
	var keySchema string
	switch o.Key.State {
	case change.Present:
		cp, typ, err := planColumn(&o.KeyColumn, o.KeyColumn.Kind, false, e.typeModes)
		if err != nil {
			return fail(ClassUndecodable, o.KeyColumn.Name, err)
		}
		keyPlan, keySchema = cp, jsonString(typ)
	case change.Null:
	default:
		return fail(ClassUndecodable, o.KeyColumn.Name, fmt.Errorf("the source sent no value for the outbox key column of an insert; this is a source bug"))
	}

	// The value's schema.
	var valPlan colPlan
	var valSchema string
	var parsed avro.Schema
	if o.Payload.State == change.Present {
		if o.PayloadSchema != "" {
			switch o.PayloadColumn.Kind {
			case change.KindString, change.KindJSON, change.KindBytes:
			default:
				return fail(ClassValueNotRepresentable, o.PayloadColumn.Name, fmt.Errorf(
					"a payload schema parses JSON text, and the payload column is %s; fix: make the column text or json, or remove payload_schema", o.PayloadColumn.Kind))
			}
			ps := e.payloadSchema(o.PayloadSchema)
			if ps.err != nil {
				return fail(ClassSchemaRejected, o.PayloadColumn.Name, fmt.Errorf("payload schema: %w", ps.err))
			}
			parsed, valSchema = ps.s, strings.TrimSpace(o.PayloadSchema)
		} else {
			cp, typ, err := planColumn(&o.PayloadColumn, o.PayloadColumn.Kind, false, e.typeModes)
			if err != nil {
				return fail(ClassUndecodable, o.PayloadColumn.Name, err)
			}
			valPlan, valSchema = cp, jsonString(typ)
		}
	} else if o.Payload.State != change.Null {
		return fail(ClassUndecodable, o.PayloadColumn.Name, fmt.Errorf("the source sent no value for the outbox payload column of an insert; this is a source bug"))
	}

	ids, err := e.outboxIDs(ctx, qname, o.Topic, keySchema, valSchema)
	if err != nil {
		return err
	}
	if keySchema != "" {
		k := appendHeader(dst.keyBuf[:0], ids.keyID)
		k, ferr := appendValue(k, &keyPlan, &o.Key, &dst.sc)
		if ferr != nil {
			ferr.Table, ferr.Column = qname, o.KeyColumn.Name
			return ferr
		}
		dst.keyBuf = k
		dst.Key = k
	}
	if valSchema != "" {
		v := appendHeader(dst.valBuf[:0], ids.valueID)
		if parsed != nil {
			var raw []byte
			if o.PayloadColumn.Kind == change.KindBytes {
				raw = o.Payload.Bytes
			} else {
				raw = []byte(o.Payload.Str)
			}
			v, err = appendJSONAvro(v, parsed, raw)
			if err != nil {
				return fail(ClassValueNotRepresentable, o.PayloadColumn.Name, fmt.Errorf(
					"the payload does not fit the payload schema: %w; fix: have the application write payloads of that schema, or change outbox.%s.payload_schema (compatibly)", err, qname))
			}
		} else {
			var ferr *Error
			if v, ferr = appendValue(v, &valPlan, &o.Payload, &dst.sc); ferr != nil {
				ferr.Table, ferr.Column = qname, o.PayloadColumn.Name
				return ferr
			}
		}
		dst.valBuf = v
		dst.Value = v
	}
	dst.Topic = o.Topic
	dst.Headers = o.Headers
	return nil
}

func (e *Encoder) payloadSchema(text string) *payloadSchema {
	if v, ok := e.outboxes.Load(text); ok {
		return v.(*payloadSchema)
	}
	s, err := ParsePayloadSchema(text)
	ps := &payloadSchema{s: s, err: err}
	e.outboxes.Store(text, ps)
	return ps
}

// outboxIDs registers an outbox topic's schemas (either may be "": not needed) once.
func (e *Encoder) outboxIDs(ctx context.Context, qname, topic, keySchema, valSchema string) (*outboxIDs, error) {
	k := outboxIDKey{topic, keySchema, valSchema}
	if v, ok := e.outboxes.Load(k); ok {
		ids := v.(*outboxIDs)
		if ids.err == nil {
			return ids, nil
		}
		if e.cfg.Now().Before(ids.retryAt) {
			return nil, ids.err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if other, ok := e.topics[topic]; ok && !strings.HasSuffix(other, outboxSuffix) {
		return nil, &Error{Class: ClassSchemaRejected, Table: qname, Err: fmt.Errorf(
			"the outbox row's topic %s is the topic of table %s's changes; distinct writers never share a topic: fix: route outbox events elsewhere (outbox.%s.topic), or give the table another topic with topics.overrides", topic, other, qname)}
	}
	e.topics[topic] = qname + outboxSuffix
	p := &tablePlan{qname: qname, topic: topic}
	ids := &outboxIDs{}
	var err error
	if keySchema != "" {
		ids.keyID, err = e.register(ctx, p, topic+"-key", keySchema)
	}
	if err == nil && valSchema != "" {
		ids.valueID, err = e.register(ctx, p, topic+"-value", valSchema)
	}
	if err != nil {
		if ClassOf(err) != "" {
			e.outboxes.Store(k, &outboxIDs{err: err, retryAt: e.cfg.Now().Add(rejectionRetry)})
		}
		return nil, err
	}
	e.outboxes.Store(k, ids)
	return ids, nil
}
