package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	DefaultParallelism = 2
	DefaultChunkRows   = 8192
	DefaultChunkBytes  = 32 << 20
	// DefaultTableGoneGrace: a table renamed away and back, or dropped and recreated, is
	// missing for a moment; its snapshot is abandoned only when it stays missing this long.
	DefaultTableGoneGrace = 30 * time.Second
)

// Config of a pipeline's snapshot engine.
type Config struct {
	Pipeline string
	Mode     Mode
	// Tables are the captured tables (qualified names, as the source names them).
	Tables []string
	// Parallelism is how many chunks are read at once (over tables and within one table).
	Parallelism int
	// ChunkRows is how many rows a chunk plans to hold; ChunkBytes bounds a chunk's row data
	// (a read that reaches it stops, and the rest of the range becomes a new chunk).
	ChunkRows  int
	ChunkBytes int64
	// KeylessAccepted are the tables without a usable key whose snapshot the user accepts
	// although it is not exact under writes (KeylessError says how); others are refused.
	KeylessAccepted []string
	// Precedes orders the source's transaction ids (Postgres: xids, modulo 2^32).
	Precedes func(a, b uint64) bool
	Log      *slog.Logger
	Metrics  Metrics
	// Progress, if set, is called with every table's progress whenever it changes.
	Progress func([]Progress)
	// SignalKey authenticates on-demand snapshot requests (signal.go); nil refuses them all.
	SignalKey []byte
	// TableGoneGrace is how long a table the database says does not exist is looked for again
	// before its snapshot is abandoned (DefaultTableGoneGrace).
	TableGoneGrace time.Duration
}

// Metrics receives the engine's counts (metrics.Snapshot implements it); may be nil.
type Metrics interface {
	Chunk(pipeline, table string, rows int)
	Table(pipeline, table string, estimated int64, elapsed time.Duration)
	SetRunning(pipeline string, running bool)
}

// Progress of one table's snapshot, for /readyz.
type Progress struct {
	Table     string    `json:"table"`
	Reason    string    `json:"reason"`
	Where     string    `json:"where,omitempty"`
	Rows      uint64    `json:"rows"`
	Estimated int64     `json:"rows_estimated"`
	Chunks    uint64    `json:"chunks"`
	Pending   int       `json:"chunks_pending"`
	Started   time.Time `json:"started"`
}

// Worker reads chunks for the engine, over one database connection of its own. A session
// opens Config.Parallelism workers.
type Worker interface {
	// Describe tells whether the table must be read by page ranges (it has no usable key)
	// and estimates its rows.
	Describe(ctx context.Context, t *Task) (byPage bool, estimated int64, err error)
	// Prepare runs once per table and session, after the stream began tracking the table and
	// before the table's first snapshot: it waits until no transaction the stream already
	// passed can be invisible to a later snapshot (fact 3 of the package comment).
	Prepare(ctx context.Context, t *Task) error
	// Plan returns the upper bound of the chunk that starts after t.Next and holds about rows
	// rows; end is true when that chunk reaches the end of the table (hi is then nil).
	Plan(ctx context.Context, t *Task, rows int) (hi []string, end bool, err error)
	// Read reads the chunk's rows as of one consistent snapshot, stopping early once the
	// rows hold maxBytes (Read.Rest then says where).
	Read(ctx context.Context, t *Task, c Chunk, maxBytes int64) (*Read, error)
	// Watermark writes the chunk's high watermark into the source's log, after Read's
	// snapshot was taken; the stream hands token to Engine.Take when it reaches it.
	Watermark(ctx context.Context, token string) error
	Close()
}

// ErrTableGone is returned by a Worker when the table no longer exists: its snapshot ends.
var ErrTableGone = errors.New("table no longer exists")

// ErrInvalidCondition is returned by a Worker when the database refuses a requested
// snapshot's condition (--where): that request ends, the pipeline goes on.
var ErrInvalidCondition = errors.New("the database refused the snapshot's condition")

// KeylessError refuses the snapshot of a table without a usable key (no primary key;
// PostgreSQL: no replica identity key) that the configuration does not accept by name: its
// chunks cannot be reconciled with the stream's changes, since nothing identifies a row.
type KeylessError struct{ Table string }

