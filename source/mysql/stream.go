package mysql

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/go-mysql-org/go-mysql/replication"
)

// stream turns binlog events into Items. One goroutine (Source.Run's) owns it.
//
// Transaction boundaries, for both flavours:
//   - a GTID event (MariaDB GTID, MySQL GTID or anonymous GTID) or a BEGIN query starts a
//     transaction; a MariaDB GTID without the standalone flag is its own BEGIN;
//   - an XID event, or a COMMIT/ROLLBACK query, ends it; so does any other query (DDL) in a
//     transaction that has not begun with BEGIN (MySQL DDL, MariaDB standalone GTID);
//   - a query outside any transaction (no GTIDs) is a transaction of its own.
//
// Rows of captured tables are emitted as they arrive (the binlog holds committed
// transactions only), the Commit at the transaction's end. A transaction without captured
// rows is not emitted, but its end is remembered: it goes out as a Commit without events
// when the server sends a heartbeat (nothing else to read) or when nothing was emitted for a
// heartbeat interval, so the committed position follows the binlog while captured tables are
// idle.
type stream struct {
	src     *Source
	out     chan<- []change.Item
	chunk   []change.Item
	tables  *tables
	byID    map[uint64]*tableVersion
	flavor  string
	file    string
	seq     uint32
	gset    gtidState // GTIDs before the next transaction; nil without GTIDs
	csumLen int       // checksum bytes at the end of each event
	// text decodes again, with ParseTime off, rows events whose DATETIME values may be
	// invalid days go-mysql normalised (see binlogtime.go).
	text binlogText

	inTx     bool
	began    bool // the transaction began with BEGIN (or a non-standalone MariaDB GTID)
	txTx     uint64
	txToken  string
	txGTID   string
	txTime   time.Time
	txIndex  uint32 // the next free index
	txEvents int
	// txStartPos is the transaction's start offset; inPayload and payloadRel place the events
	// of a compressed transaction payload (see relOf).
	txStartPos uint32
	inPayload  bool
	payloadRel uint32

	// server names the server read (Token.Server); shift is added to its (file, offset) to
	// give Tx; rebase: a failover session, whose first transaction sets shift so that its Tx
	// follows floor, the old server's committed Tx. legacyTx is the committed transaction of
	// a token written before indexes were offsets (legacy while reading it): its changes keep
	// the old numbering so the pipeline drops exactly what was published.
	// rebuildGTIDs: the session reads its first binlog file from the start to take the GTID
	// state from its PREVIOUS_GTIDS event (GTIDs were turned on since the committed position).
	rebuildGTIDs bool
	server       string
	shift        uint64
	rebase       bool
	floor        uint64
	legacyTx     uint64
	legacy       bool

	txStart string // the transaction's own resume token (txToken is an older one while an XA branch is prepared)

	// XA (see xa.go): the branch the open transaction prepares (its rows are held, not
	// emitted), the prepared branches waiting for XA COMMIT or XA ROLLBACK in prepare order,
	// and how many row changes they hold.
	xa        *xaBranch
	xaPending []*xaBranch
	xaHeld    int

	pending  *change.Commit // end of the last transaction without captured rows, not yet emitted
	lastEmit time.Time

	// Snapshots (see snapshot.go): the engine, the signal table and its TABLE_MAP id, the
	// high and low watermarks and requests of the transaction being read, and the committed
	// position's Tx
	// (Commits at or before it are dropped as covered, so the engine's state waits for a
	// later one).
	snap                 *snapshot.Engine
	signalDB, signalName string
	signalID             uint64
	hasSignalID          bool
	hw                   []string
	lows                 []string
	signals              []string
	resumeTx             uint64
	// catalog reads a table's shape from the catalog (a TRUNCATE of a table whose TABLE_MAP
	// this process has not seen).
	catalog func(ctx context.Context, db, table string) (*change.Table, error)
	// columns reads a table's columns from the catalog (a new table version: what the
	// binlog does not carry).
	columns func(ctx context.Context, db, table string) (map[string]catalogColumn, error)
	// onEvent, if set, is called with each event's header (lag metrics).
	onEvent func(h *replication.EventHeader, file string)
}

