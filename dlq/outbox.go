package dlq

import (
	"fmt"
	"slices"

	"github.com/cdcd-dev/cdcd/change"
)

// LetterOutbox is what makes a dead letter's change an outbox event (change.OutboxEvent):
// the key and payload are the row's columns named here.
type LetterOutbox struct {
	Topic         string         `json:"topic"`
	RouteColumn   string         `json:"route_column"`
	KeyColumn     string         `json:"key_column"`
	PayloadColumn string         `json:"payload_column"`
	PayloadSchema string         `json:"payload_schema,omitempty"`
	Headers       []LetterHeader `json:"headers"`
}

// LetterHeader is one header of an outbox event (Value base64, null for a NULL column).
type LetterHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func letterOutbox(o *change.OutboxEvent) *LetterOutbox {
	if o == nil {
		return nil
	}
	l := &LetterOutbox{Topic: o.Topic, RouteColumn: o.RouteColumn, KeyColumn: o.KeyColumn.Name,
		PayloadColumn: o.PayloadColumn.Name, PayloadSchema: o.PayloadSchema, Headers: []LetterHeader{}}
	for _, h := range o.Headers {
		l.Headers = append(l.Headers, LetterHeader{h.Key, h.Value})
	}
	return l
}

// event rebuilds the outbox event of ev, whose After is the outbox row.
func (l *LetterOutbox) event(ev *change.Event) (*change.OutboxEvent, error) {
	t := ev.Table
	col := func(name string) (int, error) {
		i := slices.IndexFunc(t.Columns, func(c change.Column) bool { return c.Name == name })
		if i < 0 || i >= len(ev.After) {
			return 0, fmt.Errorf("outbox column %s is not in the row", name)
		}
		return i, nil
	}
	k, err := col(l.KeyColumn)
	if err != nil {
		return nil, err
	}
	p, err := col(l.PayloadColumn)
	if err != nil {
		return nil, err
	}
	o := &change.OutboxEvent{Topic: l.Topic, RouteColumn: l.RouteColumn, Key: ev.After[k], KeyColumn: t.Columns[k],
		Payload: ev.After[p], PayloadColumn: t.Columns[p], PayloadSchema: l.PayloadSchema}
	for _, h := range l.Headers {
		o.Headers = append(o.Headers, change.Header{Key: h.Key, Value: h.Value})
	}
	return o, nil
}
