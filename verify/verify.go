// Package verify compares captured tables with their topics: for each table, every row with
// the latest record of its key in the topic (read_committed), and reports the keys the topic
// misses, the keys it has that the table does not (extra) and the keys whose values differ.
//
// Rows are encoded by cdcd's own encoder from the rows a snapshot reader returns (the same
// path a snapshot takes, so a row gives the same `after` a snapshot of it would), and both
// sides are decoded with their writer schemas from the registry before values are compared,
// column by column. A record's unchanged-TOAST columns keep the key's previous value; deletes
// and tombstones remove the key.
//
// It runs against a live database without locks: the table is read in key-ordered chunks,
// each its own short read-only transaction. After the table read it writes a mark into the
// source's log and waits until the pipeline made everything before the mark durable in Kafka,
// then reads the topic to its end. A key that still differs may have changed after its chunk
// was read: it is read again, the pipeline is waited for again, the topic's new records are
// applied, and only a key that differs in every round is reported.
//
// Memory is bounded by the chunk size: both sides are spilled to bucket files by key hash and
// compared one bucket at a time (see spill.go).
package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// Source reads one table and knows how far the pipeline is.
type Source interface {
	// Table is the table as a snapshot's rows carry it.
	Table() *change.Table
	// Estimate is the database's estimate of the table's rows (0: unknown).
	Estimate() int64
	// Chunk reads up to limit rows after the key after (nil: from the start) that match
	// where, in key order; last is the text key of the last row. pos is the source position
	// of the read: the rows are the table as every change committed before pos left it
	// (compared with records' source positions).
	Chunk(ctx context.Context, after []string, where string, limit int) (rows [][]change.Value, last []string, pos uint64, err error)
	// Rows reads the rows with these keys (text of the key columns), and the read's position.
	Rows(ctx context.Context, keys [][]string) ([][]change.Value, uint64, error)
	// Mark writes a mark into the source's log and returns its position.
	Mark(ctx context.Context) (uint64, error)
	// Caught reports whether the pipeline has made every change before mark durable in Kafka.
	Caught(ctx context.Context, mark uint64) (bool, error)
	Close()
}

// Config configures a run.
type Config struct {
	Pipeline string
	Tables   []string
	// Where limits the comparison to the rows matching this SQL condition; extra keys are
	// then not reported (the topic's records of rows outside the condition look extra).
	Where string
	// Open opens the reader of one table.
	Open      func(ctx context.Context, table string) (Source, error)
	Encoder   *encode.Encoder
	Schemas   Schemas
	KafkaOpts []kgo.Opt
	// ChunkRows is the rows per table read and about the keys per bucket. Default 10000.
	ChunkRows int
	SpillDir  string
	// CatchUp is how long to wait for the pipeline to pass a table read. Default 1 minute.
	CatchUp time.Duration
	// Rounds is how many times a differing key is read again before it is reported.
	// Default 3.
	Rounds int
	// Examples is how many keys of each kind the report names per table. Default 10.
	Examples int
	// Recheck is the most differing keys of a table read again. Default 10000.
	Recheck  int
	Progress func(Progress)
	Log      *slog.Logger
	Metrics  *Metrics
}

// Progress is reported while a table is verified.
type Progress struct {
	Table     string
	Phase     string // "table", "topic", "compare", "recheck", "done"
	Rows      int64
	Estimated int64
	Records   int64
	Elapsed   time.Duration
}

// Kinds of difference.
const (
	Missing   = "missing"   // the table has the key, the topic does not (or deleted it)
	Extra     = "extra"     // the topic has the key, the table does not
	Different = "different" // both have it with different values
)

// Example names one differing key.
type Example struct {
	Kind string         `json:"kind"`
	Key  map[string]any `json:"key"`
	// Columns are the columns whose values differ (different only).
	Columns []string `json:"columns,omitempty"`
	// Partition and Offset locate the key's latest record in the topic (different, extra).
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
}

