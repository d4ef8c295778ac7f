package shape

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// RoutedByValue is the placeholder of an outbox topic template that the row's route column
// replaces (Debezium's route.topic.replacement spells it the same).
const RoutedByValue = "${routedByValue}"

// Outbox defaults: Debezium's outbox event router's column names and topic.
const (
	DefaultOutboxID      = "id"
	DefaultOutboxKey     = "aggregateid"
	DefaultOutboxPayload = "payload"
	DefaultOutboxRouteBy = "aggregatetype"
	DefaultOutboxTopic   = "outbox.event." + RoutedByValue
)

// Outbox makes a table an outbox: each inserted row becomes one event (change.OutboxEvent)
// instead of a change. Updates are not events (a warning, or a stop with FailOnUpdate);
// deletes, snapshot reads and truncates are not events either, silently.
type Outbox struct {
	// ID is the column of the event's id, sent as header "id".
	ID string
	// Key is the column of the record key (the aggregate's id).
	Key string
	// Payload is the column of the record value.
	Payload string
	// RouteBy is the column whose value replaces RoutedByValue in Topic.
	RouteBy string
	// Topic is the topic, or a template of it with RoutedByValue.
	Topic string
	// Headers are more columns sent as headers named after them.
	Headers []string
	// PayloadSchema, if set, is the Avro schema JSON payloads are parsed against.
	PayloadSchema string
	// FailOnUpdate stops the pipeline on an update of the outbox table.
	FailOnUpdate bool
}

// WithDefaults fills the columns and topic left empty with Debezium's defaults.
func (o Outbox) WithDefaults() Outbox {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&o.ID, DefaultOutboxID)
	def(&o.Key, DefaultOutboxKey)
	def(&o.Payload, DefaultOutboxPayload)
	def(&o.RouteBy, DefaultOutboxRouteBy)
	def(&o.Topic, DefaultOutboxTopic)
	return o
}

// outboxPlan is an outbox resolved against a shaped table version: column indexes.
type outboxPlan struct {
	cfg                        Outbox
	id, key, payload, routeCol int // -1: route unused (a topic without the placeholder)
	headers                    []int
	updates                    int // updates ignored so far (for the warning's rate)
	templated                  bool
}

// planOutbox resolves o against the shaped table t (src is the source's table, for messages).
func planOutbox(t *change.Table, o Outbox) (*outboxPlan, error) {
	o = o.WithDefaults()
	idx := func(name, what string) (int, error) {
		for i, c := range t.Columns {
			if c.Name == name {
				return i, nil
			}
		}
		return -1, fmt.Errorf("table %s: outbox %s column %s is not a published column of the table; fix: name the column in outbox.%s.%s, or add it to the table (and keep it in shape's columns)",
			t.QualifiedName(), what, name, t.QualifiedName(), what)
	}
	p := &outboxPlan{cfg: o, routeCol: -1, templated: strings.Contains(o.Topic, RoutedByValue)}
	var err error
	if p.id, err = idx(o.ID, "id"); err != nil {
		return nil, err
	}
	if p.key, err = idx(o.Key, "key"); err != nil {
		return nil, err
	}
	if p.payload, err = idx(o.Payload, "payload"); err != nil {
		return nil, err
	}
	if p.templated {
		if p.routeCol, err = idx(o.RouteBy, "route_by"); err != nil {
			return nil, err
		}
	}
	for _, h := range o.Headers {
		i, err := idx(h, "headers")
		if err != nil {
			return nil, err
		}
		p.headers = append(p.headers, i)
	}
	return p, nil
}

