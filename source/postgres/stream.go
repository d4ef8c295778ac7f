package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// stream is the state of one replication session; only Run's goroutine touches it.
type stream struct {
	src  *Source
	conn *pgconn.PgConn
	out  chan<- []change.Item
	rels *relations
	bufs *streamBuffers
	snap *snapshot.Engine

	// Watermark tokens and snapshot signals of the transaction being decoded, handled at its
	// commit (see snapshotAtCommit).
	hw      []string
	signals [][]byte

	chunk []change.Item
	// A chunk holding a complete transaction is handed over chunkLinger after that commit
	// arrived (or when full), so small transactions travel together.
	pendingCommit bool
	pendingSince  time.Time
	// the receive context, reused while its deadline stays the same
	rctx      context.Context
	rcancel   context.CancelFunc
	rdeadline time.Time

	// the transaction being emitted
	inTx    bool
	txLSN   uint64
	txTime  time.Time
	txXid   uint32
	txIndex uint32

	inStream  bool
	streamXid uint32

	// Acknowledgement state (see statusLSN and idleCommit): the end LSN of the last Commit
	// emitted (a transaction's or an idle position's), the walsender's sent position from its
	// latest keepalive, the flush position last reported (never lowered: not every server
	// version refuses to move confirmed_flush back), when the last idle Commit was emitted,
	// and the commit LSN of the pipeline's resume position (idle Commits stay after it).
	emittedAck uint64
	sentLSN    uint64
	reported   uint64
	statusAt   time.Time // when the last status update was sent (see statusDue)
	idleAt     time.Time
	resumeTx   uint64

	row rowMsg
}

// eagerStatusGap is the least time between status updates sent because the pipeline
// acknowledged more (see keepalive).
const eagerStatusGap = 250 * time.Millisecond

// chunkLinger bounds how long a committed transaction waits in a chunk for more to join it.
const chunkLinger = time.Millisecond

func (st *stream) run(ctx context.Context) error {
	st.chunk = change.GetChunk()
	// On the way out, report the last durable position once more, so a restart or a deploy
	// does not replay what the pipeline already committed.
	defer func() {
		if st.rcancel != nil {
			st.rcancel()
		}
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.src.cfg.DrainTimeout)
		defer cancel()
		_ = st.sendStatus(c, false)
	}()
	for {
		now := time.Now()
		if !now.Before(st.statusDue()) {
			if err := st.idleCommit(ctx, now, false); err != nil {
				return err
			}
			if err := st.sendStatus(ctx, false); err != nil {
				return err
			}
		}
		deadline := st.statusDue()
		if st.pendingCommit {
			due := st.pendingSince.Add(chunkLinger)
			if !now.Before(due) {
				if err := st.flush(ctx); err != nil {
					return err
				}
				continue
			}
			if due.Before(deadline) {
				deadline = due
			}
		}
		if st.rctx == nil || !deadline.Equal(st.rdeadline) {
			if st.rcancel != nil {
				st.rcancel()
			}
			st.rctx, st.rcancel = context.WithDeadline(ctx, deadline)
			st.rdeadline = deadline
		}
		msg, err := st.conn.ReceiveMessage(st.rctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receiving from slot %s: %w", st.src.cfg.Slot, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parsing keepalive: %w", err)
				}
				if err := st.keepalive(ctx, uint64(ka.ServerWALEnd), ka.ReplyRequested); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parsing XLogData: %w", err)
				}
				st.noteWALEnd(uint64(xld.ServerWALEnd))
				if err := st.handle(ctx, xld.WALData, false); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("slot %s: %w", st.src.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return fmt.Errorf("slot %s: the server ended replication", st.src.cfg.Slot)
		}
	}
}

func (st *stream) noteWALEnd(lsn uint64) {
	if lsn > st.src.serverWALEnd.Load() {
		st.src.serverWALEnd.Store(lsn)
	}
}

