// Package postgres is the PostgreSQL source: it keeps the publication and the logical
// replication slot in shape, streams pgoutput, decodes rows into change.Events and emits only
// committed transactions, and acknowledges to the server only what the pipeline says is
// durable in Kafka.
//
// Invariants:
//   - One goroutine (Run) owns the replication connection; Ack may be called from any
//     goroutine and only stores the position the next status update reports.
//   - The flush position reported to the server is only ever one the pipeline acknowledged
//     (Ack), so the slot never moves past what an offsets record in Kafka says. When nothing
//     the server sent is buffered or in flight, the walsender's sent position travels through
//     the pipeline as a Commit without events, so an idle slot still advances and a fast
//     shutdown of the server waits for one Kafka commit, not for cdcd's next change.
//     write/flush/apply are always set explicitly, and the reported position never goes back.
//   - A change's table shape (columns, nullability, key) is a function of the Relation
//     message, and an event's index inside its transaction a function of the WAL, so
//     replaying the same WAL later gives the same schemas, bytes and positions.
//   - Streamed (in-progress) transactions are buffered with bounded memory and emitted only
//     at their stream commit; aborted ones and aborted subtransactions are never emitted.
//
// Files by role: source.go (the Source: setup, then one stream per session), stream.go (the
// pgoutput state machine and acknowledgement), slot.go and publication.go (the server-side
// objects, decided before anything is created), relations.go (table shapes from Relation
// messages), txbuf.go (streamed-transaction buffers), heartbeat.go, monitor.go (slot
// statistics), preflight.go (the checks `cdcd check` and every start run).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/fatal"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// HeartbeatPrefix is the logical message prefix of cdcd's heartbeats.
const HeartbeatPrefix = "cdcd_heartbeat"

// Config of one Postgres source.
type Config struct {
	Pipeline          string
	DSN               string
	Slot              string
	Publication       string
	Tables            []string
	HeartbeatInterval time.Duration
	StatusInterval    time.Duration
	// DrainTimeout bounds the final status update sent when the stream stops, which reports
	// the last acknowledged position so a restart does not replay it. Default 2s.
	DrainTimeout  time.Duration
	TxMemoryLimit int64
	SpillDir      string
	Log           *slog.Logger
	Metrics       *metrics.Metrics // may be nil in tests
	Snapshot      source.SnapshotConfig
	// Shapes are the shaping's column selections and row filters (schema.table), pushed
	// into the publication when cdcd creates it (shaping.go).
	Shapes map[string]PublishShape
}

// FatalError is a failure retrying cannot fix (a prerequisite, a lost slot, a gap): the one
// marker every layer uses (package fatal).
type FatalError = fatal.Error

// SlotBusyError is returned while another connection streams from the slot; the pipeline
// waits as a standby and retries.
type SlotBusyError struct{ Slot, Detail string }

func (e *SlotBusyError) Error() string {
	return fmt.Sprintf("replication slot %s is in use by another connection (%s)", e.Slot, e.Detail)
}

// Standby tells the supervisor to wait rather than count a failure.
func (e *SlotBusyError) Standby() bool { return true }

// Source streams one database.
type Source struct {
	cfg   Config
	log   *slog.Logger
	acked atomic.Uint64 // end LSN durable in Kafka; reported as write/flush/apply

	serverWALEnd atomic.Uint64 // latest WAL end the server reported

	recent xidRing // xids of the last transactions the stream carried (see snapshot.go)

	// rels outlives sessions (only Run's goroutine uses it), so table versions stay the same
	// *change.Table across reconnects and the encoder's caches stay small and warm.
	rels *relations
}

// New returns a source; nothing connects until Run.
func New(cfg Config) *Source {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 5 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 2 * time.Second
	}
	if cfg.TxMemoryLimit <= 0 {
		cfg.TxMemoryLimit = 16 << 20
	}
	if cfg.SpillDir == "" {
		cfg.SpillDir = os.TempDir()
	}
	cfg.Snapshot = cfg.Snapshot.WithDefaults()
	return &Source{cfg: cfg, log: cfg.Log}
}