// TableReport is the outcome for one table.
type TableReport struct {
	Table     string    `json:"table"`
	Topic     string    `json:"topic"`
	Rows      int64     `json:"rows"`
	Records   int64     `json:"records"`
	Keys      int64     `json:"topic_keys"`
	Missing   int64     `json:"missing"`
	Extra     int64     `json:"extra"`
	Different int64     `json:"different"`
	Examples  []Example `json:"examples,omitempty"`
	// CaughtUp is false when the pipeline did not pass the table read within the catch-up
	// time: differences may then be changes it has not published yet.
	CaughtUp  bool    `json:"caught_up"`
	Rechecked int64   `json:"rechecked"`
	Seconds   float64 `json:"seconds"`
	// Phases are the seconds spent reading the table, waiting for the pipeline, reading the
	// topic, comparing, and reading differing keys again.
	Phases map[string]float64 `json:"phases,omitempty"`
	Error  string             `json:"error,omitempty"`
	// KeyColumns and RepairKeys are the table's key columns and the SQL text of the keys a
	// snapshot can repair (missing and different), for --repair.
	KeyColumns []string   `json:"-"`
	RepairKeys [][]string `json:"-"`
	// Unrepairable counts the missing and different keys that cannot be written as a snapshot
	// condition (UnrepairableReason says why, for the first): --repair cannot name them, a
	// whole-table snapshot repairs them.
	Unrepairable       int64  `json:"unrepairable,omitempty"`
	UnrepairableReason string `json:"unrepairable_reason,omitempty"`
}

// Equal reports whether the table and its topic hold the same keys and values.
func (t *TableReport) Equal() bool {
	return t.Error == "" && t.Missing == 0 && t.Extra == 0 && t.Different == 0
}

// Report is the outcome of a run.
type Report struct {
	Pipeline string        `json:"pipeline"`
	Equal    bool          `json:"equal"`
	Tables   []TableReport `json:"tables"`
}