// indexStride: each row change owns two indexes, the second for the create of a key change
// (a delete of the old key followed by a create of the new one), so whether an update changes
// the key never shifts later indexes.
const indexStride = 2

// Indexes inside a transaction are byte offsets: the changes of a rows event get indexes
// from the event's offset relative to the transaction's start, one stride apart, so an index
// does not depend on which tables are captured (the rows of other tables are not even
// decoded) and a split transaction resumes exactly after a change of the table list. A row
// image takes at least one byte (two for a keyed table, whose changes take two indexes), so
// the indexes of an event stay below the next event's offset; where they would not (a
// compressed rows event), later indexes continue from the last one, so they still increase.
// Snapshot rows and the Commit come after the transaction's last event.

// at moves the next index up to the offset of the event h in the transaction.
func (st *stream) at(h *replication.EventHeader) {
	if st.legacy {
		return
	}
	if rel := st.relOf(h); rel > st.txIndex {
		st.txIndex = rel
	}
}

// relOf is the offset of the event h from the transaction's start (inside a compressed
// transaction payload, whose events carry no offsets, the payload's offset plus the sizes of
// the events before).
func (st *stream) relOf(h *replication.EventHeader) uint32 {
	if st.inPayload {
		return st.payloadRel
	}
	if h.LogPos < h.EventSize || h.LogPos-h.EventSize < st.txStartPos {
		return 0
	}
	return h.LogPos - h.EventSize - st.txStartPos
}

