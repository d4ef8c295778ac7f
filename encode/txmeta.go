package encode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// Transaction metadata (Debezium's provide.transaction.metadata): a BEGIN record before a
// source transaction's first event and an END record after its last, on the pipeline's
// transaction topic, keyed by the transaction id. END carries the number of events the
// transaction emitted, in all and per table (data collection). The events' envelopes carry
// the same id with total_order (the event's position among the transaction's events, from 1)
// and data_collection_order (its position among the transaction's events of its table).

// TxOrder is an event's place in its source transaction (both from 1).
type TxOrder struct {
	Total, DataCollection int64
}

// TxCollection is one table's event count in an END record.
type TxCollection struct {
	DataCollection string // the qualified table name (schema.table, or database.table for MySQL)
	EventCount     int64
}

// TxBoundary is a BEGIN or END record of a source transaction.
type TxBoundary struct {
	Topic  string
	ID     string
	End    bool      // false: BEGIN
	TS     time.Time // the source transaction's commit time (the clock when unknown)
	Events int64     // END only: events of the transaction
	// Collections (END only) lists the tables in the order their first event came.
	Collections []TxCollection
}

const txMetaNamespace = "io.debezium.connector.common"

var (
	txMetaKeySchema = jsonString(jobj{{"type", "record"}, {"name", "TransactionMetadataKey"}, {"namespace", txMetaNamespace},
		{"fields", []any{required("id", "string")}}})
	txMetaCollection = jobj{{"type", "record"}, {"name", "TransactionDataCollection"}, {"namespace", txMetaNamespace},
		{"fields", []any{required("data_collection", "string"), required("event_count", "long")}}}
	txMetaValueSchema = jsonString(jobj{{"type", "record"}, {"name", "TransactionMetadataValue"}, {"namespace", txMetaNamespace},
		{"fields", []any{
			required("status", "string"),
			required("id", "string"),
			optional("event_count", "long"),
			jobj{{"name", "data_collections"}, {"type", []any{"null", jobj{{"type", "array"}, {"items", txMetaCollection}}}}, {"default", nil}},
			required("ts_ms", "long"),
		}}})
)

// TxMetaSchemas returns the key and value schemas of transaction metadata records.
func TxMetaSchemas() (key, value string) { return txMetaKeySchema, txMetaValueSchema }

// EncodeTxBoundary writes b into dst, registering the metadata schemas under b.Topic's
// subjects on first use. Errors are registry trouble (see Retriable) or a refusal.
func (e *Encoder) EncodeTxBoundary(ctx context.Context, b TxBoundary, dst *Record) error {
	dst.Topic, dst.Key, dst.Value, dst.Op, dst.Time = "", nil, nil, 0, time.Time{}
	if b.ID == "" {
		return errors.New("transaction metadata: a transaction without an id")
	}
	keyID, valueID, err := e.txMetaIDs(ctx, b.Topic)
	if err != nil {
		return err
	}
	k := appendHeader(dst.keyBuf[:0], keyID)
	k = appendString(k, b.ID)
	dst.keyBuf = k
	v := appendHeader(dst.valBuf[:0], valueID)
	if b.End {
		v = appendString(v, "END")
	} else {
		v = appendString(v, "BEGIN")
	}
	v = appendString(v, b.ID)
	if b.End {
		v = append(v, unionValue)
		v = appendLong(v, b.Events)
		v = append(v, unionValue)
		if len(b.Collections) > 0 {
			v = appendLong(v, int64(len(b.Collections)))
			for _, c := range b.Collections {
				v = appendString(v, c.DataCollection)
				v = appendLong(v, c.EventCount)
			}
		}
		v = appendLong(v, 0) // end of the array
	} else {
		v = append(v, unionNull, unionNull)
	}
	ts := b.TS
	if ts.IsZero() {
		ts = e.cfg.Now()
	}
	v = appendLong(v, ts.UnixMilli())
	dst.valBuf = v
	dst.Topic, dst.Key, dst.Value = b.Topic, dst.keyBuf, dst.valBuf
	return nil
}