// Ack records that every transaction ending at or before lsn is durable; the server is told
// at the next status update.
func (s *Source) Ack(lsn uint64) {
	for {
		cur := s.acked.Load()
		if lsn <= cur || s.acked.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

// ServerWALEnd is the newest WAL position the server reported, for lag metrics.
func (s *Source) ServerWALEnd() uint64 { return s.serverWALEnd.Load() }

// Run prepares the publication and slot, then streams until ctx ends or the connection
// fails, sending chunks of Items to out. A chunk belongs to the receiver once sent.
func (s *Source) Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) (err error) {
	conn, err := connectCatalog(ctx, s.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	defer func() {
		err = source.LostConnection(err, func() error {
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return conn.Ping(pctx)
		}, "PostgreSQL")
	}()
	slot, err := s.prepare(ctx, conn, resume)
	if err != nil {
		return err
	}

	repl, err := connectReplication(ctx, s.cfg.DSN)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())
	if !slot.exists {
		if slot, err = createSlot(ctx, repl, s.cfg.Slot, s.log); err != nil {
			return err
		}
	}
	// The committed position is acknowledged at once (the first status update goes out before
	// the first receive): the pipeline committed it, possibly beyond what the slot confirmed.
	acked := slot.confirmedFlush
	if resume.Committed {
		acked = max(acked, resume.AckPosition)
	}
	s.acked.Store(acked)
	protocol, err := s.startReplication(ctx, conn, repl, resume)
	if err != nil {
		return err
	}
	s.log.Info("streaming", "slot", s.cfg.Slot, "publication", s.cfg.Publication, "from", pglogrepl.LSN(slot.confirmedFlush).String(),
		"acknowledged", pglogrepl.LSN(acked).String(), "protocol", protocol)
	if resume.OnStreaming != nil {
		// The pipeline compares the slot's position with its committed one after it has fenced
		// older producers: only then is the committed position certain to be the latest.
		resume.OnStreaming(change.Streaming{AckedPosition: slot.confirmedFlush})
	}

	eng, err := s.snapshotEngine(resume)
	if err != nil {
		return err
	}
	st := &stream{
		src:  s,
		conn: repl,
		out:  out,
		rels: s.relations(conn),
		bufs: newStreamBuffers(s.cfg.TxMemoryLimit, s.cfg.SpillDir),
		snap: eng,
	}
	if resume.Committed {
		st.resumeTx = resume.Pos.Tx
	}
	if m := s.cfg.Metrics; m != nil {
		st.rels.onNewVersion = func(t *change.Table) {
			m.SchemaVersions.WithLabelValues(s.cfg.Pipeline, t.QualifiedName()).Inc()
		}
		st.bufs.onSpill = func() { m.TxSpilled.WithLabelValues(s.cfg.Pipeline).Inc() }
	}
	defer st.bufs.closeAll()

	// The snapshot engine reads chunks beside the stream, and heartbeats are written beside
	// it; the first to end ends the session.
	beside := []func(context.Context) error{eng.Run}
	if s.cfg.HeartbeatInterval > 0 {
		beside = append(beside, func(ctx context.Context) error { s.heartbeat(ctx); return nil })
	}
	return source.Session(ctx, st.run, beside...)
}

// prepare checks the server, the publication and the slot against the committed position,
// deciding before creating anything: a missing or lost slot under committed positions is
// refused without leaving a new slot behind to hold WAL.
func (s *Source) prepare(ctx context.Context, conn *pgx.Conn, resume change.Resume) (slotInfo, error) {
	var rep checks.Report
	Preflight(ctx, conn, s.cfg.Slot, s.cfg.Publication, s.cfg.Tables, rep.Scoped("pipeline "+s.cfg.Pipeline))
	if err := rep.Errors(); err != nil {
		return slotInfo{}, &FatalError{Err: err}
	}
	for _, w := range rep.Results {
		if w.Status == checks.Warn {
			s.log.Warn(w.Name+": "+w.Detail, "fix", w.Fix)
		}
	}
	slot, err := readSlot(ctx, conn, s.cfg.Slot)
	if err != nil {
		return slot, err
	}
	if err := checkResume(s.cfg.Slot, slot, resume); err != nil {
		return slot, err
	}
	if err := checkResumeInWAL(ctx, conn, resume); err != nil {
		return slot, err
	}
	return slot, ensurePublication(ctx, conn, s.cfg.Publication, s.cfg.Tables, s.cfg.Shapes, s.log)
}

// startReplication starts pgoutput with the options the server's version allows (protocol 2,
// streamed transactions and logical messages need PostgreSQL 14) and says which protocol.
func (s *Source) startReplication(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, resume change.Resume) (string, error) {
	version, _ := strconv.Atoi(repl.ParameterStatus("server_version"))
	if v, err := serverVersionNum(ctx, conn); err == nil {
		version = v
	}
	args := []string{"publication_names '" + s.cfg.Publication + "'"}
	streaming := version >= 140000
	if streaming {
		// messages carry the heartbeats; both options need PostgreSQL 14.
		args = append(args, "proto_version '2'", "streaming 'on'", "messages 'true'")
	} else {
		if s.cfg.Snapshot.Mode != snapshot.Never || (resume.State != nil && len(resume.State) > 0) {
			// A chunk's watermark is a logical message, which pgoutput sends from version 14.
			return "", &FatalError{Err: fmt.Errorf("snapshots need PostgreSQL 14 or later (this server is %d); fix: set snapshot: never for pipeline %s, or upgrade the server", version, s.cfg.Pipeline)}
		}
		args = append(args, "proto_version '1'")
		if s.cfg.HeartbeatInterval > 0 {
			s.log.Warn("heartbeats need PostgreSQL 14 (pgoutput logical messages); the slot advances only with changes of the captured tables", "server_version_num", version)
			s.cfg.HeartbeatInterval = 0
		}
	}
	err := pglogrepl.StartReplication(ctx, repl, s.cfg.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" {
			return "", &SlotBusyError{Slot: s.cfg.Slot, Detail: pgErr.Message}
		}
		return "", fmt.Errorf("starting replication from slot %s: %w", s.cfg.Slot, err)
	}
	if streaming {
		return "2 (streamed transactions)", nil
	}
	return "1", nil
}