func (st *stream) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	if st.onEvent != nil {
		st.onEvent(h, st.file)
	}
	if h.LogPos > 0 && h.Timestamp > 0 {
		st.src.read.Store(txOf(st.seq, h.LogPos))
		st.src.readTime.Store(int64(h.Timestamp))
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		name := string(e.NextLogName)
		seq, err := fileSeq(name)
		if err != nil {
			return &FatalError{Err: err}
		}
		st.file, st.seq = name, seq
	case *replication.PreviousGTIDsEvent:
		if st.rebuildGTIDs && !st.inTx {
			gs, err := parseGTIDs(st.flavor, e.GTIDSets)
			if err != nil {
				return &FatalError{Err: fmt.Errorf("binlog %s: its PREVIOUS_GTIDS event %q: %w", st.file, e.GTIDSets, err)}
			}
			st.gset, st.rebuildGTIDs = gs, false
		}
	case *replication.MariadbGTIDEvent:
		gtid := e.GTID
		if err := st.begin(ctx, h, fmt.Sprintf("%d-%d-%d", gtid.DomainID, gtid.ServerID, gtid.SequenceNumber)); err != nil {
			return err
		}
		st.began = !e.IsStandalone()
		if e.Flags&mariaFlPreparedXA != 0 {
			st.xaStart("")
		}
	case *replication.GTIDEvent:
		gtid := ""
		if !bytes.Equal(e.SID, make([]byte, len(e.SID))) { // anonymous: no GTID
			u, err := uuidString(e.SID)
			if err != nil {
				return err
			}
			gtid = u + ":" + strconv.FormatInt(e.GNO, 10)
		}
		if err := st.begin(ctx, h, gtid); err != nil {
			return err
		}
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		switch {
		case hasPrefixFold(q, "XA"):
			return st.xaQuery(ctx, h, q)
		case strings.EqualFold(q, "BEGIN"):
			if !st.inTx {
				if err := st.begin(ctx, h, ""); err != nil {
					return err
				}
			}
			st.began = true
		case hasPrefixFold(q, "ROLLBACK") && isRollbackToSavepoint(q):
			// ROLLBACK TO SAVEPOINT inside a transaction: not its end
		case hasPrefixFold(q, "COMMIT"), hasPrefixFold(q, "ROLLBACK"):
			if st.inTx {
				return st.end(ctx, h)
			}
		case !st.inTx:
			if err := st.begin(ctx, h, ""); err != nil {
				return err
			}
			st.at(h)
			if err := st.statement(ctx, string(e.Schema), q); err != nil {
				return err
			}
			return st.end(ctx, h)
		case !st.began:
			st.at(h)
			if err := st.statement(ctx, string(e.Schema), q); err != nil {
				return err
			}
			return st.end(ctx, h)
		default:
			st.at(h)
			return st.statement(ctx, string(e.Schema), q)
		}
	case *replication.XIDEvent:
		if st.inTx {
			return st.end(ctx, h)
		}
	case *replication.TableMapEvent:
		if st.snap != nil && string(e.Schema) == st.signalDB && string(e.Table) == st.signalName {
			st.signalID, st.hasSignalID = e.TableID, true
		}
		body := ev.RawData
		if len(body) >= replication.EventHeaderSize+st.csumLen {
			body = body[replication.EventHeaderSize : len(body)-st.csumLen]
		}
		var cat func(db, table string) (map[string]catalogColumn, error)
		if st.columns != nil {
			cat = func(db, table string) (map[string]catalogColumn, error) { return st.columns(ctx, db, table) }
		}
		tv, err := st.tables.version(e, body, st.flavor, cat)
		if err != nil {
			return fmt.Errorf("binlog %s:%d: table %s.%s: %w", st.file, h.LogPos, e.Schema, e.Table, err)
		}
		st.byID[e.TableID] = tv
		if tv != nil && len(tv.datetimes) > 0 {
			st.text.tableMap(e.TableID, ev.RawData)
		}
	case *replication.FormatDescriptionEvent:
		st.text.format(ev.RawData)
	case *replication.TransactionPayloadEvent:
		// MySQL binlog_transaction_compression: the transaction's events, compressed into one.
		// Their headers carry no positions; the transaction's GTID event came before.
		rel := st.relOf(h)
		for _, inner := range e.Events {
			st.inPayload, st.payloadRel = true, rel
			err := st.handle(ctx, inner)
			st.inPayload = false
			if err != nil {
				return err
			}
			rel += inner.Header.EventSize
		}
		if st.inTx {
			return fmt.Errorf("binlog %s:%d: a compressed transaction payload did not end its transaction", st.file, h.LogPos)
		}
	case *replication.RowsEvent:
		if !st.inTx {
			if err := st.begin(ctx, h, ""); err != nil {
				return err
			}
			st.began = true
		}
		if st.hasSignalID && e.TableID == st.signalID {
			st.signalRows(h, e)
			return nil
		}
		tv := st.byID[e.TableID]
		if tv == nil {
			return nil // not captured (its rows were not even decoded)
		}
		if err := st.text.fix(e, ev.RawData, tv.datetimes); err != nil {
			return fmt.Errorf("binlog %s:%d: table %s: decoding its DATETIME values again as text (to tell an invalid day from a real one) failed: %w; nothing of it was published: the session starts again from the last committed position; if this repeats at the same position, report it with the binlog file and position", st.file, h.LogPos, tv.table.QualifiedName(), err)
		}
		if st.xa != nil {
			return st.hold(h.EventType, tv, e)
		}
		return st.rows(ctx, h, h.EventType, tv, e)
	default:
		switch h.EventType {
		case replication.XA_PREPARE_LOG_EVENT:
			g, _ := e.(*replication.GenericEvent)
			return st.xaPrepared(ctx, h, g)
		case replication.HEARTBEAT_EVENT, replication.HEARTBEAT_LOG_EVENT_V2:
			if !st.inTx && st.pending != nil {
				if err := st.emitPending(ctx); err != nil {
					return err
				}
			}
			return st.flush(ctx, true)
		}
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) && (len(s) == len(prefix) || s[len(prefix)] == ' ' || s[len(prefix)] == ';')
}

func uuidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("GTID event with a %d-byte server uuid", len(b))
	}
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&0xf])
	}
	return string(out), nil
}