func (e *KeylessError) Error() string {
	return fmt.Sprintf("table %s has no key (no primary key or replica identity index), so its snapshot is not exact while the table is written to: "+
		"a row updated or deleted between a chunk's read and the chunk's watermark is published by the stream first and the chunk's older copy after it "+
		"(an updated row's old version, or a deleted row, appears again as a snapshot read), "+
		"a row inserted or updated just before a chunk's read is published twice (by the stream and by the chunk), "+
		"and on MySQL/MariaDB, which reads such a table by row offsets, a row deleted or inserted during the snapshot can shift the offsets so that another row is skipped or read twice; "+
		"its records have no key, so consumers cannot tell; "+
		"fix: give the table a primary key (PostgreSQL: or REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns), "+
		"or accept this by listing the table in the pipeline's snapshot.accept_inexact_keyless (exact when nothing writes to it during its snapshot)", e.Table)
}

// Fatal marks the error as permanent for the pipeline (an on-demand request is dropped instead).
func (e *KeylessError) Fatal() bool { return true }

// NoProgressError is a chunk that did not move past its lower bound: the key's values do not
// round-trip as bounds. Planning or reading it again would give the same chunk forever, so the
// snapshot stops (the error is fatal).
type NoProgressError struct {
	Table string
	Bound []string
	What  string
}

func (e *NoProgressError) Error() string {
	return fmt.Sprintf("snapshot of %s made no progress at key bound %q: %s; the key's values do not compare as they were read back; "+
		"fix: report the key's column types to the cdcd maintainers, and meanwhile snapshot the table without chunks (chunk_size larger than the table) or exclude it", e.Table, e.Bound, e.What)
}

// Fatal marks the error as permanent for the pipeline.
func (e *NoProgressError) Fatal() bool { return true }

// Read is a chunk's rows as one snapshot saw them.
type Read struct {
	Rows []Row
	// Rest, if set, is the key of the last row read: the read stopped early (ChunkBytes) and
	// the chunk's range ends there; the engine plans the rest as a new chunk.
	Rest []string
	// Visible reports whether the snapshot saw a committed transaction.
	Visible func(tx uint64) bool
	// Horizon: every transaction that precedes it is visible to this snapshot and to every
	// snapshot taken later.
	Horizon uint64
	// Shape is the source's description of the rows' table (columns and types) as the
	// snapshot saw it; the source checks it against the stream's when it emits the rows.
	Shape any
}

// Row is one row of a chunk: its key identity (KeyOf) and its values in column order.
type Row struct {
	Key  string
	Vals []change.Value
	// Err is set when a value could not be decoded (it is then Undecodable): the row is a
	// poison record like a streamed change with Event.Err.
	Err error
}

// Merged is a chunk ready to be emitted by the stream at its watermark.
type Merged struct {
	Table string
	Rows  []Row
	// Last: the chunk ends the table's snapshot (its last row is marked).
	Last bool
	// State is the engine's progress with this chunk published: the Commit of the
	// watermark's transaction carries it.
	State []byte
	Shape any
	// Dropped counts rows dropped because the stream carried their keys' changes (newer, or
	// the same state already published).
	Dropped int
}

// taskRun is what a session knows of a task besides its State.
type taskRun struct {
	started, starting bool
	planning          bool
	reading           map[uint64]bool // chunk seqs being read
	begun             time.Time
	// gone is when the table was first found missing in the current streak (zero: found);
	// retry is when it is looked for again (no job of the task is picked before).
	gone, retry time.Time
}

// bound is a lower bound of the horizon of a snapshot in use; unknown before any snapshot
// returned one (nothing is pruned then).
type bound struct {
	h     uint64
	known bool
}

type readyChunk struct {
	task uint64
	seq  uint64
	read *Read
}

// Engine runs one session's snapshots. Its stream-side methods (Tracked, Take, Request,
// StateIfDirty) are called by the source's stream goroutine only.
type Engine struct {
	cfg   Config
	open  func(context.Context) (Worker, error)
	nonce string
	log   *slog.Logger
	// rejects limits the log lines of rejected requests (signal.go).
	rejects rejectLog

	mu       sync.Mutex
	reportMu sync.Mutex // serializes report
	cond     *sync.Cond
	st       *State
	runs     map[uint64]*taskRun
	ready    map[string]*readyChunk
	inflight map[string]bound // token -> horizon bound while its snapshot is in use
	horizon  uint64
	hasHoriz bool
	dirty    atomic.Bool // the state changed since it was last handed out (written under mu)
	buffered int         // chunks read or being read, not yet taken
	closed   bool

	// stream goroutine only
	tracked map[string]*Keys
	takes   int
}

