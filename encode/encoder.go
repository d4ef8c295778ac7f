package encode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/sr"
)

// DefaultCompatibility is the subject compatibility level cdcd asks for when none is
// configured.
const DefaultCompatibility = "BACKWARD"

// rejectionRetry is how long a table whose schema the registry refused keeps failing
// without asking the registry again. Rows keep flowing to the dead-letter topic meanwhile;
// after it, the next row retries, so fixing the subject's level un-sticks the table
// without a restart.
const rejectionRetry = time.Minute

// Config configures an Encoder. Validation happens once, in New.
type Config struct {
	// Pipeline is the pipeline name, written to source.name. Required.
	Pipeline string
	// Connector is the source kind written to source.connector: "postgresql" or "mysql".
	// For "postgresql" source.lsn carries the commit LSN. Required.
	Connector string
	// Version is the cdcd version written to source.version. Default "dev".
	Version string
	// TopicPrefix starts every default topic name: <prefix>.<schema>.<table>. Empty means
	// <schema>.<table>. It may contain only [a-zA-Z0-9._-].
	TopicPrefix string
	// TopicOverrides maps a qualified table name ("schema.table", as change.Table's
	// QualifiedName) to its topic, replacing the default.
	TopicOverrides map[string]string
	// Compatibility is the subject compatibility level to ensure (NONE, BACKWARD,
	// BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE). Default
	// BACKWARD. A subject's own level is never lowered: see Registry.EnsureCompatibility.
	Compatibility string
	// TimePrecision is how dates and times are written: ModeAvro (default: Avro logical
	// types), or Debezium's TimeAdaptive, TimeAdaptiveMicroseconds or TimeConnect, which also
	// give uuid, json and MySQL year columns Debezium's semantic names.
	TimePrecision string
	// DecimalHandling is how decimals are written: ModeAvro (default), or Debezium's
	// DecimalPrecise, DecimalDouble or DecimalString.
	DecimalHandling string
	// Now is the processing clock, written to the envelope's ts_ms. Default time.Now.
	Now func() time.Time
	// Logger receives one line per schema registered and per subject level set, and a
	// warning when a subject keeps a level of its own that does not enforce Compatibility.
	// Default: no logging.
	Logger *slog.Logger
}

// Registry is the part of a schema registry the encoder uses. SRRegistry implements it
// over franz-go's sr.Client; tests may use a fake.
type Registry interface {
	// Register registers an Avro schema under subject (or finds it, if already there) and
	// returns its id. A refusal (incompatible or invalid schema) must be returned as an
	// *Error of class ClassSchemaRejected; transient failures must satisfy Retriable.
	Register(ctx context.Context, subject, schema string) (id int, err error)
	// EnsureCompatibility gives subject the compatibility level without ever lowering what is
	// in force or overriding a level the subject has of its own, and says what it found and
	// did.
	EnsureCompatibility(ctx context.Context, subject, level string) (Compatibility, error)
}

// Record is one encoded Kafka record. Encode overwrites it, reusing its buffers: Key and
// Value stay valid until the next Encode into the same Record, so a caller that hands them
// to an asynchronous producer uses a fresh Record per event (or copies).
type Record struct {
	Topic string
	Key   []byte // Confluent-framed Avro key; nil when the table has no key or for truncates
	Value []byte // Confluent-framed Avro envelope; nil for a tombstone
	Op    change.Op
	// Headers of an outbox event's record (outbox.go); nil otherwise.
	Headers []change.Header
	// Time is when the record was made, the envelope's ts_ms: the sink gives it to the Kafka
	// record too, so one clock read serves both. Zero when the record has no ts_ms.
	Time time.Time

	keyBuf, valBuf []byte
	sc             scratch
}

// Tombstone returns the tombstone that follows a delete: the same topic and key, and a nil
// value, so log compaction can drop the key. ok is false unless r is a delete with a key.
// The returned Key is a copy, so r may be reused.
func (r *Record) Tombstone() (t Record, ok bool) {
	if r.Op != change.OpDelete || r.Key == nil {
		return Record{}, false
	}
	return Record{Topic: r.Topic, Key: bytes.Clone(r.Key), Op: change.OpDelete}, true
}

// tableState is the cached result of preparing one *change.Table.
type tableState struct {
	plan           *tablePlan
	keyID, valueID int
	err            error     // set when the table cannot be encoded
	retryAt        time.Time // zero: err is permanent (schema derivation failed)
}