// begin starts a transaction at the event h (its first event).
func (st *stream) begin(ctx context.Context, h *replication.EventHeader, gtid string) error {
	if st.inTx {
		// A transaction without its end (the server crashed mid-write and the binlog was
		// truncated on recovery is never sent; this is a corrupt stream).
		return fmt.Errorf("binlog %s:%d starts a transaction while the one at %s is open; the binlog stream is inconsistent", st.file, h.LogPos-h.EventSize, describe(change.Position{Resume: st.txToken}))
	}
	if st.file == "" {
		return fmt.Errorf("binlog stream sent a transaction before naming its file (no ROTATE event)")
	}
	start := h.LogPos - h.EventSize
	raw := txOf(st.seq, start)
	if st.rebase {
		// The first transaction after a failover: from here on this server's positions are
		// shifted past the old server's committed one (see failover in source.go).
		st.rebase = false
		st.shift = 0
		if raw <= st.floor {
			st.shift = st.floor + 1 - raw
		}
	}
	tok := Token{Flavor: st.flavor, File: st.file, Pos: start, Server: st.server, Shift: st.shift, GTID: gtid}
	if st.gset != nil {
		tok.GTIDs = st.gset.String()
		if gtid != "" {
			if err := st.gset.Update(gtid); err != nil {
				return fmt.Errorf("tracking GTID %s: %w", gtid, err)
			}
		}
	}
	st.inTx, st.began, st.xa = true, false, nil
	st.hw, st.lows, st.signals = st.hw[:0], st.lows[:0], st.signals[:0]
	st.txTx, st.txStart, st.txGTID = raw+st.shift, tok.String(), gtid
	st.legacy = st.legacyTx != 0 && st.txTx == st.legacyTx
	st.txToken = st.txStart
	if len(st.xaPending) > 0 {
		st.txToken = st.xaPending[0].token // a restart must read the prepared branch again
	}
	st.txTime = time.Unix(int64(h.Timestamp), 0)
	st.txIndex, st.txEvents, st.txStartPos = 0, 0, start
	return nil
}

// end closes the transaction at the event h.
func (st *stream) end(ctx context.Context, h *replication.EventHeader) error {
	st.inTx = false
	if end := st.relOf(h) + h.EventSize; end > st.txIndex && !st.legacy {
		st.txIndex = end
	}
	for _, tok := range st.lows {
		st.src.lows.reached(tok, st.txTx) // committed: its Tx is the chunk's horizon
	}
	st.lows = st.lows[:0]
	var state []byte
	if st.snap != nil {
		var err error
		if state, err = st.snapshotAtEnd(ctx, h); err != nil {
			return err
		}
		if state == nil && st.txTx > st.resumeTx {
			state = st.snap.StateIfDirty()
		}
	}
	c := &change.Commit{Pos: change.Position{Tx: st.txTx, Index: commitIndex, Resume: st.txToken}, AckPosition: st.txTx - st.shift,
		Time: time.Unix(int64(h.Timestamp), 0), State: state}
	if st.txEvents == 0 && state == nil {
		st.pending = c
		if time.Since(st.lastEmit) >= st.src.cfg.HeartbeatInterval {
			if err := st.emitPending(ctx); err != nil {
				return err
			}
			return st.flush(ctx, false)
		}
		return nil
	}
	st.pending = nil
	if err := st.emit(ctx, change.Item{Commit: c}); err != nil {
		return err
	}
	return st.flush(ctx, false)
}

// startCommit emits a Commit without events at a new pipeline's starting point, just before
// the first transaction it can read (which starts at or after that offset).
func (st *stream) startCommit(ctx context.Context, start Token) error {
	seq, err := fileSeq(start.File)
	if err != nil {
		return &FatalError{Err: err}
	}
	tx := txOf(seq, start.Pos) - 1
	c := &change.Commit{Pos: change.Position{Tx: tx, Resume: start.String()}, AckPosition: tx, Time: time.Now()}
	if err := st.emit(ctx, change.Item{Commit: c}); err != nil {
		return err
	}
	return st.flush(ctx, false)
}