// route turns a shaped event of the outbox table into an outbox event; false drops it.
func (p *outboxPlan) route(ev *change.Event, log *slog.Logger) (bool, error) {
	switch ev.Op {
	case change.OpCreate:
	case change.OpUpdate:
		if p.cfg.FailOnUpdate {
			return false, &Error{fmt.Errorf("table %s is an outbox and an update of it is not an event (position %s); fix: only insert into an outbox table (and delete), or set outbox.%s.on_update: warn to ignore updates",
				ev.Table.QualifiedName(), ev.Pos, ev.Table.QualifiedName())}
		}
		p.updates++
		if log != nil && (p.updates == 1 || p.updates%10000 == 0) {
			log.Warn("outbox table updated: an update is not an event, it is not published; only insert into an outbox table (and delete)",
				"table", ev.Table.QualifiedName(), "position", ev.Pos.String(), "updates_ignored", p.updates)
		}
		return false, nil
	default: // deletes (processed events), snapshot reads (events are the inserts), truncates
		return false, nil
	}
	row := ev.After
	if len(row) != len(ev.Table.Columns) {
		return false, &Error{fmt.Errorf("table %s: an insert with %d values for %d columns; this is a source bug", ev.Table.QualifiedName(), len(row), len(ev.Table.Columns))}
	}
	cols := ev.Table.Columns
	o := &change.OutboxEvent{
		Topic:         p.cfg.Topic,
		RouteColumn:   p.cfg.RouteBy,
		Key:           row[p.key],
		KeyColumn:     cols[p.key],
		Payload:       row[p.payload],
		PayloadColumn: cols[p.payload],
		PayloadSchema: p.cfg.PayloadSchema,
		Headers:       make([]change.Header, 0, 1+len(p.headers)),
	}
	if p.templated {
		v, ok := headerText(cols[p.routeCol], row[p.routeCol])
		if !ok || len(v) == 0 {
			o.Topic = ""
		} else {
			o.Topic = strings.ReplaceAll(p.cfg.Topic, RoutedByValue, string(v))
		}
	}
	for _, i := range append([]int{p.id}, p.headers...) {
		v, _ := headerText(cols[i], row[i])
		name := cols[i].Name
		if i == p.id {
			name = "id"
		}
		o.Headers = append(o.Headers, change.Header{Key: name, Value: v})
	}
	ev.Outbox = o
	return true, nil
}

// headerText renders a value as a header's bytes: text as it is, numbers in decimal, times
// in ISO 8601, bytes raw. ok is false for NULL (nil) and for a value not sent.
func headerText(c change.Column, v change.Value) ([]byte, bool) {
	if v.State != change.Present {
		return nil, false
	}
	switch c.Kind {
	case change.KindBool:
		return []byte(strconv.FormatBool(v.Int != 0)), true
	case change.KindInt16, change.KindInt32, change.KindInt64:
		return strconv.AppendInt(nil, v.Int, 10), true
	case change.KindUint64:
		return strconv.AppendUint(nil, v.Uint, 10), true
	case change.KindFloat32:
		return strconv.AppendFloat(nil, v.Float, 'g', -1, 32), true
	case change.KindFloat64:
		return strconv.AppendFloat(nil, v.Float, 'g', -1, 64), true
	case change.KindBytes:
		return v.Bytes, true
	case change.KindDate:
		if v.Int > math.MaxInt32 || v.Int < math.MinInt32 {
			return strconv.AppendInt(nil, v.Int, 10), true
		}
		return []byte(time.Unix(v.Int*86400, 0).UTC().Format(time.DateOnly)), true
	case change.KindTime:
		return []byte(time.UnixMicro(v.Int).UTC().Format("15:04:05.999999")), true
	case change.KindDuration:
		return []byte(change.FormatDuration(v.Int)), true
	case change.KindTimestamp:
		if v.Int == change.TimestampInfinity || v.Int == change.TimestampNegInfinity {
			return strconv.AppendInt(nil, v.Int, 10), true
		}
		return []byte(time.UnixMicro(v.Int).UTC().Format("2006-01-02T15:04:05.999999")), true
	case change.KindTimestampTZ:
		if v.Int == change.TimestampInfinity || v.Int == change.TimestampNegInfinity {
			return strconv.AppendInt(nil, v.Int, 10), true
		}
		return []byte(time.UnixMicro(v.Int).UTC().Format(time.RFC3339Nano)), true
	case change.KindArray:
		return nil, false
	}
	return []byte(v.Str), true
}