// txMetaIDs registers (once) the metadata schemas under topic's subjects.
func (e *Encoder) txMetaIDs(ctx context.Context, topic string) (keyID, valueID int, err error) {
	if v, ok := e.txMeta.Load(topic); ok { // every transaction: no lock, no registry
		ids := v.([2]int)
		return ids[0], ids[1], nil
	}
	if err := checkTopic(topic); err != nil {
		return 0, 0, fmt.Errorf("transaction metadata topic: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := &tablePlan{qname: "transaction metadata", topic: topic}
	if keyID, err = e.register(ctx, p, topic+"-key", txMetaKeySchema); err != nil {
		return 0, 0, err
	}
	if valueID, err = e.register(ctx, p, topic+"-value", txMetaValueSchema); err != nil {
		return 0, 0, err
	}
	e.txMeta.Store(topic, [2]int{keyID, valueID})
	return keyID, valueID, nil
}

// TxTracker follows the source transaction a stream of events belongs to, counting its
// events in all and per table, for the envelopes' transaction block and the END record. The
// source replays a transaction from its start after a restart (events a committed offset
// covers included), so counting every event handed to Next, covered or not, gives the same
// orders in every session. Not safe for concurrent use.
type TxTracker struct {
	tx     uint64 // Position.Tx of the open transaction (0: none)
	id     string
	ts     time.Time
	total  int64
	tables []txTable
	begun  bool
}

// txTable is one table's count in the open transaction (named by its parts: building the
// qualified name for every event would allocate on the hot path).
type txTable struct {
	schema, name string
	events       int64
}

// Next counts ev (an event of a source transaction: TxID set, not a snapshot read) and
// returns its order. first is true for the first event the tracker sees of a transaction.
func (t *TxTracker) Next(ev *change.Event) (order TxOrder, first bool) {
	if ev.Pos.Tx != t.tx || t.id != ev.TxID {
		*t = TxTracker{tx: ev.Pos.Tx, id: ev.TxID, ts: ev.CommitTime, tables: t.tables[:0]}
		first = true
	}
	t.total++
	schema, name := ev.Table.Schema, ev.Table.Name
	i := len(t.tables) - 1
	for ; i >= 0 && (t.tables[i].name != name || t.tables[i].schema != schema); i-- {
	}
	if i < 0 {
		t.tables = append(t.tables, txTable{schema: schema, name: name})
		i = len(t.tables) - 1
	}
	t.tables[i].events++
	return TxOrder{Total: t.total, DataCollection: t.tables[i].events}, first
}

// Begun reports whether the open transaction's BEGIN was written (or is covered by a commit
// of an earlier session); MarkBegun records it.
func (t *TxTracker) Begun() bool { return t.begun }

// MarkBegun records that the open transaction's BEGIN is written.
func (t *TxTracker) MarkBegun() { t.begun = true }

// Open returns the open transaction's id and commit time, if tx is the transaction the
// tracker follows and it counted events of it.
func (t *TxTracker) Open(tx uint64) (id string, ts time.Time, ok bool) {
	if t.tx != tx || t.total == 0 {
		return "", time.Time{}, false
	}
	return t.id, t.ts, true
}

// End returns the END record of the open transaction on topic and forgets it.
func (t *TxTracker) End(topic string, ts time.Time) TxBoundary {
	b := TxBoundary{Topic: topic, ID: t.id, End: true, TS: ts, Events: t.total}
	if b.TS.IsZero() {
		b.TS = t.ts
	}
	for _, c := range t.tables {
		b.Collections = append(b.Collections, TxCollection{DataCollection: c.schema + "." + c.name, EventCount: c.events})
	}
	*t = TxTracker{tables: t.tables[:0]}
	return b
}