// signalRows collects the watermarks (high and low) and snapshot requests a transaction
// inserts into the signal table (id, kind, data); other kinds are ignored.
func (st *stream) signalRows(h *replication.EventHeader, e *replication.RowsEvent) {
	if op, _ := opOf(h.EventType); op != change.OpCreate {
		return
	}
	text := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case []byte:
			return string(x)
		}
		return ""
	}
	for _, row := range e.Rows {
		if len(row) < 3 {
			continue
		}
		switch text(row[1]) {
		case signalKindWatermark:
			st.hw = append(st.hw, text(row[2]))
		case signalKindLow:
			st.lows = append(st.lows, text(row[2]))
		case signalKindSnapshot:
			st.signals = append(st.signals, text(row[2]))
		}
	}
}

// snapshotAtEnd takes the transaction's snapshot requests, and emits the rows of the chunks
// whose watermark it holds, inside it (their position is its Tx). It returns the engine's
// state when a chunk was emitted.
func (st *stream) snapshotAtEnd(ctx context.Context, h *replication.EventHeader) ([]byte, error) {
	for _, b := range st.signals {
		// The binlog does not record which user inserted the row: it names the transaction.
		st.snap.HandleSignal([]byte(b), normalizeTable, "server_id", h.ServerID, "gtid", st.txGTID, "end_log_pos", h.LogPos)
	}
	st.signals = st.signals[:0]
	var state []byte
	for _, tok := range st.hw {
		m := st.snap.Take(tok)
		if m == nil {
			continue // another pipeline's, or an earlier session's
		}
		t := st.tables.snapshotTable(m.Shape.(*change.Table))
		for i := range m.Rows {
			row := &m.Rows[i]
			if st.txIndex > math.MaxUint32-indexStride {
				return nil, &FatalError{Err: fmt.Errorf("a snapshot chunk of %s has more rows than a position can index; fix: lower snapshot.chunk_size", t.QualifiedName())}
			}
			index := st.txIndex
			st.txIndex += indexStride
			ev := change.Event{Op: change.OpRead, Table: t, After: row.Vals, Err: row.Err,
				Pos: change.Position{Tx: st.txTx, Index: index, Resume: st.txToken}, CommitTime: time.Unix(int64(h.Timestamp), 0),
				SnapshotLast: m.Last && i == len(m.Rows)-1}
			st.txEvents++
			if err := st.emit(ctx, change.Item{Event: ev}); err != nil {
				return nil, err
			}
		}
		state = m.State
	}
	st.hw = st.hw[:0]
	return state, nil
}

func (st *stream) emitPending(ctx context.Context) error {
	c := st.pending
	st.pending = nil
	return st.emit(ctx, change.Item{Commit: c})
}

