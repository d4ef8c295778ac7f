package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Encoder is what replay needs of the encoder.
type Encoder interface {
	Encode(ctx context.Context, ev *change.Event, dst *encode.Record) error
}

// ReplayConfig configures one replay run.
type ReplayConfig struct {
	Pipeline           string
	KafkaOpts          []kgo.Opt
	DLQTopic           string
	OffsetsTopic       string
	From               int64  // first dead-letter offset to consider
	Class              string // only this class; "" for every class
	Tombstones         bool
	TransactionTimeout time.Duration
	BatchSize          int
	Encoder            Encoder
	// PayloadSchemas are the outbox payload schemas configured now, by qualified table: a
	// dead outbox event is replayed with its table's (the fix of a payload that did not fit
	// is a changed schema); a table not listed keeps the schema of its dead letter.
	PayloadSchemas map[string]string
	Log            *slog.Logger
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	Replayed    int // published to their intended topics
	AlreadyDone int // replayed by an earlier run
	Filtered    int // other classes
}

// HeaderReplayedFrom marks a replayed record with the dead letter it came from.
const HeaderReplayedFrom = "cdcd.replayed_from"

// progressKey is where replay progress lives in the offsets topic: for a class (or "all"),
// the next dead-letter offset to look at. A dead letter at offset o of class c is done when
// o < progress[all] or o < progress[c].
func progressKey(pipeline, class string) string {
	if class == "" {
		class = "all"
	}
	return "cdcd-dlq-replay/" + pipeline + "/" + class
}

// Replay re-encodes dead letters with today's schemas and publishes them to their intended
// topics in Kafka transactions that also record the replay's progress, so no dead letter is
// ever published twice, whatever the runs, classes and crashes.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	var st ReplayStats
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	prefix := "cdcd-dlq-replay/" + cfg.Pipeline + "/"
	// The transactional id fences a concurrent replay of the same pipeline before progress is read.
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.KafkaOpts...), kgo.TransactionalID("cdcd-dlq-replay-"+cfg.Pipeline),
		kgo.TransactionTimeout(cfg.TransactionTimeout), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchMaxBytes(64<<20))...)
	if err != nil {
		return st, err
	}
	defer prod.Close()
	if _, _, err := prod.ProducerID(ctx); err != nil {
		return st, fmt.Errorf("initializing the replay producer: %w", err)
	}
	raw, err := offsets.Scan(ctx, cfg.KafkaOpts, cfg.OffsetsTopic, func(k string) bool { return strings.HasPrefix(k, prefix) })
	if err != nil {
		return st, fmt.Errorf("reading replay progress: %w", err)
	}
	progress := map[string]int64{}
	for k, v := range raw {
		var p struct {
			Next int64 `json:"next_offset"`
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return st, fmt.Errorf("replay progress %s: %w", k, err)
		}
		progress[strings.TrimPrefix(k, prefix)] = p.Next
	}
	done := func(off int64, class string) bool { return off < progress["all"] || off < progress[class] }

	adm, err := kgo.NewClient(cfg.KafkaOpts...)
	if err != nil {
		return st, err
	}
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, cfg.DLQTopic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return st, fmt.Errorf("listing end of dead-letter topic %s: %w", cfg.DLQTopic, err)
	}
	end, _ := ends.Lookup(cfg.DLQTopic, 0)
	start := max(cfg.From, 0)
	if end.Offset <= start {
		return st, nil
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.KafkaOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.DLQTopic: {0: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		return st, err
	}
	defer cons.Close()

	tables := map[string]*change.Table{}
	var rec encode.Record
	inTxn, pending := false, 0
	next := int64(-1)
	commit := func() error {
		if !inTxn {
			return nil
		}
		if next >= 0 {
			val, _ := json.Marshal(map[string]any{"next_offset": next, "written_at": time.Now().UTC()})
			prod.Produce(ctx, &kgo.Record{Topic: cfg.OffsetsTopic, Key: []byte(progressKey(cfg.Pipeline, cfg.Class)), Value: val, Partition: 0}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			return err
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("committing replay: %w", err)
		}
		inTxn, pending = false, 0
		return nil
	}
	abort := func() {
		if inTxn {
			_ = prod.AbortBufferedRecords(ctx)
			_ = prod.EndTransaction(ctx, kgo.TryAbort)
		}
	}
	var produceErr errBox
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			abort()
			return st, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			abort()
			return st, ferr
		}
		finished := false
		var herr error
		fs.EachRecord(func(r *kgo.Record) {
			if herr != nil || finished {
				return
			}
			if r.Offset+1 >= end.Offset {
				finished = true
			}
			if r.Attrs.IsControl() {
				return
			}
			class := header(r, "cdcd.error.class")
			if cfg.Class != "" && class != cfg.Class {
				st.Filtered++
				next = r.Offset + 1
				return
			}
			if done(r.Offset, class) {
				st.AlreadyDone++
				return
			}
			if !inTxn {
				if herr = prod.BeginTransaction(); herr != nil {
					return
				}
				inTxn = true
			}
			if herr = replayOne(ctx, cfg, r, tables, &rec, prod, &produceErr); herr != nil {
				return
			}
			st.Replayed++
			pending++
			next = r.Offset + 1
			if pending >= cfg.BatchSize {
				herr = commit()
			}
		})
		if herr == nil {
			herr = produceErr.get()
		}
		if herr != nil {
			abort()
			return st, herr
		}
		if finished {
			if !inTxn && next >= 0 && cfg.Class != "" {
				// only filtered records since the last commit: record how far this class looked
				if err := prod.BeginTransaction(); err != nil {
					return st, err
				}
				inTxn = true
			}
			if err := commit(); err != nil {
				abort()
				return st, err
			}
			return st, nil
		}
	}
}