// Run verifies every table of cfg. An error is returned only when nothing could be compared
// (a table that fails is reported with its Error).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 10000
	}
	if cfg.CatchUp <= 0 {
		cfg.CatchUp = time.Minute
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Examples <= 0 {
		cfg.Examples = 10
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 10000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{Pipeline: cfg.Pipeline, Equal: true}
	for _, table := range cfg.Tables {
		start := time.Now()
		tr, err := verifyTable(ctx, &cfg, table)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if err != nil {
			tr.Error = err.Error()
		}
		tr.Seconds = time.Since(start).Seconds()
		rep.Tables = append(rep.Tables, *tr)
		rep.Equal = rep.Equal && tr.Equal()
		cfg.Metrics.observe(cfg.Pipeline, tr)
		attrs := []any{"pipeline", cfg.Pipeline, "table", tr.Table, "topic", tr.Topic, "rows", tr.Rows, "records", tr.Records,
			"missing", tr.Missing, "extra", tr.Extra, "different", tr.Different, "caught_up", tr.CaughtUp, "seconds", round(tr.Seconds)}
		switch {
		case tr.Error != "":
			cfg.Log.Error("verify: table not compared", append(attrs, "err", tr.Error)...)
		case tr.Equal():
			cfg.Log.Info("verify: table equals its topic", attrs...)
		default:
			cfg.Log.Warn("verify: table differs from its topic", attrs...)
		}
	}
	cfg.Metrics.finish(cfg.Pipeline, rep.Equal)
	return rep, nil
}

func round(f float64) float64 { return float64(int64(f*1000)) / 1000 }

// run is one table's verification.
type run struct {
	cfg     *Config
	src     Source
	table   *change.Table
	topic   string
	tr      *TableReport
	schemas *schemaCache
	plans   planCache
	h       *hasher
	names   map[string]uint16 // column (Avro field) name -> index
	list    []string
	// keySchema is the table's current key schema; keyID its registry id once known.
	keySchema avro.Schema
	keyID     int
	mu        sync.Mutex       // guards names, list and sameKey: both sides are read at once
	sameKey   map[int]bool     // writer key schema id -> same schema as keySchema
	rows      atomic.Int64     // rows read (progress)
	records   atomic.Int64     // records read (progress)
	lastPos   map[int32]uint64 // per partition, the source position of the last record read
	rec       encode.Record
	n         int // buckets
	started   time.Time
}

func verifyTable(ctx context.Context, cfg *Config, table string) (*TableReport, error) {
	tr := &TableReport{Table: table}
	src, err := cfg.Open(ctx, table)
	if err != nil {
		return tr, err
	}
	defer src.Close()
	t := src.Table()
	tr.Table = t.QualifiedName()
	r := &run{cfg: cfg, src: src, table: t, tr: tr, topic: cfg.Encoder.Topic(t), schemas: newSchemaCache(cfg.Schemas),
		h: newHasher(), names: map[string]uint16{}, keyID: -1, sameKey: map[int]bool{}, lastPos: map[int32]uint64{}, started: time.Now()}
	tr.Topic = r.topic
	for _, i := range t.KeyColumns {
		tr.KeyColumns = append(tr.KeyColumns, t.Columns[i].Name)
	}
	if len(t.KeyColumns) == 0 {
		return tr, fmt.Errorf("table %s has no key (primary key or replica identity index): its records cannot be matched to rows", tr.Table)
	}
	keyText, _, err := cfg.Encoder.Schemas(t)
	if err != nil {
		return tr, err
	}
	if r.keySchema, err = avro.Parse(keyText); err != nil {
		return tr, fmt.Errorf("parsing the key schema of %s: %w", tr.Table, err)
	}

	adm, err := kgo.NewClient(cfg.KafkaOpts...)
	if err != nil {
		return tr, err
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	// A topic that does not exist is empty: every row is missing.
	starts, err := ka.ListStartOffsets(ctx, r.topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		starts, err = kadm.ListedOffsets{}, nil
	}
	if err != nil {
		return tr, fmt.Errorf("listing the partitions of topic %s: %w", r.topic, err)
	}
	ends, err := ka.ListCommittedOffsets(ctx, r.topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		ends, err = kadm.ListedOffsets{}, nil
	}
	if err != nil {
		return tr, fmt.Errorf("listing the end of topic %s: %w", r.topic, err)
	}
	var records int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			records += o.Offset - s.Offset
		}
	})
	size := max(records, src.Estimate())
	r.n = int(min(max((size+int64(cfg.ChunkRows)-1)/int64(cfg.ChunkRows), 1), 512))

	dir := spillDir(cfg.SpillDir)
	rows, err := newBuckets(dir, "table", r.n)
	if err != nil {
		return tr, err
	}
	defer rows.close()
	recs, err := newBuckets(dir, "topic", r.n)
	if err != nil {
		return tr, err
	}
	defer recs.close()

	tr.Phases = map[string]float64{}
	phase := time.Now()
	lap := func(name string) {
		tr.Phases[name] = round(time.Since(phase).Seconds())
		phase = time.Now()
	}
	// 1. The table, in key-ordered chunks, and at the same time the topic to its end. A
	// record committed after a row's read is not held against the row (records carry their
	// source position), so the order of the two reads does not matter.
	var end map[int32]int64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.readTable(gctx, rows) })
	g.Go(func() error {
		var err error
		end, err = r.readTopic(gctx, starts, recs)
		return err
	})
	err = g.Wait()
	tr.Rows, tr.Records = r.rows.Load(), r.records.Load()
	if err != nil {
		return tr, err
	}
	lap("read")
	// 2. Wait for the pipeline to pass the table read, then read what the topic gained.
	caught, err := r.waitCaught(ctx)
	if err != nil {
		return tr, err
	}
	tr.CaughtUp = caught
	lap("wait")
	if end, err = r.consume(ctx, end, func(e *entry) error { return recs.add(r.bucket(e.key), e) }); err != nil {
		return tr, err
	}
	tr.Records = r.records.Load()
	lap("topic")
	// 3. Compare bucket by bucket.
	r.progress("compare")
	diffs, err := r.compare(rows, recs)
	if err != nil {
		return tr, err
	}
	lap("compare")
	// 4. Read the differing keys again while the pipeline keeps up.
	if caught && len(diffs) > 0 {
		if diffs, err = r.recheck(ctx, diffs, end); err != nil {
			return tr, err
		}
		lap("recheck")
	}
	r.report(diffs)
	r.progress("done")
	return tr, nil
}

func (r *run) progress(phase string) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{Table: r.tr.Table, Phase: phase, Rows: r.rows.Load(), Estimated: r.src.Estimate(),
			Records: r.records.Load(), Elapsed: time.Since(r.started)})
	}
}

func (r *run) nameIdx(name string) uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.names[name]; ok {
		return i
	}
	i := uint16(len(r.list))
	r.names[name] = i
	r.list = append(r.list, name)
	return i
}

func (r *run) bucket(key []byte) int { return int(r.h.bytes(key) % uint64(r.n)) }

