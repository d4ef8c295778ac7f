// Package mysql is the MySQL/MariaDB binlog source: it checks the server's prerequisites,
// reads the binlog as a replica (go-mysql's BinlogSyncer), takes each change's table shape
// from its TABLE_MAP event (binlog_row_metadata=FULL) and emits whole committed transactions
// as change.Items with positions that are a function of the binlog alone.
//
// Invariants:
//   - One goroutine (Run) owns the stream state; go-mysql's reader hands events over through
//     a bounded channel. Ack may be called from any goroutine.
//   - A change's table shape comes from the TABLE_MAP event written with it, never from the
//     catalog: replaying the binlog later, after more DDL, gives the same schemas and bytes.
//   - Positions (see position.go) increase strictly; a session restarts at the start of the
//     committed transaction, so nothing the committed position does not cover is skipped.
//   - A committed position whose binlog is gone (purged, or the server's binlogs were reset)
//     stops the pipeline with the fix; it is never skipped silently.
//   - cdcd writes nothing to the server but snapshot signal rows (snapshot.go): no heartbeat
//     table, no replica state.
//
// Files by role: source.go (setup and the session loop), stream.go (the event state
// machine), tables.go (table versions from TABLE_MAP), columns.go and decode.go (types and
// values, shared with snapshots reading rows with SELECT), position.go (positions and resume
// tokens), preflight.go (the checks `cdcd check` and every start run), monitor.go (binlog
// lag and retention metrics), snapshot.go and lowmark.go (the snapshot engine's worker).
package mysql

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/cdcd-dev/cdcd/source/mysql/dsn"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/fatal"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Config of one MySQL/MariaDB source.
type Config struct {
	Pipeline string
	DSN      string
	// ServerID is the replica id cdcd registers with; no server or other replica may use it.
	ServerID uint32
	Tables   []string
	// Flavor is "mysql" or "mariadb"; empty detects it from the server's version.
	Flavor string
	// HeartbeatInterval is the server heartbeat period (the server sends a heartbeat event
	// when it has had nothing to send for that long) and the longest time the committed
	// position lags behind transactions of tables that are not captured. Default 5s.
	HeartbeatInterval time.Duration
	Log               *slog.Logger
	// OnEvent, if set, is called by the stream goroutine with each binlog event's header and
	// file (for lag metrics; it must not block).
	OnEvent func(h *replication.EventHeader, file string)
	// Snapshot configures snapshots (see snapshot.go); SnapshotMetrics may be nil.
	Snapshot        source.SnapshotConfig
	SnapshotMetrics snapshot.Metrics
	// SignalTable is db.table of the table cdcd writes watermarks and requests into (created
	// if missing). Default: cdcd_signal in the first captured table's database.
	SignalTable string
	// SnapshotConsistency is the snapshots' consistency mode (ConsistencyAuto, the default, ...).
	SnapshotConsistency string
	// XARecover is what a brand-new pipeline does about XA branches prepared at its start
	// position (see firstPosition): XARecoverCheck (the default) or XARecoverSkip.
	XARecover string
}

// XA RECOVER modes of a first start (source.mysql.xa_recover).
const (
	// XARecoverCheck: take the first position only while XA RECOVER lists no prepared branch;
	// a user who may not run it stops the pipeline with the grant.
	XARecoverCheck = "check"
	// XARecoverSkip: take the first position without asking XA RECOVER (a branch prepared
	// before it and committed after it is then lost).
	XARecoverSkip = "skip"
)

// FatalError is a failure retrying cannot fix (a prerequisite, a purged position): the one
// marker every layer uses (package fatal).
type FatalError = fatal.Error

// Source streams one server's binlog.
type Source struct {
	cfg   Config
	log   *slog.Logger
	acked atomic.Uint64 // Tx of the last transaction durable in Kafka (for metrics)
	// read is the position of the last binlog event read (file seq<<32 | end offset) and
	// readTime its server timestamp (Unix seconds), for the lag metrics.
	read     atomic.Uint64
	readTime atomic.Int64

	// tables outlives sessions (only Run's goroutine uses it), so table versions stay the
	// same *change.Table across reconnects.
	tables *tables
	// snapSignal is the signal table (db.table) of this session's snapshots.
	snapSignal string
	// instance tells this process's binlog connections from another instance's (both report
	// the pipeline's replica host name; see replicaHost).
	instance string
	// lows hands low watermarks' positions from the stream to snapshot workers (watermarks
	// consistency); it locks itself.
	lows *lowMarks
}