// errBox holds the first error of produce callbacks, which run on the client's goroutines.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) set(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

func (b *errBox) get() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func replayOne(ctx context.Context, cfg ReplayConfig, r *kgo.Record, tables map[string]*change.Table, rec *encode.Record, prod *kgo.Client, perr *errBox) error {
	var l Letter
	d := json.NewDecoder(bytes.NewReader(r.Value))
	d.UseNumber()
	if err := d.Decode(&l); err != nil {
		return fmt.Errorf("dead letter at offset %d does not parse: %w", r.Offset, err)
	}
	ev, err := l.Event()
	if err != nil {
		return fmt.Errorf("dead letter at offset %d: %w", r.Offset, err)
	}
	// One *Table per distinct table shape, so the encoder registers each schema once.
	cols, _ := json.Marshal(l.Columns)
	tk := l.Schema + "." + l.Table + "\x00" + strconv.FormatBool(l.FullIdentity) + "\x00" + string(cols)
	if t, ok := tables[tk]; ok {
		ev.Table = t
	} else {
		tables[tk] = ev.Table
	}
	if ps, ok := cfg.PayloadSchemas[ev.Table.QualifiedName()]; ok && ev.Outbox != nil {
		ev.Outbox.PayloadSchema = ps
	}
	if err := cfg.Encoder.Encode(ctx, ev, rec); err != nil {
		return fmt.Errorf("dead letter at offset %d (%s, position %s) still cannot be published: %w", r.Offset, ev.Table.QualifiedName(), ev.Pos, err)
	}
	from := []kgo.RecordHeader{{Key: HeaderReplayedFrom, Value: []byte(fmt.Sprintf("%s/0/%d", cfg.DLQTopic, r.Offset))}}
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			perr.set(fmt.Errorf("publishing dead letter at offset %d: %w", r.Offset, err))
		}
	}
	hdrs := make([]kgo.RecordHeader, 0, len(rec.Headers)+1)
	for _, h := range rec.Headers { // an outbox event's
		hdrs = append(hdrs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	prod.Produce(ctx, &kgo.Record{Topic: rec.Topic, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Headers: append(hdrs, from...)}, cb)
	if cfg.Tombstones {
		if t, ok := rec.Tombstone(); ok {
			prod.Produce(ctx, &kgo.Record{Topic: t.Topic, Key: t.Key, Headers: from}, cb)
		}
	}
	return nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