// rowEntry encodes a row as a snapshot would and decodes its after image back, so both sides
// are compared as decoded values.
func (r *run) rowEntry(ctx context.Context, row []change.Value, pos uint64, e *entry) error {
	ev := change.Event{Op: change.OpRead, Table: r.table, After: row}
	if err := r.cfg.Encoder.Encode(ctx, &ev, &r.rec); err != nil {
		return fmt.Errorf("encoding a row of %s: %w", r.tr.Table, err)
	}
	kid, kb, err := framed(r.rec.Key)
	if err != nil {
		return fmt.Errorf("the encoded key of %s: %w", r.tr.Table, err)
	}
	if r.keyID < 0 {
		r.mu.Lock()
		r.keyID = kid
		r.sameKey[kid] = true
		r.mu.Unlock()
	}
	vid, vb, err := framed(r.rec.Value)
	if err != nil {
		return fmt.Errorf("the encoded value of %s: %w", r.tr.Table, err)
	}
	e.key = append(e.key[:0], kb...)
	e.partition, e.offset, e.deleted, e.pos = -1, 0, false, pos
	if _, e.cols, err = r.walk(ctx, vid, vb, e.cols[:0]); err != nil {
		return fmt.Errorf("reading an encoded row of %s: %w", r.tr.Table, err)
	}
	return nil
}

// walk reads an envelope written with schema id: its columns (sorted, unchanged-TOAST ones
// marked) and what else verify needs.
func (r *run) walk(ctx context.Context, id int, body []byte, cols []col) (walked, []col, error) {
	s, err := r.schemas.get(ctx, id)
	if err != nil {
		return walked{}, cols, err
	}
	p, err := r.plans.plan(s, r.nameIdx)
	if err != nil {
		return walked{}, cols, err
	}
	w, cols, err := r.h.walkEnvelope(p, body, cols)
	if err != nil {
		return w, cols, err
	}
	if len(w.unchanged) > 0 {
		withUnchanged(cols, w.unchanged, p.byName)
	}
	if !slices.IsSortedFunc(cols, byIdx) {
		slices.SortFunc(cols, byIdx)
	}
	return w, cols, nil
}

func byIdx(a, b col) int { return int(a.idx) - int(b.idx) }

func (r *run) readTable(ctx context.Context, rows *buckets) error {
	var after []string
	var e entry
	last := time.Now()
	for {
		chunk, lastKey, pos, err := r.src.Chunk(ctx, after, r.cfg.Where, r.cfg.ChunkRows)
		if err != nil {
			return err
		}
		for _, row := range chunk {
			if err := r.rowEntry(ctx, row, pos, &e); err != nil {
				return err
			}
			if err := rows.add(r.bucket(e.key), &e); err != nil {
				return fmt.Errorf("writing a spill file: %w", err)
			}
		}
		r.rows.Add(int64(len(chunk)))
		if time.Since(last) > time.Second {
			r.progress("table")
			last = time.Now()
		}
		if len(chunk) < r.cfg.ChunkRows {
			return nil
		}
		after = slices.Clone(lastKey)
	}
}