// New builds a session's engine from the committed state (nil: none) and whether the
// pipeline has a committed position. open opens a worker.
func New(cfg Config, committed bool, prev []byte, open func(context.Context) (Worker, error)) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = DefaultParallelism
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = DefaultChunkRows
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	if cfg.Precedes == nil {
		cfg.Precedes = func(a, b uint64) bool { return a < b }
	}
	if cfg.TableGoneGrace <= 0 {
		cfg.TableGoneGrace = DefaultTableGoneGrace
	}
	ps, err := ParseState(prev)
	if err != nil {
		return nil, err
	}
	st := Plan(cfg.Mode, cfg.Tables, committed, ps, time.Now().UTC())
	var n [8]byte
	_, _ = rand.Read(n[:])
	e := &Engine{cfg: cfg, open: open, nonce: hex.EncodeToString(n[:]), log: cfg.Log, st: st,
		runs: map[uint64]*taskRun{}, ready: map[string]*readyChunk{}, inflight: map[string]bound{},
		tracked: map[string]*Keys{}}
	e.cond = sync.NewCond(&e.mu)
	e.dirty.Store(string(st.Marshal()) != string(prev))
	for _, t := range st.Queue {
		e.track(t.Table)
		e.runs[t.ID] = &taskRun{reading: map[uint64]bool{}}
	}
	for _, t := range st.Queue {
		if len(t.Pending) > 0 || t.Rows > 0 {
			e.log.Info("snapshot resumes", "table", t.Table, "rows_done", t.Rows, "chunks_done", t.Chunks, "chunks_pending", len(t.Pending), "reason", t.Reason)
		}
	}
	return e, nil
}

// Running reports whether any snapshot is queued.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.st.Queue) > 0
}

// TokenPrefix is the start of every watermark token of the pipeline; the stream ignores
// tokens of other pipelines and of earlier sessions (Take returns nil).
func (e *Engine) token(task, seq uint64) string {
	return fmt.Sprintf("%s/%s/%d/%d", e.cfg.Pipeline, e.nonce, task, seq)
}