// snapshotEngine builds the session's snapshot engine from the committed progress.
func (s *Source) snapshotEngine(resume change.Resume) (*snapshot.Engine, error) {
	normalize := func(ts []string) []string {
		n := make([]string, len(ts))
		for i, t := range ts {
			n[i] = normalizeTable(t)
		}
		return n
	}
	c := s.cfg.Snapshot.Engine(s.cfg.Pipeline, normalize(s.cfg.Tables), normalize(s.cfg.Snapshot.KeylessAccepted))
	c.Precedes, c.Log = xidPrecedes, s.log.With("component", "snapshot")
	if s.cfg.Metrics != nil && s.cfg.Metrics.Snapshot != nil {
		c.Metrics = s.cfg.Metrics.Snapshot
	}
	eng, err := snapshot.New(c, resume.Committed, resume.State, s.openSnapshotWorker)
	if err != nil {
		return nil, &FatalError{Err: err}
	}
	return eng, nil
}

func (s *Source) relations(conn *pgx.Conn) *relations {
	if s.rels == nil {
		s.rels = newRelations(conn.Config().Database, s.cfg.Tables, s.log)
	}
	s.rels.use(conn)
	return s.rels
}

func serverVersionNum(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&v)
	return v, err
}

// checkResumeInWAL refuses a committed position beyond the server's WAL: acknowledging it
// would make the slot skip every change up to there. It happens when the database was
// restored from a backup, or the DSN points at another server than the one the pipeline
// captured.
func checkResumeInWAL(ctx context.Context, conn *pgx.Conn, r change.Resume) error {
	if !r.Committed || r.AckPosition == 0 {
		return nil
	}
	var text string
	err := conn.QueryRow(ctx, `SELECT coalesce((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END)::text, '0/0')`).Scan(&text)
	if err != nil {
		return fmt.Errorf("reading the server's WAL position: %w", err)
	}
	end, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return fmt.Errorf("reading the server's WAL position: %w", err)
	}
	if end != 0 && r.AckPosition > uint64(end) {
		return &FatalError{Err: fmt.Errorf("the pipeline committed changes up to %s, beyond the server's WAL end %s: the database was restored from a backup or is not the server the pipeline captured; "+
			"fix: point the DSN at the right server, or re-snapshot and `cdcd reset-offsets --config FILE --pipeline NAME`", pglogrepl.LSN(r.AckPosition), end)}
	}
	return nil
}

// connectCatalog opens an ordinary connection for catalog queries, with the same session
// settings as the replication connection.
func connectCatalog(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, &FatalError{Err: fmt.Errorf("parsing dsn: %w", err)}
	}
	cfg.RuntimeParams["application_name"] = "cdcd"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return conn, nil
}