// rows emits the row changes of a rows event (of type typ) of a captured table.
func (st *stream) rows(ctx context.Context, h *replication.EventHeader, typ replication.EventType, tv *tableVersion, e *replication.RowsEvent) error {
	op, step := opOf(typ)
	switch {
	case typ == replication.PARTIAL_UPDATE_ROWS_EVENT:
		// Its after images may hold JSON diffs; decodeRow refuses those values one by one.
	case op == 0:
		return fmt.Errorf("binlog %s:%d: unknown rows event type %v", st.file, h.LogPos, typ)
	}
	if step == 2 && len(e.Rows)%2 != 0 {
		return fmt.Errorf("binlog %s:%d: update rows event with an odd number of row images", st.file, h.LogPos)
	}
	st.at(h)
	stride := uint32(indexStride)
	if len(tv.table.KeyColumns) == 0 {
		stride = 1 // no key, no key change; a row image may take a single byte
	}
	var vals rowImages
	for i := 0; i < len(e.Rows); i += step {
		if st.txIndex > math.MaxUint32-indexStride {
			return &FatalError{Err: fmt.Errorf("transaction at %s has more row changes of captured tables than a position can index; fix: split the transaction", describe(change.Position{Resume: st.txToken}))}
		}
		index := st.txIndex
		st.txIndex += stride
		ev := change.Event{Op: op, Table: tv.table, Pos: change.Position{Tx: st.txTx, Index: index, Resume: st.txToken},
			CommitTime: st.txTime, TxID: st.txGTID}
		if tv.err != nil {
			ev.Err = tv.err
			ev.After = undecodableRow(tv.table, e.Rows[i])
			if err := st.emit(ctx, change.Item{Event: ev}); err != nil {
				return err
			}
			continue
		}
		if vals == nil {
			vals = newRowImages(tv, len(e.Rows))
		}
		var before, after []change.Value
		var errBefore, errAfter error
		switch op {
		case change.OpCreate:
			after, errAfter = decodeRow(tv, e.Rows[i], vals.image(tv, i))
			if skips := imageSkips(e, i); len(skips) > 0 && errAfter == nil {
				errAfter = partialImage(tv, nil, after, skips)
			}
		case change.OpDelete:
			before, errBefore = decodeRow(tv, e.Rows[i], vals.image(tv, i))
			if skips := imageSkips(e, i); len(skips) > 0 && errBefore == nil {
				absent(before, skips)
			}
		case change.OpUpdate:
			before, errBefore = decodeRow(tv, e.Rows[i], vals.image(tv, i))
			after, errAfter = decodeRow(tv, e.Rows[i+1], vals.image(tv, i+1))
			if skips := imageSkips(e, i); len(skips) > 0 && errBefore == nil {
				absent(before, skips)
			}
			if skips := imageSkips(e, i+1); len(skips) > 0 && errAfter == nil {
				errAfter = partialImage(tv, before, after, skips)
			}
		}
		decErr := cmp.Or(errBefore, errAfter)
		ev.Before, ev.After, ev.Err = before, after, decErr
		if st.snap != nil && (op == change.OpDelete || !errors.Is(errAfter, errPartialImage)) {
			// A change whose new row is incomplete leaves the snapshot's row of the key in
			// place: it is whole, the change is a poison record.
			st.snap.Changed(tv.table, before, after, st.txTx)
		}
		if op == change.OpUpdate && errBefore == nil && (errAfter == nil || errors.Is(errAfter, errPartialImage)) && keyChanged(tv.table, before, after) {
			del := ev
			del.Op, del.After, del.Err = change.OpDelete, nil, nil
			if err := st.emit(ctx, change.Item{Event: del}); err != nil {
				return err
			}
			ev.Op, ev.Before = change.OpCreate, nil
			ev.Pos.Index = index + 1
		}
		if err := st.emit(ctx, change.Item{Event: ev}); err != nil {
			return err
		}
	}
	return nil
}

// statement handles a query event's statement q (run with default database db) that is not
// a transaction boundary: a TRUNCATE of a captured table is a truncate event; a data change
// a session logged as a statement (binlog_format STATEMENT or MIXED) on a captured table is
// a poison record (it carries no rows to publish); anything else (DDL) is not published.
func (st *stream) statement(ctx context.Context, db, q string) error {
	if tdb, name, ok := parseTruncate(q, db); ok {
		return st.truncate(ctx, tdb, name)
	}
	op, tables, ok := dmlTables(q, db)
	if !ok {
		return nil
	}
	for _, qn := range tables {
		if !st.tables.captured[qn] {
			continue
		}
		tdb, name, _ := strings.Cut(qn, ".")
		t, err := st.shapeOf(ctx, tdb, name)
		if err != nil || t == nil {
			return err
		}
		text := q
		if len(text) > 300 {
			text = text[:300] + "..."
		}
		index := st.txIndex
		st.txIndex += indexStride
		err = fmt.Errorf("table %s: a session wrote a change as a statement (its binlog_format was STATEMENT or MIXED; the server's global setting does not bind sessions), which carries no rows to publish: %q; "+
			"fix: make every application that writes the table keep binlog_format=ROW (remove SET SESSION binlog_format, and the privilege to set it), then re-snapshot the table to repair the rows the statement changed", qn, text)
		if err := st.emit(ctx, change.Item{Event: change.Event{Op: change.Op(op), Table: t, Err: err,
			Pos: change.Position{Tx: st.txTx, Index: index, Resume: st.txToken}, CommitTime: st.txTime, TxID: st.txGTID}}); err != nil {
			return err
		}
	}
	return nil
}