// Run reads chunks with Config.Parallelism workers until ctx ends or a worker fails. It
// waits for work while the queue is empty (an on-demand request can add some).
func (e *Engine) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		e.closed = true
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer stop()
	e.report()
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < e.cfg.Parallelism; i++ {
		g.Go(func() error { return e.worker(gctx) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type jobKind int

const (
	jobStart jobKind = iota
	jobPlan
	jobRead
)

type job struct {
	kind  jobKind
	task  *Task // a copy, safe to read outside the lock
	id    uint64
	chunk Chunk
	// missing: the task's table was missing when the job was picked (tableGone); the job's
	// success ends that streak (tableFound). Other jobs' successes take no lock for it.
	missing bool
}

// next blocks until there is a job for a worker (nil when the engine stops).
func (e *Engine) next() *job {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if e.closed {
			return nil
		}
		if j := e.pick(); j != nil {
			return j
		}
		e.cond.Wait()
	}
}

// pick chooses the next job: the first table not started yet, else a pending chunk nobody
// reads, else planning the next chunk of a table. e.mu is held.
func (e *Engine) pick() *job {
	maxBuffered := 2 * e.cfg.Parallelism
	now := time.Now()
	for _, t := range e.st.Queue {
		r := e.runs[t.ID]
		if now.Before(r.retry) {
			continue // its table was missing: looked for again later (tableGone)
		}
		missing := !r.gone.IsZero()
		if !r.started {
			if r.starting {
				continue
			}
			r.starting = true
			return &job{kind: jobStart, task: copyTask(t), id: t.ID, missing: missing}
		}
		if e.buffered < maxBuffered {
			for _, c := range t.Pending {
				if !r.reading[c.Seq] {
					r.reading[c.Seq] = true
					e.buffered++
					return &job{kind: jobRead, task: copyTask(t), id: t.ID, chunk: c, missing: missing}
				}
			}
		}
		if !t.Planned && !r.planning && e.buffered < maxBuffered {
			r.planning = true
			return &job{kind: jobPlan, task: copyTask(t), id: t.ID, missing: missing}
		}
	}
	return nil
}

func copyTask(t *Task) *Task {
	c := *t
	c.Next = slices.Clone(t.Next)
	c.Pending = slices.Clone(t.Pending)
	return &c
}

func (e *Engine) task(id uint64) *Task {
	for _, t := range e.st.Queue {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (e *Engine) worker(ctx context.Context) error {
	var w Worker
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	for {
		j := e.next()
		if j == nil {
			return nil
		}
		if w == nil {
			var err error
			if w, err = e.open(ctx); err != nil {
				e.abandon(j)
				return fmt.Errorf("snapshot: connecting: %w", err)
			}
		}
		var err error
		switch j.kind {
		case jobStart:
			err = e.start(ctx, w, j)
		case jobPlan:
			err = e.plan(ctx, w, j)
		case jobRead:
			err = e.read(ctx, w, j)
		}
		if errors.Is(err, ErrTableGone) {
			if e.tableGone(j.id, err) {
				e.drop(j.id, err)
			}
			continue
		}
		var ke *KeylessError
		if errors.Is(err, ErrInvalidCondition) || errors.As(err, &ke) && j.task.Reason == "requested" {
			e.drop(j.id, err)
			continue
		}
		if err == nil && j.missing {
			e.tableFound(j.id)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snapshot of %s: %w", j.task.Table, err)
		}
	}
}

// tableGone notes that a task's table was missing (its job was given back): it is looked for
// again with a growing pause, and given up (true) once it has been missing for
// TableGoneGrace. A table renamed away and back, or dropped and recreated, during its snapshot
// is missing for a moment only; its snapshot goes on where it was.
func (e *Engine) tableGone(id uint64, cause error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.runs[id]
	if r == nil {
		return false
	}
	now := time.Now()
	if r.gone.IsZero() {
		r.gone = now
		table := e.task(id).Table
		e.log.Warn("snapshot: the table does not exist; looking for it again before the snapshot is abandoned: "+cause.Error()+
			"; fix: none needed if it is back within the grace period (renamed away and back, or dropped and recreated); "+e.goneFix(table),
			"table", table, "grace", e.cfg.TableGoneGrace.String())
	}
	missing := now.Sub(r.gone)
	if missing >= e.cfg.TableGoneGrace {
		return true
	}
	pause := min(max(missing, 250*time.Millisecond), 5*time.Second, e.cfg.TableGoneGrace-missing)
	r.retry = now.Add(pause)
	time.AfterFunc(pause, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	return false
}

// goneFix is what the operator does about a table whose snapshot found it missing.
func (e *Engine) goneFix(table string) string {
	return fmt.Sprintf("if it is gone for good, remove it from the pipeline's tables; if it exists again after its snapshot was abandoned, "+
		"request a new snapshot of it (cdcd snapshot --config FILE --pipeline %s --table %s)", e.cfg.Pipeline, table)
}

// tableFound ends a task's streak of missing-table errors: a job of it picked after the table
// was found missing succeeded. (A job picked before may have read the table before it went.)
func (e *Engine) tableFound(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.runs[id]; r != nil && !r.gone.IsZero() {
		e.log.Info("snapshot: the table exists again; its snapshot goes on", "table", e.task(id).Table, "missing_for", time.Since(r.gone).Round(time.Millisecond).String())
		r.gone, r.retry = time.Time{}, time.Time{}
	}
}

// abandon gives a job back (its worker could not run it).
func (e *Engine) abandon(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.runs[j.id]; r != nil {
		switch j.kind {
		case jobStart:
			r.starting = false
		case jobPlan:
			r.planning = false
		case jobRead:
			delete(r.reading, j.chunk.Seq)
			e.buffered--
		}
	}
	e.cond.Broadcast()
}

func (e *Engine) start(ctx context.Context, w Worker, j *job) error {
	byPage, est, err := w.Describe(ctx, j.task)
	if err == nil && byPage && !slices.Contains(e.cfg.KeylessAccepted, j.task.Table) {
		err = &KeylessError{Table: j.task.Table}
	}
	if err == nil {
		err = w.Prepare(ctx, j.task)
	}
	if err != nil {
		e.abandon(j)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, r := e.task(j.id), e.runs[j.id]
	if t == nil {
		return nil
	}
	r.started, r.starting, r.begun = true, false, time.Now()
	if t.Rows == 0 && len(t.Pending) == 0 && t.Next == nil {
		t.ByPage = byPage
		e.log.Info("snapshot started", "table", t.Table, "rows_estimated", est, "reason", t.Reason, "where", t.Where, "by", map[bool]string{false: "key", true: "page ranges or row offsets (no usable key)"}[byPage])
	}
	t.Estimated = est
	if m := e.cfg.Metrics; m != nil {
		m.Table(e.cfg.Pipeline, t.Table, est, time.Since(t.Started))
	}
	e.cond.Broadcast()
	return nil
}

func (e *Engine) plan(ctx context.Context, w Worker, j *job) error {
	hi, end, err := w.Plan(ctx, j.task, e.cfg.ChunkRows)
	if err == nil && !end && (hi == nil || j.task.Next != nil && slices.Equal(hi, j.task.Next)) {
		err = &NoProgressError{Table: j.task.Table, Bound: hi, What: "planning the chunk after it returned the same bound"}
	}
	if err != nil {
		e.abandon(j)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, r := e.task(j.id), e.runs[j.id]
	if t == nil {
		return nil
	}
	r.planning = false
	t.NextSeq++
	t.Pending = append(t.Pending, Chunk{Seq: t.NextSeq, Lo: t.Next, Hi: hi})
	if end {
		t.Planned, t.Next = true, nil
	} else {
		t.Next = hi
	}
	e.cond.Broadcast()
	return nil
}

func (e *Engine) read(ctx context.Context, w Worker, j *job) error {
	tok := e.token(j.id, j.chunk.Seq)
	e.mu.Lock()
	e.inflight[tok] = bound{e.horizon, e.hasHoriz}
	e.mu.Unlock()
	rd, err := w.Read(ctx, j.task, j.chunk, e.cfg.ChunkBytes)
	if err == nil && rd.Rest != nil && j.chunk.Lo != nil && slices.Equal(rd.Rest, j.chunk.Lo) {
		err = &NoProgressError{Table: j.task.Table, Bound: rd.Rest, What: "reading the chunk after it stopped at that same key"}
	}
	if err != nil {
		e.mu.Lock()
		delete(e.inflight, tok)
		e.mu.Unlock()
		e.abandon(j)
		return err
	}
	e.mu.Lock()
	t := e.task(j.id)
	if t == nil {
		delete(e.inflight, tok)
		e.buffered--
		e.mu.Unlock()
		return nil
	}
	e.inflight[tok] = bound{rd.Horizon, true}
	if !e.hasHoriz || e.cfg.Precedes(e.horizon, rd.Horizon) {
		e.horizon, e.hasHoriz = rd.Horizon, true
	}
	if rd.Rest != nil {
		// The chunk ends at the last row read (page ranges: where the source says); the rest
		// of its range is a new chunk.
		i := slices.IndexFunc(t.Pending, func(c Chunk) bool { return c.Seq == j.chunk.Seq })
		if i >= 0 {
			t.NextSeq++
			rest := Chunk{Seq: t.NextSeq, Lo: rd.Rest, Hi: t.Pending[i].Hi}
			t.Pending[i].Hi = rd.Rest
			t.Pending = slices.Insert(t.Pending, i+1, rest)
		}
	}
	e.ready[tok] = &readyChunk{task: j.id, seq: j.chunk.Seq, read: rd}
	e.mu.Unlock()

	if err := w.Watermark(ctx, tok); err != nil {
		e.mu.Lock()
		delete(e.ready, tok)
		delete(e.inflight, tok)
		e.mu.Unlock()
		e.abandon(j)
		return fmt.Errorf("writing the watermark: %w", err)
	}
	return nil
}

// drop ends a task: its table is gone, its condition is invalid, or a requested snapshot of
// it was refused (each cause names its own fix; a gone table gets goneFix).
func (e *Engine) drop(id uint64, cause error) {
	defer e.report()
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.task(id)
	if t == nil {
		return
	}
	msg := "snapshot abandoned: " + cause.Error()
	if errors.Is(cause, ErrTableGone) {
		msg += "; fix: " + e.goneFix(t.Table)
	}
	e.log.Warn(msg, "table", t.Table, "rows_done", t.Rows)
	e.st.Queue = slices.DeleteFunc(e.st.Queue, func(x *Task) bool { return x.ID == id })
	delete(e.runs, id)
	e.dirty.Store(true)
	e.cond.Broadcast()
}

// Take hands the stream a chunk whose watermark it reached (nil if token is not one of this
// session's chunks): its rows minus those the stream changed since by transactions the
// chunk's snapshot did not see. The chunk counts as published from here on: the stream must
// emit Merged.Rows before the Commit that carries Merged.State.
func (e *Engine) Take(token string) *Merged {
	e.mu.Lock()
	rc, ok := e.ready[token]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	delete(e.ready, token)
	delete(e.inflight, token)
	e.buffered--
	r := e.runs[rc.task]
	if r != nil {
		delete(r.reading, rc.seq)
	}
	t := e.task(rc.task)
	var i int
	if t != nil {
		i = slices.IndexFunc(t.Pending, func(c Chunk) bool { return c.Seq == rc.seq })
	}
	if t == nil || i < 0 {
		e.cond.Broadcast()
		e.mu.Unlock()
		return nil
	}
	t.Pending = slices.Delete(t.Pending, i, i+1)
	table := t.Table
	e.mu.Unlock()

	rows := rc.read.Rows
	dropped := 0
	if k := e.tracked[table]; k != nil {
		rows, dropped = k.filter(rows, rc.read.Visible)
	}

	e.mu.Lock()
	t.Rows += uint64(len(rows))
	t.Chunks++
	m := &Merged{Table: table, Rows: rows, Shape: rc.read.Shape, Dropped: dropped}
	if met := e.cfg.Metrics; met != nil {
		met.Chunk(e.cfg.Pipeline, table, len(rows))
		met.Table(e.cfg.Pipeline, table, t.Estimated, time.Since(t.Started))
	}
	if t.Planned && len(t.Pending) == 0 {
		m.Last = true
		e.finish(t)
	}
	e.takes++
	if e.takes%16 == 0 || m.Last {
		e.prune()
	}
	m.State = e.st.Marshal()
	e.dirty.Store(false)
	e.cond.Broadcast()
	e.mu.Unlock()
	e.report() // on this goroutine, so reports arrive in order and the last one is the newest
	return m
}

// finish ends a task whose last chunk was taken. e.mu is held.
func (e *Engine) finish(t *Task) {
	elapsed := time.Since(t.Started)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = math.Round(float64(t.Rows) / s)
	}
	e.log.Info("snapshot finished", "table", t.Table, "rows", t.Rows, "chunks", t.Chunks, "duration", elapsed.Round(time.Millisecond).String(), "rows_per_second", rate, "reason", t.Reason, "where", t.Where)
	e.st.Queue = slices.DeleteFunc(e.st.Queue, func(x *Task) bool { return x.ID == t.ID })
	delete(e.runs, t.ID)
	if !slices.Contains(e.st.Done, t.Table) {
		e.st.Done = append(e.st.Done, t.Table)
	}
	still := slices.ContainsFunc(e.st.Queue, func(x *Task) bool { return x.Table == t.Table })
	if !still {
		delete(e.tracked, t.Table)
	}
	if m := e.cfg.Metrics; m != nil && len(e.st.Queue) == 0 {
		m.SetRunning(e.cfg.Pipeline, false)
	}
}

// prune forgets tracked changes every snapshot still to be used sees (fact 4). e.mu is held.
func (e *Engine) prune() {
	if !e.hasHoriz {
		return
	}
	h := e.horizon
	for _, b := range e.inflight {
		if !b.known {
			return
		}
		if e.cfg.Precedes(b.h, h) {
			h = b.h
		}
	}
	for _, k := range e.tracked {
		k.prune(h, e.cfg.Precedes)
	}
}

// Request queues an on-demand snapshot of table (rows matching where, all if empty), taken
// from a signal in the stream. id makes a request delivered twice count once.
func (e *Engine) Request(table, where, id string) error {
	if !slices.Contains(e.cfg.Tables, table) {
		return fmt.Errorf("table %s is not captured by pipeline %s (its tables: %s)", table, e.cfg.Pipeline, strings.Join(e.cfg.Tables, ", "))
	}
	e.mu.Lock()
	if id != "" && slices.Contains(e.st.Requests, id) {
		e.mu.Unlock()
		return nil
	}
	e.track(table) // before the task exists: Prepare runs after this point (fact 3)
	e.st.NextID++
	t := &Task{ID: e.st.NextID, Table: table, Where: where, Reason: "requested", Started: time.Now().UTC()}
	e.st.Queue = append(e.st.Queue, t)
	e.runs[t.ID] = &taskRun{reading: map[uint64]bool{}}
	if id != "" {
		e.st.Requests = append(e.st.Requests, id)
		if len(e.st.Requests) > maxRequestIDs {
			e.st.Requests = e.st.Requests[len(e.st.Requests)-maxRequestIDs:]
		}
	}
	e.dirty.Store(true)
	e.log.Info("snapshot requested", "table", table, "where", where, "request", id)
	e.cond.Broadcast()
	e.mu.Unlock()
	e.report()
	return nil
}

// StateIfDirty returns the state when it changed since it was last handed out (for the next
// Commit the stream emits after its resume position), else nil.
func (e *Engine) StateIfDirty() []byte {
	if !e.dirty.Load() { // every Commit of the stream asks: no lock unless there is news
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty.Load() {
		return nil
	}
	e.dirty.Store(false)
	return e.st.Marshal()
}

// Progress returns every queued table's progress.
func (e *Engine) Progress() []Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Progress, 0, len(e.st.Queue))
	for _, t := range e.st.Queue {
		out = append(out, Progress{Table: t.Table, Reason: t.Reason, Where: t.Where, Rows: t.Rows, Estimated: t.Estimated,
			Chunks: t.Chunks, Pending: len(t.Pending), Started: t.Started})
	}
	return out
}

// report publishes the progress; reports are serialized and each reads the state when it runs,
// so the last one always shows the newest state whichever goroutine made it. Never called with
// e.mu held.
func (e *Engine) report() {
	e.reportMu.Lock()
	defer e.reportMu.Unlock()
	p := e.Progress()
	if m := e.cfg.Metrics; m != nil {
		m.SetRunning(e.cfg.Pipeline, len(p) > 0)
	}
	if e.cfg.Progress != nil {
		e.cfg.Progress(p)
	}
}

// track starts tracking a table's keys (stream goroutine, or before the stream starts).
func (e *Engine) track(table string) {
	if e.tracked[table] == nil {
		e.tracked[table] = &Keys{m: map[string]keyChange{}}
	}
}

// Tracked returns the key tracker of a table under snapshot, nil if none (stream goroutine).
func (e *Engine) Tracked(table string) *Keys { return e.tracked[table] }

// Changed tells the engine about a row change the stream carried (stream goroutine): before
// and after are the old and new rows (nil when absent), tx the change's transaction. It costs
// nothing while no snapshot runs.
func (e *Engine) Changed(t *change.Table, before, after []change.Value, tx uint64) {
	if len(e.tracked) == 0 || len(t.KeyColumns) == 0 {
		return
	}
	k := e.tracked[t.QualifiedName()]
	if k == nil {
		return
	}
	if after == nil {
		if before != nil {
			k.Touch(KeyOf(before, t.KeyColumns), tx, false)
		}
		return
	}
	ak := KeyOf(after, t.KeyColumns)
	sameRow := true
	if before != nil {
		if bk := KeyOf(before, t.KeyColumns); bk != ak {
			k.Touch(bk, tx, false) // the old key is deleted
			sameRow = false
		}
	}
	k.changed(ak, after, tx, sameRow)
}

// Truncated tells the engine the stream carried a truncate of t by tx (stream goroutine).
func (e *Engine) Truncated(t *change.Table, tx uint64) {
	if k := e.tracked[t.QualifiedName()]; k != nil {
		k.Truncate(tx)
	}
}

// wholeRow reports whether a new row holds every column's value (no unchanged TOAST
// placeholder, nothing undecodable): publishing it published the row's whole state.
func wholeRow(vals []change.Value) bool {
	for i := range vals {
		if s := vals[i].State; s != change.Present && s != change.Null {
			return false
		}
	}
	return true
}

// Keys remembers, per key, the latest change the stream carried: its transaction, whether it
// carried the key's whole new row, and the new row as the stream's records make it known.
type Keys struct {
	m         map[string]keyChange
	truncated bool
	truncTx   uint64
}

type keyChange struct {
	tx   uint64
	full bool
	// row is the key's new row as the stream published it up to this change: the change's
	// values, and for a column it left unchanged (an unchanged TOAST value) the value an
	// earlier change of the same row carried; still Unchanged where none did. nil for a
	// delete, or where not known (Touch).
	row []change.Value
	// moved: a column is still Unchanged, but the change moved the row to this key (a key
	// change) or follows one that did: that value is not this key's older one.
	moved bool
}

// Touch records a change of key by transaction tx; full says the change published the key's
// whole new row (every column's value: no unchanged TOAST placeholder, not a delete).
func (k *Keys) Touch(key string, tx uint64, full bool) { k.m[key] = keyChange{tx: tx, full: full} }

// changed records a change whose new row is after; sameRow is false when it moved the row
// from another key. A row the stream published whole is kept as it is (no copy); one with
// unchanged columns is completed from the key's previous change where that one knew them.
func (k *Keys) changed(key string, after []change.Value, tx uint64, sameRow bool) {
	if wholeRow(after) {
		k.m[key] = keyChange{tx: tx, full: true, row: after}
		return
	}
	c := keyChange{tx: tx, moved: !sameRow}
	prev, ok := k.m[key]
	known := ok && sameRow && prev.row != nil // the previous change of this row, as published
	row := slices.Clone(after)
	for i := range row {
		switch row[i].State {
		case change.Present, change.Null:
		case change.Unchanged:
			if known && i < len(prev.row) {
				if s := prev.row[i].State; s == change.Present || s == change.Null {
					row[i] = prev.row[i]
					continue
				}
			}
			// Not published since the key was tracked: the chunk's value is the row's unless
			// the row came from another key, now or in a change before (or that change is not
			// known: Touch, or a delete of the key).
			if !sameRow || ok && (prev.moved || prev.row == nil) {
				c.moved = true
			}
		default: // undecodable: the stream's record is a poison one, never completed
			k.m[key] = keyChange{tx: tx}
			return
		}
	}
	c.row = row
	k.m[key] = c
}

// Truncate records a truncate of the table by transaction tx.
func (k *Keys) Truncate(tx uint64) {
	k.truncated, k.truncTx = true, tx
	clear(k.m) // every key's latest change is the truncate
}

// Len is the number of keys remembered.
func (k *Keys) Len() int { return len(k.m) }

func (k *Keys) filter(rows []Row, visible func(uint64) bool) ([]Row, int) {
	if k.truncated && !visible(k.truncTx) {
		return nil, len(rows)
	}
	if len(k.m) == 0 {
		return rows, 0
	}
	// A change the snapshot saw is the last one before the watermark (a later one it saw
	// would come after it, and every one it saw comes before the watermark), so the row equals
	// that change's new row: when the stream published it whole, the row would only repeat
	// it, and is dropped; else the row completes it and is kept.
	//
	// A change the snapshot did not see is newer than the row. When the stream published its
	// row whole, or it was a delete, the row is dropped. When it left columns unchanged, the
	// row becomes the stream's row completed: with the values earlier changes of the row
	// carried, and for a column no change carried since the key was tracked, the chunk's (no
	// change since the row was read altered it: every change after the read is tracked). That
	// is the key's whole state at the watermark, which no record carried before. A row moved
	// from another key is not completed from this key's chunk row: dropped, as before.
	out := rows[:0]
	for _, r := range rows {
		c, ok := k.m[r.Key]
		if !ok {
			out = append(out, r)
			continue
		}
		if visible(c.tx) {
			if !c.full {
				out = append(out, r)
			}
			continue
		}
		if c.full || c.row == nil || r.Err != nil || len(c.row) != len(r.Vals) {
			continue
		}
		vals := slices.Clone(c.row)
		complete := true
		for i := range vals {
			if vals[i].State == change.Unchanged {
				if c.moved {
					complete = false
					break
				}
				vals[i] = r.Vals[i]
			}
		}
		if complete {
			out = append(out, Row{Key: r.Key, Vals: vals})
		}
	}
	return out, len(rows) - len(out)
}

func (k *Keys) prune(h uint64, precedes func(a, b uint64) bool) {
	for key, c := range k.m {
		if precedes(c.tx, h) {
			delete(k.m, key)
		}
	}
	if k.truncated && precedes(k.truncTx, h) {
		k.truncated = false
	}
}

// KeyOf is the identity of a row's key: the same values give the same string, whether the
// row came from a chunk or from the stream.
func KeyOf(vals []change.Value, cols []int) string {
	var buf [64]byte // most keys fit: one allocation, the string's
	b := buf[:0]
	for _, i := range cols {
		if i < len(vals) {
			b = appendValue(b, vals[i])
		}
	}
	return string(b)
}

func appendValue(b []byte, v change.Value) []byte {
	b = append(b, byte(v.State))
	b = binary.AppendVarint(b, v.Int)
	b = binary.AppendUvarint(b, v.Uint)
	b = binary.AppendUvarint(b, math.Float64bits(v.Float))
	b = binary.AppendUvarint(b, uint64(len(v.Str)))
	b = append(b, v.Str...)
	b = binary.AppendUvarint(b, uint64(len(v.Bytes)))
	b = append(b, v.Bytes...)
	b = binary.AppendUvarint(b, uint64(len(v.Arr)))
	for _, a := range v.Arr {
		b = appendValue(b, a)
	}
	return b
}