// keepalive handles the walsender's keepalive: its WAL end is the walsender's sent position
// (what it has decoded and sent, or skipped), unlike XLogData's, which is the server's WAL end.
// An idle stream moves its position there through the pipeline. The keepalive is answered at
// once when the server asks for a reply (a fast shutdown waits for the confirmation, and asks
// again after every reply until it has it), and when the pipeline acknowledged more since the
// last status update, at most once per eagerStatusGap, so the slot follows Kafka closely. A
// walsender that catches up sends a keepalive each time it waits for WAL, and it wakes to
// process every update: answering each one after every Kafka commit kept it busier on a
// loaded host (bench/README.md, "The backlog's autovacuum, and the 5k×10 stall").
func (st *stream) keepalive(ctx context.Context, sent uint64, reply bool) error {
	st.sentLSN = max(st.sentLSN, sent)
	st.noteWALEnd(sent)
	now := time.Now()
	if err := st.idleCommit(ctx, now, reply); err != nil {
		return err
	}
	if reply || (st.src.acked.Load() > st.reported && !now.Before(st.statusAt.Add(eagerStatusGap))) {
		return st.sendStatus(ctx, false)
	}
	return nil
}

// idle reports whether nothing the server sent is buffered or in flight: no transaction is
// open or partly streamed, the chunk is empty, and the pipeline acknowledged every Commit
// emitted.
func (st *stream) idle() bool {
	return !st.inTx && !st.inStream && len(st.chunk) == 0 && len(st.bufs.byXid) == 0 &&
		st.src.acked.Load() >= st.emittedAck
}

// idleCommit moves an idle stream over WAL that holds nothing for the pipeline (other tables'
// and databases' changes, aborted transactions): it emits a Commit without events at the
// walsender's sent position S, which the pipeline commits with its offsets record and then
// acknowledges. Only then does a status update confirm S (see statusLSN), so the slot never
// moves past what an offsets record in Kafka says, and a restart finds no gap; and a fast
// shutdown of the server, which waits until its client confirms everything sent, waits for
// one Kafka commit.
//
// Its position is (S-1, 0), and it is strictly between every transaction emitted before and
// every one after:
//   - S is the end of a record the walsender decoded: its sent position (the end of the last
//     record decoded), or, for an empty transaction skipped under synchronous replication,
//     that transaction's commit end. Every commit record decoded before S ends at or before
//     S, and its transaction was sent before the keepalive that carries S (pgoutput sends a
//     transaction while decoding its commit record, on the same connection). A WAL record
//     is at least 24 bytes (its header), so that commit's LSN, a transaction's Tx, is below
//     S-1. An earlier idle Commit has a smaller S.
//   - Every later commit record starts at or after S, the end of a record already decoded.
//   - A transaction in progress at S commits later, so it is after S; the slot keeps its
//     restart_lsn before such a transaction's start and sends it whole after a reconnect.
//
// It is emitted once per new S, only when the stream is idle (an idle Commit in flight makes
// it busy until acknowledged), at most once per status interval unless the server asked for
// a reply, and never at or before the resume position. A transaction the pipeline published
// only in part is sent again after that position, and the pipeline acknowledges a Commit its
// committed state covers at once, writing nothing: an idle Commit there would move the slot
// past the offsets record's ack_lsn.
func (st *stream) idleCommit(ctx context.Context, now time.Time, force bool) error {
	s := st.sentLSN
	if s <= st.emittedAck || s <= st.src.acked.Load() || s-1 <= st.resumeTx || !st.idle() {
		return nil
	}
	if !force && now.Before(st.idleAt.Add(st.src.cfg.StatusInterval)) {
		return nil
	}
	st.emittedAck, st.idleAt = s, now
	return st.emit(ctx, change.Item{Commit: &change.Commit{Pos: change.Position{Tx: s - 1}, AckPosition: s, Time: now}})
}

// statusLSN is the position the next status update reports as written, flushed and applied:
// the last position the pipeline acknowledged as durable in Kafka (a transaction's end, or an
// idle position, see idleCommit), never what was merely received or sent. It never goes back.
func (st *stream) statusLSN() uint64 {
	return max(st.src.acked.Load(), st.reported)
}