// waitCaught writes a mark and waits until the pipeline passed it (false after CatchUp).
func (r *run) waitCaught(ctx context.Context) (bool, error) {
	mark, err := r.src.Mark(ctx)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(r.cfg.CatchUp)
	for {
		ok, err := r.src.Caught(ctx, mark)
		if err != nil || ok {
			return ok, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// topicKey is the record key in the form the table's rows are keyed by: the Avro body under
// the current key schema (a record written with another key schema is re-encoded).
func (r *run) topicKey(ctx context.Context, k []byte) ([]byte, error) {
	id, body, err := framed(k)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	same, ok := r.sameKey[id]
	r.mu.Unlock()
	if !ok {
		s, err := r.schemas.get(ctx, id)
		if err != nil {
			return nil, err
		}
		same = s.Fingerprint() == r.keySchema.Fingerprint()
		r.mu.Lock()
		r.sameKey[id] = same
		r.mu.Unlock()
	}
	if same {
		return body, nil
	}
	s, err := r.schemas.get(ctx, id)
	if err != nil {
		return nil, err
	}
	var v any
	if err := decodeConfig.Unmarshal(s, body, &v); err != nil {
		return nil, err
	}
	return avro.Marshal(r.keySchema, v)
}

// readTopic reads the topic from its start to its committed end (read_committed) into recs,
// and returns the end it read to.
func (r *run) readTopic(ctx context.Context, starts kadm.ListedOffsets, recs *buckets) (map[int32]int64, error) {
	from := map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) { from[o.Partition] = o.Offset })
	return r.consume(ctx, from, func(e *entry) error { return recs.add(r.bucket(e.key), e) })
}

// consume reads the topic's committed records from the offsets from to the current committed
// end, handing each keyed record to fn, and returns the end.
func (r *run) consume(ctx context.Context, from map[int32]int64, fn func(*entry) error) (map[int32]int64, error) {
	adm, err := kgo.NewClient(r.cfg.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, r.topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		ends, err = kadm.ListedOffsets{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end of topic %s: %w", r.topic, err)
	}
	end := map[int32]int64{}
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		if f := from[o.Partition]; f < o.Offset {
			assign[o.Partition] = kgo.NewOffset().At(f)
		}
	})
	if len(assign) == 0 {
		return end, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.cfg.KafkaOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: assign}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxBytes(32<<20))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	left := len(assign)
	var e entry
	last := time.Now()
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = fmt.Errorf("reading topic %s partition %d: %w", r.topic, p, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		var herr error
		fs.EachRecord(func(rec *kgo.Record) {
			stop, ok := end[rec.Partition]
			if herr != nil || !ok || rec.Offset >= stop {
				return
			}
			if rec.Offset+1 >= stop {
				left--
			}
			if rec.Attrs.IsControl() {
				return
			}
			r.records.Add(1)
			if rec.Key == nil {
				return // a truncate
			}
			if herr = r.recordEntry(ctx, rec, &e); herr != nil {
				return
			}
			herr = fn(&e)
		})
		if herr != nil {
			return nil, herr
		}
		if time.Since(last) > time.Second {
			r.progress("topic")
			last = time.Now()
		}
	}
	return end, nil
}