// shapeOf is the table a statement on a captured table is published with: its last shape
// seen in the binlog or, when this process has seen none (its rows were not written since
// the start), its shape in the catalog. nil: the table no longer exists (logged).
func (st *stream) shapeOf(ctx context.Context, db, name string) (*change.Table, error) {
	if tv := st.tables.byName[db+"."+name]; tv != nil && tv.err == nil {
		return tv.table, nil
	}
	cat, err := st.catalog(ctx, db, name)
	if errors.Is(err, errNoTable) {
		// Dropped since: its topic gets nothing (nor a record of the drop).
		st.src.log.Warn("a statement on a captured table that no longer exists is not published", "table", db+"."+name, "position", describe(change.Position{Resume: st.txToken}))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("binlog %s: a statement on captured table %s.%s: reading its shape from the catalog: %w", describe(change.Position{Resume: st.txToken}), db, name, err)
	}
	return st.tables.snapshotTable(cat), nil
}

// truncate emits a truncate event of the captured table db.name (a truncate has no row to
// decode, so a shape from the catalog serves).
func (st *stream) truncate(ctx context.Context, db, name string) error {
	if !st.tables.captured[db+"."+name] {
		return nil
	}
	t, err := st.shapeOf(ctx, db, name)
	if err != nil || t == nil {
		return err
	}
	index := st.txIndex
	st.txIndex += indexStride
	if st.snap != nil {
		st.snap.Truncated(t, st.txTx)
	}
	return st.emit(ctx, change.Item{Event: change.Event{Op: change.OpTruncate, Table: t,
		Pos: change.Position{Tx: st.txTx, Index: index, Resume: st.txToken}, CommitTime: st.txTime, TxID: st.txGTID}})
}

// opOf maps a rows event type to its op, and how many row images one change takes.
func opOf(t replication.EventType) (change.Op, int) {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		return change.OpCreate, 1
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.PARTIAL_UPDATE_ROWS_EVENT:
		return change.OpUpdate, 2
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return change.OpDelete, 1
	}
	return 0, 1
}

// rowImages cuts the row values of a rows event from one allocation instead of one per row
// image: the values of its rows go out together.
type rowImages []change.Value

func newRowImages(tv *tableVersion, images int) rowImages {
	return make(rowImages, images*len(tv.table.Columns))
}

// image returns the values of row image i, capacity-limited so no image reaches into the next.
func (r rowImages) image(tv *tableVersion, i int) []change.Value {
	n := len(tv.table.Columns)
	return r[i*n : (i+1)*n : (i+1)*n]
}

// decodeRow decodes one row image into vals (len(tv.table.Columns) values); the first
// undecodable value's error is returned with the row (its value kept as Undecodable), so the
// change becomes one poison record.
func decodeRow(tv *tableVersion, row []any, vals []change.Value) ([]change.Value, error) {
	t := tv.table
	if len(row) != len(t.Columns) {
		return undecodableRow(t, row), fmt.Errorf("table %s: row image has %d columns, its TABLE_MAP %d (binlog_row_image must be FULL)", t.QualifiedName(), len(row), len(t.Columns))
	}
	var first error
	for i := range row {
		v, err := DecodeBinlog(&tv.specs[i], t.Columns[i].Kind, row[i])
		if err != nil && first == nil {
			first = fmt.Errorf("table %s: %w", t.QualifiedName(), err)
		}
		vals[i] = v
	}
	return vals, first
}

// errPartialImage marks a change whose new row the binlog does not carry whole.
var errPartialImage = errors.New("the binlog row image lacks columns")