// New returns a source; nothing connects until Run.
func New(cfg Config) (*Source, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	cfg.Snapshot = cfg.Snapshot.WithDefaults()
	switch cfg.Flavor {
	case "", gomysql.MySQLFlavor, gomysql.MariaDBFlavor:
	default:
		return nil, fmt.Errorf("flavor %q: must be mysql or mariadb (or empty to detect it)", cfg.Flavor)
	}
	switch cfg.XARecover {
	case "":
		cfg.XARecover = XARecoverCheck
	case XARecoverCheck, XARecoverSkip:
	default:
		return nil, fmt.Errorf("xa_recover %q: must be check (the default) or skip", cfg.XARecover)
	}
	t, err := newTables(cfg.Tables)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, log: cfg.Log, tables: t, lows: newLowMarks(), instance: rand.Text()[:8]}, nil
}

// replicaHost is the host name this instance's binlog connection reports to the server.
func (s *Source) replicaHost() string { return ReplicaHost(s.cfg.Pipeline) + "@" + s.instance }

// Ack records that every transaction at or before Tx pos is durable in Kafka. The binlog
// needs no acknowledgement (the server keeps binlogs by time, not by replica); the value
// feeds the retention metrics.
func (s *Source) Ack(pos uint64) {
	for {
		cur := s.acked.Load()
		if pos <= cur || s.acked.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// Acked is the Tx of the last transaction durable in Kafka (0 before the first).
func (s *Source) Acked() uint64 { return s.acked.Load() }

// Run checks the server, then streams the binlog from the committed position (or from the
// server's current position on a pipeline's first start) until ctx ends or the stream fails.
func (s *Source) Run(ctx context.Context, resume change.Resume, out chan<- []change.Item) (err error) {
	conn, err := Connect(ctx, s.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer func() {
		err = source.LostConnection(err, func() error {
			_ = conn.Conn.SetDeadline(time.Now().Add(5 * time.Second)) // conn closes right after
			return conn.Ping()
		}, "the server")
	}()

	sess, err := s.prepare(ctx, conn, resume)
	if err != nil {
		return err
	}
	eng, err := s.snapshotEngine(conn, sess.flavor, resume)
	if err != nil {
		return err
	}
	signalDB, signalName, _ := strings.Cut(s.snapSignal, ".")
	bl, err := s.openBinlog(conn, sess, signalDB, signalName)
	if err != nil {
		return err
	}
	defer bl.close(s.log)

	cat := &catalogConn{dsn: s.cfg.DSN}
	defer cat.close()
	st := &stream{src: s, out: out, tables: s.tables, byID: map[uint64]*tableVersion{}, flavor: sess.flavor, csumLen: sess.csumLen,
		lastEmit: time.Now(), onEvent: s.cfg.OnEvent, snap: eng, signalDB: signalDB, signalName: signalName, catalog: cat.table, columns: cat.columns,
		server: sess.server, shift: sess.start.Shift, rebuildGTIDs: sess.rebuild}
	if resume.Committed {
		st.resumeTx = resume.Pos.Tx
		if sess.failover {
			st.rebase, st.floor = true, resume.Pos.Tx
		}
		if sess.start.Legacy {
			st.legacyTx = resume.Pos.Tx
		}
	}
	if !sess.rebuild && (sess.start.GTIDs != "" || hasGTIDs(conn, sess.flavor)) {
		if st.gset, err = parseGTIDs(sess.flavor, sess.start.GTIDs); err != nil {
			return &FatalError{Err: fmt.Errorf("parsing the GTID set %q: %w", sess.start.GTIDs, err)}
		}
	}
	// The snapshot engine reads chunks beside the stream; either ending ends the session.
	return source.Session(ctx, func(ctx context.Context) error { return s.loop(ctx, st, sess, bl, resume) }, eng.Run)
}

// session is what a session's start found out about the server and where it starts.
type session struct {
	flavor   string
	csumLen  int    // checksum bytes at the end of each event
	server   string // serverIdentity
	start    Token
	failover bool // the committed position was taken on another server (see startPoint)
	rebuild  bool // GTIDs were turned on since the committed position (see openBinlog)
}

// prepare checks the server and decides where the session starts.
func (s *Source) prepare(ctx context.Context, conn *client.Conn, resume change.Resume) (*session, error) {
	if other := otherInstance(conn, s.cfg.Pipeline, s.replicaHost(), s.cfg.ServerID); other != "" {
		return nil, &ReplicaBusyError{Detail: "replica " + other + " with server_id " + strconv.FormatUint(uint64(s.cfg.ServerID), 10) + " is connected"}
	}
	var rep checks.Report
	PreflightFor(conn, s.cfg.Pipeline, s.cfg.ServerID, s.cfg.Tables,
		SnapshotChecks{Consistency: s.cfg.SnapshotConsistency, Snapshots: s.cfg.Snapshot.Mode != snapshot.Never}, rep.Scoped("pipeline "+s.cfg.Pipeline))
	if err := rep.Errors(); err != nil {
		return nil, &FatalError{Err: err}
	}
	for _, w := range rep.Results {
		if w.Status == checks.Warn {
			s.log.Warn(w.Name+": "+w.Detail, "fix", w.Fix)
		}
	}
	sess := &session{flavor: s.cfg.Flavor}
	if sess.flavor == "" {
		sess.flavor = detectFlavor(conn)
	}
	csum, err := variable(conn, "binlog_checksum")
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(csum, "CRC32") {
		sess.csumLen = 4
	}
	if sess.server, err = serverIdentity(conn, sess.flavor); err != nil {
		return nil, err
	}
	if sess.start, sess.failover, err = s.startPoint(ctx, conn, sess.flavor, sess.server, resume); err != nil {
		return nil, err
	}
	if resume.Committed && !sess.failover {
		s.Ack(resume.Pos.Tx - sess.start.Shift)
		if err := checkPurged(conn, sess.start, resume.Pos); err != nil {
			return nil, err
		}
	}
	// GTIDs turned on since the committed position was taken (MySQL's gtid_mode went OFF ->
	// OFF_PERMISSIVE -> ON_PERMISSIVE -> ON): the position has no GTID state, and one made of
	// the GTIDs this session happens to read would be partial (a later resume by it would ask
	// for every older transaction again, or for purged ones). So the session reads the
	// committed position's binlog file from its start, takes the GTID state from the file's
	// PREVIOUS_GTIDS event and follows it from there; what it reads again before the committed
	// position the pipeline drops.
	sess.rebuild = resume.Committed && !sess.failover && sess.start.GTIDs == "" && sess.flavor == gomysql.MySQLFlavor && hasGTIDs(conn, sess.flavor)
	return sess, nil
}

// binlogReader is a session's binlog connection: go-mysql's syncer hands events to evs from
// its reader goroutine; errc carries the reader's error.
type binlogReader struct {
	syncer  *replication.BinlogSyncer
	evs     chan *replication.BinlogEvent
	stopped chan struct{}
	errc    chan error
}

// openBinlog starts reading the binlog where the session starts.
func (s *Source) openBinlog(conn *client.Conn, sess *session, signalDB, signalName string) (*binlogReader, error) {
	d, err := dsn.Parse(s.cfg.DSN)
	if err != nil {
		return nil, &FatalError{Err: err}
	}
	host, portText, _ := strings.Cut(d.Addr, ":")
	port, _ := strconv.ParseUint(cmp.Or(portText, "3306"), 10, 16)

	bl := &binlogReader{evs: make(chan *replication.BinlogEvent, 1024), stopped: make(chan struct{}), errc: make(chan error, 1)}
	captured := s.tables.captured
	bl.syncer = replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.cfg.ServerID, Flavor: sess.flavor, Host: host, Port: uint16(port), User: d.User, Password: d.Password,
		// ParseTime: DATETIME and TIMESTAMP values as time.Time, not formatted as text to be
		// parsed back (see DecodeBinlog; binlogtime.go keeps invalid days from becoming dates).
		Charset: "utf8mb4", ParseTime: true, TimestampStringLocation: time.UTC, HeartbeatPeriod: s.cfg.HeartbeatInterval,
		ReadTimeout: 3*s.cfg.HeartbeatInterval + 10*time.Second, DisableRetrySync: true, DiscardGTIDSet: true,
		// MariaDB 11.4+ may send events without their end position; go-mysql then computes it
		// (which needs the ANNOTATE_ROWS events too, so only there).
		FillZeroLogPos: sess.flavor == gomysql.MariaDBFlavor && versionAtLeast(conn, 11, 4),
		Logger:         slog.New(slog.DiscardHandler),
		Localhost:      s.replicaHost(),
		RowsEventDecodeFunc: func(re *replication.RowsEvent, data []byte) error {
			// Rows of tables that are not captured are not decoded at all.
			pos, err := re.DecodeHeader(data)
			if err != nil {
				return err
			}
			if re.Table != nil && !captured[string(re.Table.Schema)+"."+string(re.Table.Table)] &&
				!(string(re.Table.Schema) == signalDB && string(re.Table.Table) == signalName) {
				return nil
			}
			return re.DecodeData(pos, data)
		},
		SynchronousEventHandler: handlerFunc(func(e *replication.BinlogEvent) error {
			select {
			case bl.evs <- e:
				return nil
			case <-bl.stopped:
				return errors.New("stream stopped")
			}
		}),
	})
	start := sess.start
	var streamer *replication.BinlogStreamer
	if start.GTIDs != "" {
		state, err := parseGTIDs(sess.flavor, start.GTIDs)
		if err != nil {
			return nil, &FatalError{Err: fmt.Errorf("parsing the GTID set %q to resume from: %w", start.GTIDs, err)}
		}
		gs, err := syncGTIDSet(sess.flavor, state)
		if err != nil {
			return nil, &FatalError{Err: fmt.Errorf("parsing the GTID set %q to resume from: %w", start.GTIDs, err)}
		}
		if streamer, err = bl.syncer.StartSyncGTID(gs); err != nil {
			bl.syncer.Close()
			return nil, fmt.Errorf("starting the binlog stream at GTID set %s: %w", start.GTIDs, err)
		}
	} else {
		from := start.Pos
		if sess.rebuild {
			from = 4 // the file's start, where its PREVIOUS_GTIDS event is
		}
		if streamer, err = bl.syncer.StartSync(gomysql.Position{Name: start.File, Pos: from}); err != nil {
			bl.syncer.Close()
			return nil, fmt.Errorf("starting the binlog stream at %s:%d: %w", start.File, start.Pos, err)
		}
	}
	// In synchronous mode the streamer carries only the reader's error.
	go func() {
		_, err := streamer.GetEvent(context.Background())
		bl.errc <- err
	}()
	return bl, nil
}

// close stops the reader: its hand-off first (Close waits for the reader goroutine).
func (bl *binlogReader) close(log *slog.Logger) {
	close(bl.stopped)
	t0 := time.Now()
	bl.syncer.Close()
	<-bl.errc
	log.Debug("binlog stream closed", "took", time.Since(t0))
}

// loop feeds the binlog's events to the stream until ctx ends or the reader, the stream or
// the snapshot engine fails.
func (s *Source) loop(ctx context.Context, st *stream, sess *session, bl *binlogReader, resume change.Resume) error {
	streaming := false
	for {
		var outC chan<- []change.Item
		if len(st.chunk) > 0 && len(bl.evs) == 0 {
			outC = st.out // the binlog went quiet: hand over what is there
		}
		select {
		case ev := <-bl.evs:
			if !streaming {
				streaming = true
				s.log.Info("streaming binlog", "flavor", sess.flavor, "from", sess.start.describeStart(), "gtids", sess.start.GTIDs, "server_id", s.cfg.ServerID)
				if resume.OnStreaming != nil {
					resume.OnStreaming(change.Streaming{})
				}
				if !resume.Committed {
					// A new pipeline records where it starts at once: a restart before
					// any change of its tables resumes here instead of at the server's
					// position then, which would skip what was written in between.
					if err := st.startCommit(ctx, sess.start); err != nil {
						return err
					}
				}
			}
			if err := st.handle(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		case outC <- st.chunk:
			st.chunk = nil
		case err := <-bl.errc:
			bl.errc <- err // for the deferred wait
			return classifyStreamError(err, sess.start)
		case <-ctx.Done():
			return nil
		}
	}
}

type handlerFunc func(*replication.BinlogEvent) error

func (f handlerFunc) HandleEvent(e *replication.BinlogEvent) error { return f(e) }

// afterBinlogStatus, if set (tests), runs right after the server's binlog position is read on
// a first start.
var afterBinlogStatus func()

// startPoint is where the session starts: the committed transaction's start, or the
// server's current position on a pipeline's first start. server names the server connected
// to (serverIdentity).
//
// Failover: a binlog file and offset name a point of one server's binlog only. When the
// committed position was taken on another server (a replica promoted, the DSN moved), the
// session resumes by GTID alone: after the committed transaction when it was published
// whole, else before it (its published part is then published again: the new server's
// copy of it cannot be matched change by change). The new server's positions are shifted
// past the committed one (stream.rebase), so the pipeline drops nothing it has not
// published. Without GTIDs nothing names the committed point on the new server: the
// session stops with the fix.
func (s *Source) startPoint(ctx context.Context, conn *client.Conn, flavor, server string, resume change.Resume) (Token, bool, error) {
	if !resume.Committed {
		t, err := s.firstPosition(ctx, conn, flavor)
		t.Server = server
		return t, false, err
	}
	t, err := ParseToken(resume.Pos.Resume)
	if err != nil {
		return t, false, &FatalError{Err: err}
	}
	if t.Flavor != flavor {
		return t, false, &FatalError{Err: fmt.Errorf("the committed position was taken on a %s server, but this server is %s; fix: point the DSN at the server the pipeline captured, or `cdcd reset-offsets` and re-snapshot", t.Flavor, flavor)}
	}
	if t.Server == "" || t.Server == server {
		return t, false, nil
	}
	if t.GTIDs == "" && t.GTID == "" {
		return t, false, &FatalError{Err: fmt.Errorf("the committed position %s is in the binlog of server %s, but the DSN now reaches server %s, and the position has no GTIDs: a binlog file and offset name nothing on another server, so resuming could skip or repeat changes; "+
			"fix: point the DSN back at server %s; for failovers, enable GTIDs on every server (gtid_mode=ON, enforce_gtid_consistency=ON); to start over on this server, re-snapshot the tables and `cdcd reset-offsets --config FILE --pipeline NAME`",
			describe(resume.Pos), t.Server, server, t.Server)}
	}
	if resume.Pos.Index == commitIndex && t.GTID != "" {
		state, err := parseGTIDs(flavor, t.GTIDs)
		if err == nil {
			err = state.Update(t.GTID)
		}
		if err != nil {
			return t, false, &FatalError{Err: fmt.Errorf("the committed position's GTIDs %q and %q: %w", t.GTIDs, t.GTID, err)}
		}
		t.GTIDs = state.String()
		s.log.Warn("the server changed (failover): resuming by GTID after the committed transaction", "old_server", t.Server, "server", server, "gtids", t.GTIDs)
	} else {
		s.log.Warn("the server changed (failover) inside a transaction published in parts: resuming by GTID before it, so its published part is published again",
			"old_server", t.Server, "server", server, "position", describe(resume.Pos), "gtids", t.GTIDs)
	}
	return t, true, nil
}

// serverIdentity names the server connected to: MySQL's server_uuid, MariaDB's server_id.
func serverIdentity(conn *client.Conn, flavor string) (string, error) {
	name := "server_uuid"
	if flavor == gomysql.MariaDBFlavor {
		name = "server_id"
	}
	return variable(conn, name)
}

// currentPosition is the server's current binlog position as one point: the file, offset and
// the GTID state at that offset (MySQL: the Executed_Gtid_Set of the same SHOW MASTER STATUS
// row; MariaDB: BINLOG_GTID_POS of the file and offset). Reading the GTID state in a second
// query would count transactions committed in between as read.
func currentPosition(conn *client.Conn, flavor string) (Token, error) {
	st, err := binlogStatus(conn)
	if err != nil {
		return Token{}, err
	}
	if afterBinlogStatus != nil {
		afterBinlogStatus()
	}
	t := Token{Flavor: flavor, File: st.file, Pos: st.pos}
	switch {
	case flavor == gomysql.MariaDBFlavor:
		r, err := conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", st.file, st.pos)
		if err != nil {
			return t, fmt.Errorf("reading the GTID position of %s:%d (BINLOG_GTID_POS): %w", st.file, st.pos, err)
		}
		if t.GTIDs, err = r.GetString(0, 0); err != nil {
			return t, fmt.Errorf("reading the GTID position of %s:%d (BINLOG_GTID_POS): %w", st.file, st.pos, err)
		}
	case hasGTIDs(conn, flavor):
		t.GTIDs = st.executed
	}
	t.GTIDs = strings.ReplaceAll(t.GTIDs, "\n", "")
	return t, nil
}

// versionAtLeast reports whether the server's version is major.minor or newer.
func versionAtLeast(conn *client.Conn, major, minor int) bool {
	v, err := variable(conn, "version")
	if err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(v, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func detectFlavor(conn *client.Conn) string {
	if handshakeMariaDB(conn) {
		return gomysql.MariaDBFlavor
	}
	// A proxy may answer the handshake with a version of its own: ask the server.
	if v, err := variable(conn, "version"); err == nil && strings.Contains(strings.ToLower(v), "mariadb") {
		return gomysql.MariaDBFlavor
	}
	return gomysql.MySQLFlavor
}

// handshakeMariaDB reports whether the server's handshake names MariaDB (no round trip).
func handshakeMariaDB(conn *client.Conn) bool {
	return strings.Contains(strings.ToLower(conn.GetServerVersion()), "mariadb")
}

// hasGTIDs: MariaDB always has GTIDs; MySQL when gtid_mode is ON.
func hasGTIDs(conn *client.Conn, flavor string) bool {
	if flavor == gomysql.MariaDBFlavor {
		return true
	}
	v, err := variable(conn, "gtid_mode")
	return err == nil && strings.EqualFold(v, "ON")
}

func variable(conn *client.Conn, name string) (string, error) {
	vars, err := variables(conn, name)
	if err != nil {
		return "", fmt.Errorf("reading @@%s: %w", name, err)
	}
	return vars[name], nil
}

// binlogPosition is a row of SHOW MASTER STATUS.
type binlogPosition struct {
	file     string
	pos      uint32
	executed string // MySQL's Executed_Gtid_Set at that position (empty on MariaDB)
}

// binlogStatus reads the server's current binlog file and offset (and, on MySQL, the GTID set
// executed there), with SHOW MASTER STATUS or, on MySQL 8.4+ where that is gone, SHOW BINARY
// LOG STATUS.
func binlogStatus(conn *client.Conn) (binlogPosition, error) {
	r, err := conn.Execute("SHOW MASTER STATUS")
	var me *gomysql.MyError
	if errors.As(err, &me) && me.Code == gomysql.ER_PARSE_ERROR {
		r, err = conn.Execute("SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return binlogPosition{}, fmt.Errorf("reading the binlog position (SHOW MASTER STATUS): %w (fix: GRANT REPLICATION CLIENT ON *.* TO the cdcd user)", err)
	}
	if r.RowNumber() == 0 {
		return binlogPosition{}, &FatalError{Err: errors.New("SHOW MASTER STATUS returns nothing: binary logging is off; fix: start the server with log_bin")}
	}
	var p binlogPosition
	p.file, _ = r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	p.pos = uint32(pos)
	if i, ok := r.FieldNames["Executed_Gtid_Set"]; ok {
		p.executed, _ = r.GetString(0, i)
	}
	return p, nil
}

// masterStatus is the server's current binlog file and offset.
func masterStatus(conn *client.Conn) (string, uint32, error) {
	p, err := binlogStatus(conn)
	return p.file, p.pos, err
}

// binlogFiles lists the server's binlogs, oldest first, with their sizes.
func binlogFiles(conn *client.Conn) ([]string, []uint64, error) {
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return nil, nil, fmt.Errorf("listing binlogs (SHOW BINARY LOGS): %w (fix: GRANT REPLICATION CLIENT ON *.* TO the cdcd user)", err)
	}
	names := make([]string, r.RowNumber())
	sizes := make([]uint64, r.RowNumber())
	for i := range names {
		names[i], _ = r.GetString(i, 0)
		sizes[i], _ = r.GetUint(i, 1)
	}
	return names, sizes, nil
}

// PurgedError: the committed position's binlog is no longer on the server.
type PurgedError struct {
	Pos            change.Position
	File           string
	Oldest, Newest string
}

func (e *PurgedError) Error() string {
	if e.Newest != "" && e.File > e.Newest {
		return fmt.Sprintf("the committed position %s is in binlog %s, beyond the server's newest binlog %s: the server's binlogs were reset (RESET MASTER) or the DSN points at another server; resuming would skip or repeat changes; "+
			"fix: point the DSN at the server the pipeline captured, or re-snapshot the tables and `cdcd reset-offsets --config FILE --pipeline NAME`", describe(e.Pos), e.File, e.Newest)
	}
	return fmt.Sprintf("the committed position %s is in binlog %s, which the server has purged (oldest binlog present: %s): the changes since then are lost to cdcd; "+
		"fix: re-snapshot the tables and `cdcd reset-offsets --config FILE --pipeline NAME`, and keep binlogs longer than any outage (binlog_expire_logs_seconds) and watch cdcd_mysql_binlog_purge_distance_bytes", describe(e.Pos), e.File, cmp.Or(e.Oldest, "none"))
}

// Fatal: retrying cannot bring a purged binlog back.
func (e *PurgedError) Fatal() bool { return true }

// checkPurged refuses a committed position whose binlog file is gone.
func checkPurged(conn *client.Conn, start Token, pos change.Position) error {
	names, _, err := binlogFiles(conn)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == start.File {
			return nil
		}
	}
	e := &PurgedError{Pos: pos, File: start.File}
	if len(names) > 0 {
		e.Oldest, e.Newest = names[0], names[len(names)-1]
	}
	return e
}

// ReplicaBusyError: another instance of the pipeline holds the binlog connection (a replica
// with the pipeline's server_id is connected, or it just replaced this one). The pipeline waits
// as a standby and retries: two instances that connected anyway would replace each other at
// the server back and forth, fencing each other's Kafka transactions.
type ReplicaBusyError struct{ Detail string }

func (e *ReplicaBusyError) Error() string {
	return "another instance of this pipeline holds the binlog connection (" + e.Detail + ")"
}

// Standby tells the supervisor to wait rather than count a failure.
func (e *ReplicaBusyError) Standby() bool { return true }

// sameServerID reports the server's error for a replica replaced by another one with the same
// server_id (MariaDB 4052; MySQL 1236 with this text).
func sameServerID(me *gomysql.MyError) bool {
	return me.Code == 4052 || strings.Contains(me.Message, "same server_uuid/server_id")
}

// classifyStreamError turns the reader's error into what the supervisor should do.
func classifyStreamError(err error, start Token) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		if sameServerID(me) {
			return &ReplicaBusyError{Detail: "the server replaced this connection: " + me.Message}
		}
		switch me.Code {
		case gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			// 1236: purged binlog, GTID not in the binlogs, or server_id conflicts.
			return &FatalError{Err: fmt.Errorf("the server refused to send the binlog from %s: %s; fix: if the binlog was purged, re-snapshot the tables and `cdcd reset-offsets --config FILE --pipeline NAME`, and keep binlogs longer (binlog_expire_logs_seconds)", start.String(), me.Message)}
		case gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, gomysql.ER_ACCESS_DENIED_ERROR, gomysql.ER_DBACCESS_DENIED_ERROR:
			return &FatalError{Err: fmt.Errorf("reading the binlog: %s; fix: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the cdcd user", me.Message)}
		}
	}
	return fmt.Errorf("reading the binlog: %w", err)
}

// describeStart spells a start point for logs.
func (t Token) describeStart() string { return t.File + ":" + strconv.FormatUint(uint64(t.Pos), 10) }