// statusDue is when the next status update is due, answered keepalive or not.
func (st *stream) statusDue() time.Time {
	return st.statusAt.Add(st.src.cfg.StatusInterval)
}

func (st *stream) sendStatus(ctx context.Context, reply bool) error {
	lsn := pglogrepl.LSN(st.statusLSN())
	err := pglogrepl.SendStandbyStatusUpdate(ctx, st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn, ReplyRequested: reply})
	if err != nil {
		return fmt.Errorf("sending standby status to slot %s: %w", st.src.cfg.Slot, err)
	}
	st.reported = uint64(lsn)
	st.statusAt = time.Now()
	if m := st.src.cfg.Metrics; m != nil {
		if end := st.src.serverWALEnd.Load(); end > uint64(lsn) {
			m.SourceLagBytes.WithLabelValues(st.src.cfg.Pipeline).Set(float64(end - uint64(lsn)))
		} else {
			m.SourceLagBytes.WithLabelValues(st.src.cfg.Pipeline).Set(0)
		}
	}
	return nil
}

// emit queues an item. A full chunk is handed over at once; a chunk with a complete
// transaction within chunkLinger.
func (st *stream) emit(ctx context.Context, it change.Item) error {
	st.chunk = append(st.chunk, it)
	if it.Commit != nil && !st.pendingCommit {
		st.pendingCommit, st.pendingSince = true, time.Now()
	}
	if len(st.chunk) >= change.ChunkSize {
		return st.flush(ctx)
	}
	if it.Commit != nil {
		st.offer()
	}
	return nil
}

// offer hands the chunk over at a transaction's end if the pipeline can take it now; when it
// cannot (it is busy with earlier chunks), the chunk keeps growing until it is full or
// chunkLinger has passed, and is then handed over as flush does.
func (st *stream) offer() {
	select {
	case st.out <- st.chunk:
		st.chunk = change.GetChunk()
		st.pendingCommit = false
	default:
	}
}