// imageSkips returns the columns row image i of e does not carry (a session with
// binlog_row_image MINIMAL or NOBLOB); go-mysql leaves them nil in the row.
func imageSkips(e *replication.RowsEvent, i int) []int {
	if i < len(e.SkippedColumns) {
		return e.SkippedColumns[i]
	}
	return nil
}

// absent marks the columns an old row image does not carry as Absent (the record's before
// is then null: encode never claims old values the database did not state).
func absent(row []change.Value, skips []int) {
	for _, c := range skips {
		if c < len(row) {
			row[c] = change.Value{State: change.Absent}
		}
	}
}

// partialImage completes a new row image that lacks the columns skips from the old one
// (before, nil for an insert) where it has them; columns neither carries are Absent and the
// change is a poison record that names them and the fix.
func partialImage(tv *tableVersion, before, after []change.Value, skips []int) error {
	var missing []string
	for _, c := range skips {
		if c >= len(after) {
			continue
		}
		if before != nil && c < len(before) && before[c].State != change.Absent {
			after[c] = before[c]
			continue
		}
		after[c] = change.Value{State: change.Absent}
		missing = append(missing, tv.table.Columns[c].Name)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("table %s: %w %s: the session that wrote the change had binlog_row_image MINIMAL or NOBLOB (the server's global setting does not bind sessions), so their values are unknown; "+
		"fix: make every application that writes the table keep binlog_row_image=FULL (remove SET SESSION binlog_row_image, and the privilege to set it), then re-snapshot the table to repair the rows changed meanwhile",
		tv.table.QualifiedName(), errPartialImage, strings.Join(missing, ", "))
}

func undecodableRow(t *change.Table, row []any) []change.Value {
	vals := make([]change.Value, len(t.Columns))
	for i := range vals {
		switch {
		case i >= len(row):
			vals[i] = change.Value{State: change.Absent}
		case isTime(row[i]):
			vals[i] = change.Value{State: change.Undecodable, Str: binlogTimeText(row[i].(time.Time))}
		default:
			vals[i] = change.Value{State: change.Undecodable, Str: fmt.Sprint(row[i])}
		}
	}
	return vals
}

func isTime(v any) bool { _, ok := v.(time.Time); return ok }

func keyChanged(t *change.Table, before, after []change.Value) bool {
	for _, k := range t.KeyColumns {
		a, b := &before[k], &after[k]
		if a.State != b.State || a.Int != b.Int || a.Uint != b.Uint || a.Float != b.Float || a.Str != b.Str || !bytes.Equal(a.Bytes, b.Bytes) {
			return true
		}
	}
	return false
}

// emit appends an item to the chunk, handing the chunk over when it is full.
func (st *stream) emit(ctx context.Context, it change.Item) error {
	if it.Commit == nil {
		st.txEvents++
	}
	if st.chunk == nil {
		st.chunk = change.GetChunk()
	}
	st.chunk = append(st.chunk, it)
	st.lastEmit = time.Now()
	if len(st.chunk) == cap(st.chunk) {
		return st.flush(ctx, true)
	}
	return nil
}

// flush hands the chunk to the pipeline. Unless wait, it only does so when the pipeline can
// take it at once: while the pipeline is busy, chunks keep filling (fewer, fuller hand-offs
// when catching up) and the next transaction end or heartbeat tries again; the source's
// select in Run flushes a chunk left behind when the binlog goes quiet.
func (st *stream) flush(ctx context.Context, wait bool) error {
	if len(st.chunk) == 0 {
		return nil
	}
	if !wait {
		select {
		case st.out <- st.chunk:
			st.chunk = nil
		default:
		}
		return nil
	}
	select {
	case st.out <- st.chunk:
		st.chunk = nil
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// normalizeTable spells a requested table as db.table, as the pipeline's tables are.
func normalizeTable(t string) string {
	if db, name, err := change.ParseTableName(t); err == nil {
		return db + "." + name
	}
	return t
}