// Encoder turns events into records. It is safe for concurrent use; the hot path takes no
// lock and makes no registry call.
type Encoder struct {
	cfg Config
	reg Registry

	// overrides is cfg.TopicOverrides keyed by change.Table's QualifiedName (a configured
	// name may quote its parts).
	overrides map[string]string

	tables sync.Map // *change.Table -> *tableState
	// outboxes caches outbox subjects' schema ids and payload schemas (outbox.go).
	outboxes sync.Map // outboxKey -> *outboxState
	// txMeta caches the transaction metadata schemas' ids by topic (txmeta.go).
	txMeta sync.Map // topic -> [2]int
	// typeModes is the pipeline's type modes, fixed at New.
	typeModes typeModes

	mu       sync.Mutex        // serializes preparation; guards the maps below
	subjects map[string]string // subject -> level in force, once ensured
	ids      map[string]int    // subject+"\x00"+schema -> id
	topics   map[string]string // topic -> the qualified table that writes it
}

// New validates cfg and returns an Encoder that registers schemas with reg.
func New(cfg Config, reg Registry) (*Encoder, error) {
	var errs []error
	if cfg.Pipeline == "" {
		errs = append(errs, errors.New("encode: Pipeline is required"))
	}
	if cfg.Connector == "" {
		errs = append(errs, errors.New("encode: Connector is required (postgresql or mysql)"))
	}
	if reg == nil {
		errs = append(errs, errors.New("encode: a Registry is required"))
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Compatibility == "" {
		cfg.Compatibility = DefaultCompatibility
	}
	if _, err := parseLevel(cfg.Compatibility); err != nil {
		errs = append(errs, fmt.Errorf("encode: %w", err))
	}
	errs = append(errs, checkModes(cfg.TimePrecision, cfg.DecimalHandling)...)
	if cfg.TopicPrefix != "" {
		if err := checkTopic(cfg.TopicPrefix); err != nil {
			errs = append(errs, fmt.Errorf("encode: topic prefix: %w", err))
		}
	}
	overrides := make(map[string]string, len(cfg.TopicOverrides))
	for table, topic := range cfg.TopicOverrides {
		if err := checkTopic(topic); err != nil {
			errs = append(errs, fmt.Errorf("encode: topic override for %s: %w", table, err))
		}
		k := OverrideKey(table)
		if prev, dup := overrides[k]; dup && prev != topic {
			errs = append(errs, fmt.Errorf("encode: table %s has two topic overrides (%s and %s); keep one", k, prev, topic))
		}
		overrides[k] = topic
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e := &Encoder{cfg: cfg, reg: reg, overrides: overrides, subjects: map[string]string{}, ids: map[string]int{},
		topics: map[string]string{}}
	e.typeModes = typeModes{time: cfg.TimePrecision, decimal: cfg.DecimalHandling, mysql: !e.unchangedTOAST()}
	return e, nil
}

func parseLevel(s string) (sr.CompatibilityLevel, error) {
	var l sr.CompatibilityLevel
	if err := l.UnmarshalText([]byte(s)); err != nil || l.String() == "" {
		return 0, fmt.Errorf("unknown compatibility level %q: use NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", s)
	}
	return l, nil
}

// Topic returns the topic of t's records.
func (e *Encoder) Topic(t *change.Table) string {
	return TableTopic(e.cfg.TopicPrefix, e.overrides, t.Schema, t.Name)
}

// Schemas returns the key and value schemas of t without registering them. key is "" when
// the table has no key.
func (e *Encoder) Schemas(t *change.Table) (key, value string, err error) {
	p, err := e.plan(t)
	if err != nil {
		return "", "", err
	}
	return p.keySchema, p.valueSchema, nil
}

func (e *Encoder) plan(t *change.Table) (*tablePlan, error) {
	topic := e.Topic(t)
	if err := checkTopic(topic); err != nil {
		return nil, &Error{Class: ClassSchemaRejected, Table: t.QualifiedName(),
			Err: fmt.Errorf("%w; set a shorter topic override for the table", err)}
	}
	return buildPlan(t, topic, e.unchangedTOAST(), e.typeModes)
}

func (e *Encoder) state(ctx context.Context, t *change.Table) (*tableState, error) {
	if v, ok := e.tables.Load(t); ok {
		st := v.(*tableState)
		if st.err == nil {
			return st, nil
		}
		if st.retryAt.IsZero() || e.cfg.Now().Before(st.retryAt) {
			return nil, st.err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.tables.Load(t); ok { // prepared while we waited
		st := v.(*tableState)
		if st.err == nil {
			return st, nil
		}
		if st.retryAt.IsZero() || e.cfg.Now().Before(st.retryAt) {
			return nil, st.err
		}
	}
	p, err := e.plan(t)
	if err == nil {
		err = e.claimTopic(p)
	}
	if err != nil {
		e.tables.Store(t, &tableState{err: err})
		return nil, err
	}
	st := &tableState{plan: p}
	if p.keySchema != "" {
		if st.keyID, err = e.register(ctx, p, p.topic+"-key", p.keySchema); err != nil {
			return nil, e.remember(t, err)
		}
	}
	if st.valueID, err = e.register(ctx, p, p.topic+"-value", p.valueSchema); err != nil {
		return nil, e.remember(t, err)
	}
	e.tables.Store(t, st)
	return st, nil
}

// claimTopic refuses a second table on a topic (CheckTopics refuses configurations that
// would do it; this guards what a source hands over at run time). It runs with e.mu held.
func (e *Encoder) claimTopic(p *tablePlan) error {
	if other, ok := e.topics[p.topic]; ok && other != p.qname {
		return &Error{Class: ClassSchemaRejected, Table: p.qname, Err: fmt.Errorf(
			"topic %s is already written by table %s; distinct tables never share a topic (a delete in one would erase the other's row): give one of them its own topic with topics.overrides", p.topic, other)}
	}
	e.topics[p.topic] = p.qname
	return nil
}

// remember caches a refusal for rejectionRetry so rows of the table do not each call the
// registry; other errors (transient ones) are not cached.
func (e *Encoder) remember(t *change.Table, err error) error {
	if ClassOf(err) != "" {
		e.tables.Store(t, &tableState{err: err, retryAt: e.cfg.Now().Add(rejectionRetry)})
	}
	return err
}

// register runs with e.mu held.
func (e *Encoder) register(ctx context.Context, p *tablePlan, subject, schema string) (int, error) {
	if _, ok := e.subjects[subject]; !ok {
		c, err := e.reg.EnsureCompatibility(ctx, subject, e.cfg.Compatibility)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p.qname, registryError("ensuring compatibility", subject, err))
		}
		if log := e.cfg.Logger; log != nil {
			switch {
			case c.Set:
				log.Info("schema registry subject compatibility set", "subject", subject, "level", c.Level)
			case c.Own && c.Fix != "":
				log.Warn("schema registry subject keeps its own compatibility level, which does not enforce the configured one; cdcd never overrides a subject's own level",
					"subject", subject, "level", c.Level, "configured", e.cfg.Compatibility, "fix", c.Fix)
			}
		}
		e.subjects[subject] = c.Level
	}
	k := subject + "\x00" + schema
	if id, ok := e.ids[k]; ok {
		return id, nil
	}
	id, err := e.reg.Register(ctx, subject, schema)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			c := *ce
			c.Table, c.Subject = p.qname, subject
			return 0, &c
		}
		return 0, fmt.Errorf("%s: %w", p.qname, registryError("registering schema", subject, err))
	}
	e.ids[k] = id
	if e.cfg.Logger != nil {
		e.cfg.Logger.Info("schema registered", "table", p.qname, "subject", subject, "id", id)
	}
	return id, nil
}