func (r *run) recordEntry(ctx context.Context, rec *kgo.Record, e *entry) error {
	key, err := r.topicKey(ctx, rec.Key)
	if err != nil {
		return fmt.Errorf("the key of the record at %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	e.key, e.partition, e.offset, e.deleted, e.pos, e.cols = key, rec.Partition, rec.Offset, false, 0, e.cols[:0]
	if rec.Value == nil {
		// A tombstone follows its delete at once: the delete's position.
		e.deleted, e.pos = true, r.lastPos[rec.Partition]
		return nil
	}
	id, body, err := framed(rec.Value)
	if err != nil {
		return fmt.Errorf("the record at %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	w, cols, err := r.walk(ctx, id, body, e.cols)
	if err != nil {
		return fmt.Errorf("reading the record at %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	e.cols = cols
	e.pos = w.lsn
	r.lastPos[rec.Partition] = w.lsn
	if !w.hasAfter || w.op == "d" {
		e.deleted, e.cols = true, e.cols[:0]
	}
	return nil
}

// diff is one key found differing, with what is needed to check it again.
type diff struct {
	kind   string
	key    []byte
	latest *state // the key's state after every record read (nil: no record)
	// columns differing (different only)
	columns []uint16
}

// side is a key's state in the topic: as of the row's read (records whose position is not
// after the read's), and after every record read.
type side struct {
	asOf, latest state
}

func (s *state) present() bool { return s.seen && !s.deleted }

// compare joins the two sides bucket by bucket, on up to four cores. It counts every
// difference and returns the first Recheck of them (the rest are counted as found).
func (r *run) compare(rows, recs *buckets) ([]diff, error) {
	// Flush every bucket before the workers read them (the writers are not shared).
	for b := 0; b < r.n; b++ {
		if err := rows.w[b].Flush(); err != nil {
			return nil, err
		}
		if err := recs.w[b].Flush(); err != nil {
			return nil, err
		}
	}
	var (
		mu   sync.Mutex
		out  []diff
		next atomic.Int64
	)
	g := new(errgroup.Group)
	for w := 0; w < min(runtime.GOMAXPROCS(0), 4, r.n); w++ {
		g.Go(func() error {
			for {
				b := int(next.Add(1) - 1)
				if b >= r.n {
					return nil
				}
				diffs, keys, err := r.compareBucket(rows.files[b], recs.files[b])
				if err != nil {
					return err
				}
				mu.Lock()
				r.tr.Keys += keys
				for _, d := range diffs {
					if len(out) < r.cfg.Recheck {
						out = append(out, d)
					} else {
						r.count(d.kind, 1)
					}
				}
				mu.Unlock()
			}
		})
	}
	return out, g.Wait()
}

// tableRow is a row of one bucket: its read position and its columns in the bucket's arena.
type tableRow struct {
	pos        uint64
	start, end int
}

// compareBucket compares one bucket's rows with its records, returning the differences and
// the number of keys the topic holds.
func (r *run) compareBucket(rowsFile, recsFile *os.File) ([]diff, int64, error) {
	rd := bufio.NewReaderSize(io.NewSectionReader(rowsFile, 0, 1<<62), 64<<10)
	table := map[string]tableRow{}
	var arena []col
	var e entry
	for {
		if err := readEntry(rd, &e); err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("reading a spill file: %w", err)
		}
		start := len(arena)
		arena = append(arena, e.cols...)
		table[string(e.key)] = tableRow{pos: e.pos, start: start, end: len(arena)}
	}
	rd = bufio.NewReaderSize(io.NewSectionReader(recsFile, 0, 1<<62), 64<<10)
	topic := map[string]*side{}
	for {
		if err := readEntry(rd, &e); err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("reading a spill file: %w", err)
		}
		s := topic[string(e.key)]
		if s == nil {
			s = &side{}
			topic[string(e.key)] = s
		}
		s.latest.apply(&e)
		if row, ok := table[string(e.key)]; ok && (e.pos == 0 || e.pos < row.pos) {
			s.asOf.apply(&e)
		}
	}
	var out []diff
	var keys int64
	for k, row := range table {
		s := topic[k]
		delete(topic, k)
		var latest *state
		if s != nil {
			latest = &s.latest
			if s.latest.present() {
				keys++
			}
		}
		if s == nil || !s.asOf.present() {
			out = append(out, diff{kind: Missing, key: []byte(k), latest: latest})
			continue
		}
		if cols := differing(arena[row.start:row.end], s.asOf.cols); len(cols) > 0 {
			out = append(out, diff{kind: Different, key: []byte(k), latest: latest, columns: cols})
		}
	}
	for k, s := range topic {
		if !s.latest.present() {
			continue
		}
		keys++
		if r.cfg.Where == "" {
			out = append(out, diff{kind: Extra, key: []byte(k), latest: &s.latest})
		}
	}
	return out, keys, nil
}

func (r *run) count(kind string, n int64) {
	switch kind {
	case Missing:
		r.tr.Missing += n
	case Extra:
		r.tr.Extra += n
	case Different:
		r.tr.Different += n
	}
}

// recheck reads the differing keys again, waits for the pipeline to pass that read, applies
// the topic's records since end, and keeps the keys that still differ from the topic as of
// the new read; a key that received records meanwhile is read again, up to Rounds times. Every record read before a round began committed before
// the round's read, so the key's latest state is where its state as of the read starts.
func (r *run) recheck(ctx context.Context, diffs []diff, end map[int32]int64) ([]diff, error) {
	// final holds the keys whose difference is settled: the pipeline passed the read and no
	// record of the key arrived meanwhile, so the topic's state as of the read is complete
	// and the row is the table's at that read.
	var final []diff
	for round := 0; round < r.cfg.Rounds && len(diffs) > 0; round++ {
		r.progress("recheck")
		r.tr.Rechecked += int64(len(diffs))
		byKey := make(map[string]int, len(diffs))
		asked := make(map[string]bool, len(diffs))
		var keys [][]string
		var which []int // diffs index of each of keys
		for i := range diffs {
			d := &diffs[i]
			byKey[string(d.key)] = i
			kt, err := r.keyText(d.key)
			if err != nil {
				// A key verify cannot spell as SQL: reported as found.
				r.cfg.Log.Debug("verify: a key cannot be read again", "table", r.tr.Table, "err", err)
				continue
			}
			asked[string(d.key)] = true
			keys = append(keys, kt)
			which = append(which, i)
		}
		// Read the rows again, in batches; readPos is each diff's read position.
		now := map[string]*entry{}
		readPos := make([]uint64, len(diffs))
		for len(keys) > 0 {
			n := min(len(keys), 500)
			rows, p, err := r.src.Rows(ctx, keys[:n])
			if err != nil {
				return nil, err
			}
			for _, i := range which[:n] {
				readPos[i] = p
			}
			keys, which = keys[n:], which[n:]
			for _, row := range rows {
				e := &entry{}
				if err := r.rowEntry(ctx, row, p, e); err != nil {
					return nil, err
				}
				now[string(e.key)] = e
			}
		}
		caught, err := r.waitCaught(ctx)
		if err != nil {
			return nil, err
		}
		if !caught {
			r.tr.CaughtUp = false
		}
		asOf := make([]*state, len(diffs))
		for i := range diffs {
			if diffs[i].latest == nil {
				diffs[i].latest = &state{}
			}
			asOf[i] = diffs[i].latest.clone()
		}
		touched := make([]bool, len(diffs))
		end, err = r.consume(ctx, end, func(e *entry) error {
			i, ok := byKey[string(e.key)]
			if !ok {
				return nil
			}
			touched[i] = true
			diffs[i].latest.apply(e)
			if e.pos == 0 || e.pos < readPos[i] {
				asOf[i].apply(e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		next := diffs[:0]
		for i, d := range diffs {
			row, topic := now[string(d.key)], asOf[i]
			switch {
			case !asked[string(d.key)]:
				final = append(final, d)
				continue
			case row == nil && !topic.present():
				continue // gone from both
			case row == nil:
				if r.cfg.Where != "" {
					continue // the row left the condition
				}
				d.kind, d.columns = Extra, nil
			case !topic.present():
				d.kind, d.columns = Missing, nil
			default:
				cols := differing(row.cols, topic.cols)
				if len(cols) == 0 {
					continue
				}
				d.kind, d.columns = Different, cols
			}
			if caught && !touched[i] {
				final = append(final, d)
				continue
			}
			next = append(next, d)
		}
		diffs = next
		if !caught {
			break
		}
	}
	return append(final, diffs...), nil
}

// report counts the differences found and names the first Examples of each kind.
func (r *run) report(diffs []diff) {
	shown := map[string]int{}
	for _, d := range diffs {
		r.count(d.kind, 1)
		if d.kind != Extra {
			if kt, err := r.keyText(d.key); err == nil {
				r.tr.RepairKeys = append(r.tr.RepairKeys, kt)
			} else {
				if r.tr.Unrepairable == 0 {
					r.tr.UnrepairableReason = err.Error()
				}
				r.tr.Unrepairable++
			}
		}
		if shown[d.kind] >= r.cfg.Examples {
			continue
		}
		shown[d.kind]++
		ex := Example{Kind: d.kind, Key: r.keyMap(d.key)}
		for _, c := range d.columns {
			ex.Columns = append(ex.Columns, r.list[c])
		}
		if d.latest != nil && d.latest.present() {
			p, o := d.latest.partition, d.latest.offset
			ex.Partition, ex.Offset = &p, &o
		}
		r.tr.Examples = append(r.tr.Examples, ex)
	}
}

// keyMap decodes a key for display: column name -> value (JSON-friendly).
func (r *run) keyMap(key []byte) map[string]any {
	var m map[string]any
	if err := decodeConfig.Unmarshal(r.keySchema, key, &m); err != nil {
		return map[string]any{"undecodable": fmt.Sprintf("%x", key)}
	}
	for k, v := range m {
		m[k] = jsonValue(v)
	}
	return m
}

func jsonValue(v any) any {
	v = unwrapUnion(v)
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	case []byte:
		return fmt.Sprintf("\\x%x", x)
	}
	if _, err := json.Marshal(v); err != nil {
		return fmt.Sprint(v)
	}
	return v
}

// keyText spells a key as the text of its key columns, for reading the row again.
func (r *run) keyText(key []byte) ([]string, error) {
	var m map[string]any
	if err := decodeConfig.Unmarshal(r.keySchema, key, &m); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(r.table.KeyColumns))
	for _, i := range r.table.KeyColumns {
		c := r.table.Columns[i]
		v, ok := m[encode.AvroName(c.Name)]
		if !ok {
			return nil, fmt.Errorf("key column %s is not in the key record", c.Name)
		}
		s, err := sqlText(c, unwrapUnion(v))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