// flush hands the chunk over, answering the server while the pipeline applies backpressure so
// that wal_sender_timeout never fires on a slow Kafka.
func (st *stream) flush(ctx context.Context) error {
	if len(st.chunk) == 0 {
		return nil
	}
	for {
		wait := time.Until(st.statusDue())
		if wait <= 0 {
			if err := st.sendStatus(ctx, false); err != nil {
				return err
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case st.out <- st.chunk:
			t.Stop()
			st.chunk = change.GetChunk()
			st.pendingCommit = false
			return nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// handle processes one pgoutput message. replay is true while emitting a streamed
// transaction's buffered messages at its commit.
func (st *stream) handle(ctx context.Context, data []byte, replay bool) error {
	if len(data) == 0 {
		return nil
	}
	typ := data[0]
	if st.inStream && !replay {
		switch typ {
		case 'R', 'Y', 'I', 'U', 'D', 'T', 'M':
			return st.bufs.add(st.streamXid, data)
		}
	}
	r := &reader{b: data[1:]}
	var err error
	switch typ {
	case 'B':
		b := parseBegin(r)
		st.inTx, st.txLSN, st.txTime, st.txXid, st.txIndex = true, b.finalLSN, b.time, b.xid, 0
		st.hw, st.signals = st.hw[:0], st.signals[:0]
	case 'C':
		c := parseCommit(r)
		if r.err == nil {
			err = st.commit(ctx, c)
		}
	case 'R':
		m := parseRelation(r, replay)
		if r.err == nil {
			err = st.rels.apply(ctx, m)
		}
	case 'Y', 'O':
		// Type and origin messages: types are resolved from the catalog.
	case 'I', 'U', 'D':
		parseRow(r, typ, replay, &st.row)
		if r.err == nil {
			err = st.rowEvents(ctx, &st.row)
		}
	case 'T':
		m := parseTruncate(r, replay)
		if r.err == nil {
			err = st.truncate(ctx, m)
		}
	case 'M':
		// Logical messages carry no row change: a heartbeat transaction is an empty
		// transaction whose Commit moves the acknowledged position. A snapshot chunk's
		// watermark and an on-demand snapshot request take effect at their commit.
		m := parseMessage(r, replay)
		if r.err == nil && m.transactional {
			switch m.prefix {
			case snapshotWatermarkPrefix:
				st.hw = append(st.hw, string(m.content))
			case SignalPrefix:
				st.signals = append(st.signals, slices.Clone(m.content))
			}
		}
	case 'S':
		st.inStream, st.streamXid = true, parseStreamStart(r).xid
	case 'E':
		parseStreamStop(r)
		st.inStream = false
	case 'c':
		c := parseStreamCommit(r)
		if r.err == nil {
			err = st.streamCommit(ctx, c)
		}
	case 'A':
		a := parseStreamAbort(r)
		xid, sub := a.xid, a.subXid
		if r.err == nil {
			if xid == sub {
				st.bufs.drop(xid)
			} else {
				st.bufs.abortSub(xid, sub)
			}
		}
	default:
		return &FatalError{Err: fmt.Errorf("unknown pgoutput message type %q: this server speaks a pgoutput protocol cdcd does not know; fix: upgrade cdcd", typ)}
	}
	if r.err != nil {
		return fmt.Errorf("decoding pgoutput message %q: %w", typ, r.err)
	}
	return err
}

func (st *stream) commit(ctx context.Context, c commitMsg) error {
	st.src.recent.add(st.txXid)
	var state []byte
	if st.snap != nil {
		var err error
		if state, err = st.snapshotAtCommit(ctx); err != nil {
			return err
		}
		// The snapshot's progress rides on Commits the pipeline publishes; those at or
		// before the resume position are dropped as covered, so it waits for a later one.
		if state == nil && c.commitLSN > st.resumeTx {
			state = st.snap.StateIfDirty()
		}
	}
	st.inTx = false
	st.emittedAck = max(st.emittedAck, c.endLSN)
	return st.emit(ctx, change.Item{Commit: &change.Commit{
		Pos:         change.Position{Tx: c.commitLSN, Index: st.txIndex},
		AckPosition: c.endLSN,
		Time:        c.time,
		State:       state,
	}})
}

// snapshotAtCommit takes the transaction's snapshot requests, and emits the rows of the
// chunks whose watermark it is, inside it: their position is the watermark's commit LSN.
// It returns the engine's state when a chunk was emitted (the Commit carries it).
func (st *stream) snapshotAtCommit(ctx context.Context) ([]byte, error) {
	for _, b := range st.signals {
		// PostgreSQL does not record which role wrote a logical message: the log names the
		// transaction.
		st.snap.HandleSignal(b, normalizeTable, "xid", st.txXid, "commit_lsn", pglogrepl.LSN(st.txLSN).String())
	}
	st.signals = st.signals[:0]
	var state []byte
	for _, tok := range st.hw {
		m := st.snap.Take(tok)
		if m == nil {
			continue // another pipeline's, or an earlier session's
		}
		shape := m.Shape.(*snapShape)
		t, err := st.rels.snapshotTable(ctx, shape.msg)
		if err != nil {
			return nil, err
		}
		for i := range m.Rows {
			row := &m.Rows[i]
			index, err := st.nextRow()
			if err != nil {
				return nil, err
			}
			ev := change.Event{Op: change.OpRead, Table: t, After: row.Vals, Pos: change.Position{Tx: st.txLSN, Index: index},
				CommitTime: st.txTime, SnapshotLast: m.Last && i == len(m.Rows)-1}
			if row.Err != nil {
				ev.Err = &DecodeError{Table: t.QualifiedName(), Pos: ev.Pos, Err: row.Err}
			}
			if err := st.emit(ctx, change.Item{Event: ev}); err != nil {
				return nil, err
			}
		}
		state = m.State
	}
	st.hw = st.hw[:0]
	return state, nil
}

func (st *stream) streamCommit(ctx context.Context, c commitMsg) error {
	st.inTx, st.txLSN, st.txTime, st.txXid, st.txIndex = true, c.commitLSN, c.time, c.xid, 0
	err := st.bufs.replay(c.xid, func(msg []byte) error { return st.handle(ctx, msg, true) })
	st.bufs.drop(c.xid)
	if err != nil {
		return err
	}
	return st.commit(ctx, c)
}

// The in-transaction index is a function of the WAL alone, so a transaction split across
// Kafka transactions resumes exactly even if the captured tables changed in between:
//
//   - Every row change the server sends counts, captured or not. Which changes pgoutput sends
//     is decided by the publication as the historic catalog snapshot of each change saw it,
//     so rewriting the publication at a later start does not change what an earlier
//     transaction sends on replay (TestPostgresPublicationMembershipIsHistoric proves this on
//     the server). Changes of aborted subtransactions are never counted (pgoutput does not
//     send them outside streaming; a streamed transaction's are dropped before replay).
//   - Each row change owns indexStride indexes: its event takes the first; a key change's
//     create (after the delete of the old key) takes the second. Whether an update changes
//     the key therefore never shifts later indexes. A truncate counts once per relation.
//
// Indexes are thus sparse; a Commit's Index is the next free one.
const indexStride = 2

// nextRow reserves the indexes of the next row change of the transaction.
func (st *stream) nextRow() (uint32, error) {
	if st.txIndex > math.MaxUint32-indexStride {
		return 0, &FatalError{Err: fmt.Errorf("transaction %d at %s has more than %d row changes, more than a position can index; fix: split the transaction", st.txXid, pglogrepl.LSN(st.txLSN), math.MaxUint32/indexStride)}
	}
	i := st.txIndex
	st.txIndex += indexStride
	return i, nil
}

func (st *stream) event(op change.Op, t *change.Table, index uint32) change.Event {
	return change.Event{Op: op, Table: t, Pos: change.Position{Tx: st.txLSN, Index: index},
		CommitTime: st.txTime, TxID: strconv.FormatUint(uint64(st.txXid), 10)}
}

func (st *stream) rowEvents(ctx context.Context, m *rowMsg) error {
	rel, err := st.rels.get(m.rel)
	if err != nil {
		return err
	}
	index, err := st.nextRow()
	if err != nil {
		return err
	}
	if !rel.captured {
		return nil
	}
	t := rel.table
	var before, after []change.Value
	var decErr error
	if m.oldKind != 0 {
		if before, err = st.decodeTuple(rel, m.old, nil, m.oldKind == 'K', index); err != nil {
			if !isDecodeError(err) {
				return err
			}
			decErr = err
		}
	}
	if m.op != 'D' {
		var old []change.Value
		if m.oldKind == 'O' {
			old = before
		}
		if after, err = st.decodeTuple(rel, m.new, old, false, index); err != nil {
			if !isDecodeError(err) {
				return err
			}
			decErr = cmp.Or(decErr, err)
		}
	}
	if st.snap != nil {
		st.snap.Changed(t, before, after, uint64(st.txXid))
	}
	if decErr != nil {
		// An undecodable value is never part of a key comparison or split: one poison event.
		op := map[byte]change.Op{'I': change.OpCreate, 'U': change.OpUpdate, 'D': change.OpDelete}[m.op]
		ev := st.event(op, t, index)
		ev.Before, ev.After, ev.Err = before, after, decErr
		return st.emit(ctx, change.Item{Event: ev})
	}
	switch m.op {
	case 'I':
		ev := st.event(change.OpCreate, t, index)
		ev.After = after
		return st.emit(ctx, change.Item{Event: ev})
	case 'D':
		ev := st.event(change.OpDelete, t, index)
		ev.Before = before
		return st.emit(ctx, change.Item{Event: ev})
	}
	if m.oldKind != 0 && keyChanged(t, m.old, m.new) {
		// A primary-key change is a delete of the old key and a create of the new one.
		del := st.event(change.OpDelete, t, index)
		del.Before = before
		if err := st.emit(ctx, change.Item{Event: del}); err != nil {
			return err
		}
		cr := st.event(change.OpCreate, t, index+1)
		cr.After = after
		return st.emit(ctx, change.Item{Event: cr})
	}
	ev := st.event(change.OpUpdate, t, index)
	if m.oldKind == 'O' {
		ev.Before = before
	}
	ev.After = after
	return st.emit(ctx, change.Item{Event: ev})
}

func keyChanged(t *change.Table, old, new []tupleCol) bool {
	for _, i := range t.KeyColumns {
		if i >= len(old) || i >= len(new) {
			return false
		}
		o, n := old[i], new[i]
		if n.kind == 'u' || o.kind == 'u' {
			continue
		}
		if o.kind != n.kind || string(o.data) != string(n.data) {
			return true
		}
	}
	return false
}

// decodeTuple decodes a tuple into values. Unchanged TOAST values are taken from old when the
// old row is complete (REPLICA IDENTITY FULL), and are marked Unchanged otherwise — never
// NULL. In a key-only old tuple ('K'), the non-key columns are Absent, not NULL.
func (st *stream) decodeTuple(rel *relation, cols []tupleCol, old []change.Value, keyOnly bool, index uint32) (_ []change.Value, decErr error) {
	t := rel.table
	if len(cols) != len(t.Columns) {
		return nil, fmt.Errorf("table %s: tuple has %d columns, its Relation message %d", t.QualifiedName(), len(cols), len(t.Columns))
	}
	vals := make([]change.Value, len(cols))
	for i, c := range cols {
		switch c.kind {
		case 'n':
			if keyOnly && !t.Columns[i].Key {
				vals[i] = change.Value{State: change.Absent}
			} else {
				vals[i] = change.NullValue
			}
		case 'u':
			if old != nil && old[i].State == change.Present || old != nil && old[i].State == change.Null {
				vals[i] = old[i]
			} else {
				vals[i] = change.Value{State: change.Unchanged}
				if m := st.src.cfg.Metrics; m != nil {
					m.ToastUnchanged.WithLabelValues(st.src.cfg.Pipeline, t.QualifiedName()).Inc()
				}
			}
		case 't':
			v, err := decodeColumn(t.Columns[i].Name, rel.types[i], c.data)
			if err != nil {
				// Keep the raw text and go on: the pipeline decides (stop or dead-letter).
				v = change.Value{State: change.Undecodable, Str: string(c.data)}
				if decErr == nil {
					decErr = &DecodeError{Table: t.QualifiedName(), Pos: change.Position{Tx: st.txLSN, Index: index}, Err: err}
				}
			}
			vals[i] = v
		default:
			return nil, fmt.Errorf("table %s column %s: binary tuple data was not requested", t.QualifiedName(), t.Columns[i].Name)
		}
	}
	return vals, decErr
}

func isDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// DecodeError is a column value the source cannot decode: the change cannot be represented.
type DecodeError struct {
	Table string
	Pos   change.Position
	Err   error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("table %s at %s: %v", e.Table, e.Pos, e.Err)
}
func (e *DecodeError) Unwrap() error { return e.Err }

// Undecodable marks the error for the dead-letter classification.
func (e *DecodeError) Undecodable() bool { return true }

func (st *stream) truncate(ctx context.Context, m truncateMsg) error {
	for _, id := range m.rels {
		rel, err := st.rels.get(id)
		if err != nil {
			return err
		}
		index, err := st.nextRow()
		if err != nil {
			return err
		}
		if !rel.captured {
			continue
		}
		if st.snap != nil {
			st.snap.Truncated(rel.table, uint64(st.txXid))
		}
		if err := st.emit(ctx, change.Item{Event: st.event(change.OpTruncate, rel.table, index)}); err != nil {
			return err
		}
	}
	return nil
}