// Encode writes ev into dst. On error dst holds no record; the error is an *Error (a poison
// record: see the error's Class) or, for registry trouble, an error to test with
// Retriable. Deletes of keyed tables should be followed by dst.Tombstone() unless disabled.
// The transaction block's orders are the event's index in its transaction + 1; a caller that
// follows whole transactions gives exact ones with EncodeInTx.
func (e *Encoder) Encode(ctx context.Context, ev *change.Event, dst *Record) error {
	o := int64(ev.Pos.Index) + 1
	return e.EncodeInTx(ctx, ev, TxOrder{Total: o, DataCollection: o}, dst)
}

// EncodeInTx is Encode with the event's place in its source transaction (see TxTracker),
// written to the envelope's transaction block when the event has a TxID.
func (e *Encoder) EncodeInTx(ctx context.Context, ev *change.Event, order TxOrder, dst *Record) error {
	dst.Topic, dst.Key, dst.Value, dst.Op, dst.Headers, dst.Time = "", nil, nil, ev.Op, nil, time.Time{}
	if ev.Table == nil {
		return &Error{Class: ClassUndecodable, Err: errors.New("event has no table; this is a source bug")}
	}
	if ev.Outbox != nil {
		return e.encodeOutbox(ctx, ev, dst)
	}
	st, err := e.state(ctx, ev.Table)
	if err != nil {
		return err
	}
	p := st.plan

	var before, after, keyRow []change.Value
	switch ev.Op {
	case change.OpCreate, change.OpRead:
		after, keyRow = ev.After, ev.After
	case change.OpUpdate:
		before, after, keyRow = ev.Before, ev.After, ev.After
	case change.OpDelete:
		before, keyRow = ev.Before, ev.Before
	case change.OpTruncate:
	default:
		return &Error{Class: ClassUndecodable, Table: p.qname, Err: fmt.Errorf("unknown op %v; this is a source bug", ev.Op)}
	}
	if ev.Op != change.OpTruncate && keyRow == nil {
		return &Error{Class: ClassUndecodable, Table: p.qname, Err: fmt.Errorf(
			"%s event without the row it needs; this is a source bug", ev.Op.Name())}
	}

	if len(p.key) > 0 && ev.Op != change.OpTruncate {
		k := appendHeader(dst.keyBuf[:0], st.keyID)
		if k, err = p.appendRecord(k, keyRow, p.key, &dst.sc); err != nil {
			dst.keyBuf = k[:0]
			return err
		}
		dst.keyBuf = k
	}

	v := appendHeader(dst.valBuf[:0], st.valueID)
	if before != nil && !complete(before) && ev.Op == change.OpDelete && e.typeModes.debezium() {
		// Debezium's modes write a delete's before as Debezium does: the key and whatever
		// else the source sent, null for columns it did not send (its JDBC sink needs a
		// before to delete by). Only when every such column may be null.
		before = p.nullFilled(before, &dst.sc)
	}
	if before != nil && complete(before) { // see "The before image" in the package doc
		v = append(v, unionValue)
		if v, err = p.appendRecord(v, before, nil, &dst.sc); err != nil {
			dst.valBuf = v[:0]
			return err
		}
	} else {
		v = append(v, unionNull)
	}
	if after != nil {
		v = append(v, unionValue)
		if v, err = p.appendRecord(v, after, nil, &dst.sc); err != nil {
			dst.valBuf = v[:0]
			return err
		}
	} else {
		v = append(v, unionNull)
	}
	v = e.appendSource(v, ev, &dst.sc)
	v = appendString(v, ev.Op.String())
	v = append(v, unionValue)
	dst.Time = e.cfg.Now()
	v = appendLong(v, dst.Time.UnixMilli())
	if ev.TxID != "" {
		v = append(v, unionValue)
		v = appendString(v, ev.TxID)
		v = appendLong(v, order.Total)
		v = appendLong(v, order.DataCollection)
	} else {
		v = append(v, unionNull)
	}
	v = p.appendUnchanged(v, after)
	dst.valBuf = v

	dst.Topic = p.topic
	if len(p.key) > 0 && ev.Op != change.OpTruncate {
		dst.Key = dst.keyBuf
	}
	dst.Value = dst.valBuf
	return nil
}

// unchangedTOAST reports whether the source can send unchanged TOAST values: Postgres only.
func (e *Encoder) unchangedTOAST() bool {
	return e.cfg.Connector == "postgresql" || e.cfg.Connector == "postgres"
}

// appendSource writes the envelope's source block, in sourceSchema's field order.
func (e *Encoder) appendSource(v []byte, ev *change.Event, sc *scratch) []byte {
	t := ev.Table
	v = appendString(v, e.cfg.Version)
	v = appendString(v, e.cfg.Connector)
	v = appendString(v, e.cfg.Pipeline)
	var ts int64 // unknown commit time is written as 0, not as year 1
	if !ev.CommitTime.IsZero() {
		ts = ev.CommitTime.UnixMilli()
	}
	v = appendLong(v, ts)
	if ev.Op == change.OpRead && ev.SnapshotLast {
		v = appendString(v, "last")
	} else if ev.Op == change.OpRead {
		v = appendString(v, "true")
	} else {
		v = appendString(v, "false")
	}
	v = appendString(v, t.Database)
	v = appendString(v, t.Schema)
	v = appendString(v, t.Name)
	// txId holds a numeric transaction id (Postgres xid); any other id (a MySQL or MariaDB
	// GTID) goes to gtid.
	xid, numeric := parseUint63(ev.TxID)
	if numeric {
		v = append(v, unionValue)
		v = appendLong(v, xid)
	} else {
		v = append(v, unionNull)
	}
	if e.cfg.Connector == "postgresql" || e.cfg.Connector == "postgres" {
		v = append(v, unionValue)
		v = appendLong(v, int64(ev.Pos.Tx))
	} else {
		v = append(v, unionNull)
	}
	if ev.TxID != "" && !numeric {
		v = append(v, unionValue)
		v = appendString(v, ev.TxID)
	} else {
		v = append(v, unionNull)
	}
	// sequence: the event's cdcd position, which totally orders a pipeline's events.
	s := append(sc.text[:0], `{"tx":`...)
	s = strconv.AppendUint(s, ev.Pos.Tx, 10)
	s = append(s, `,"index":`...)
	s = strconv.AppendUint(s, uint64(ev.Pos.Index), 10)
	s = append(s, '}')
	sc.text = s
	v = append(v, unionValue)
	v = appendBytes(v, s)
	if e.typeModes.debezium() {
		v = appendDebeziumSource(v, ev, e.typeModes.mysql)
	}
	return v
}

// registryError marks err, returned by a Registry, as registry trouble (see Retriable),
// unless the Registry already did.
func registryError(op, subject string, err error) error {
	var re *RegistryError
	if errors.As(err, &re) {
		return err
	}
	return &RegistryError{Op: op, Subject: subject, Err: err}
}

// parseUint63 parses a non-empty decimal string that fits an int64.
func parseUint63(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
