package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The Postgres side of the snapshot engine (package snapshot): how a chunk is read, how its
// watermark is written, and why the facts the engine's proof rests on hold here.
//
//  1. Every transaction a chunk's snapshot S sees commits in the stream before the chunk's
//     watermark W. S is taken by the chunk's first statement (REPEATABLE READ); W is a
//     transactional logical message written after the chunk's transaction ended. A transaction
//     becomes visible only after its commit record is in the WAL (RecordTransactionCommit
//     comes before ProcArrayEndTransaction), so every transaction S sees has a commit LSN
//     below W's, and pgoutput sends transactions and W in commit-LSN order.
//  2. Writers of one row wait for each other (tuple lock, or the unique index check), and a
//     waiter proceeds only once the transaction it waited for released its locks, which
//     happens after that transaction left the proc array, i.e. became visible. So a snapshot
//     that sees a later change of a key sees every earlier one.
//  3. The race the watermark alone does not close: a transaction T whose commit record is in
//     the WAL (and may already be in the stream) but which has not yet left the proc array
//     (its backend is between XLogFlush and ProcArrayEndTransaction, e.g. waiting for a
//     synchronous standby) is invisible to a snapshot taken then. If the stream passed T
//     before it began tracking the table, the tracker never saw T's change, and the chunk
//     would emit the row as it was before T, after T's change: back in time. Prepare closes
//     it: after tracking began, it takes a snapshot Z of the proc array; any such T is in
//     Z's xip (it is still in the proc array after the moment tracking began). Of those, the
//     ones the stream already carried (the recent-transaction ring) or whose commit the commit
//     log already records are waited out until they leave the proc array; the others have not
//     written their commit yet (clog is set right after the flush; the ring covers a backend
//     that was slow in between) and so reach the stream after tracking began. Every snapshot
//     a chunk takes later therefore sees every transaction the stream carried before tracking.
//  4. xids: the tracker keeps the stream's 32-bit xids; S gives 64-bit xid8 values whose low
//     32 bits compare modulo 2^32 (all live xids are within 2^31 of each other). A change
//     whose xid precedes S's xmin is visible to S and to every later snapshot (xmin never
//     goes back), so the engine forgets it once no snapshot in use is older.
const (
	snapshotWatermarkPrefix = "cdcd_snapshot"
	// SignalPrefix is the logical message prefix of on-demand snapshot requests
	// (`cdcd snapshot`): a transactional message whose content is a snapshot.Signal in JSON.
	SignalPrefix = "cdcd_signal"
)

// xidPrecedes compares 32-bit xids modulo 2^32, as PostgreSQL does for normal xids.
func xidPrecedes(a, b uint64) bool { return int32(uint32(a)-uint32(b)) < 0 }

// xidRing remembers the xids of the last transactions the stream carried (fact 3). add runs
// once per transaction on the stream's path and only stores; has, run once per transaction
// in a snapshot's xip list when a table's snapshot starts, scans.
type xidRing struct {
	mu   sync.Mutex
	ring [1 << 16]uint32
	n    int
}

func (r *xidRing) add(x uint32) {
	r.mu.Lock()
	r.ring[r.n%len(r.ring)] = x
	r.n++
	r.mu.Unlock()
}

func (r *xidRing) has(x uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.ring[:min(r.n, len(r.ring))], x)
}

// pgSnapshot is a parsed pg_current_snapshot().
type pgSnapshot struct {
	xmin, xmax uint32
	xip        map[uint32]bool
	xip8       []uint64
}

func parseSnapshot(s string) (*pgSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("unexpected snapshot %q", s)
	}
	xmin, err1 := strconv.ParseUint(parts[0], 10, 64)
	xmax, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("unexpected snapshot %q: %w", s, err)
	}
	p := &pgSnapshot{xmin: uint32(xmin), xmax: uint32(xmax), xip: map[uint32]bool{}}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("unexpected snapshot %q: %w", s, err)
			}
			p.xip[uint32(v)] = true
			p.xip8 = append(p.xip8, v)
		}
	}
	return p, nil
}

// visible reports whether the snapshot sees a committed transaction with xid tx.
func (p *pgSnapshot) visible(tx uint64) bool {
	switch {
	case xidPrecedes(tx, uint64(p.xmin)):
		return true
	case !xidPrecedes(tx, uint64(p.xmax)):
		return false
	}
	return !p.xip[uint32(tx)]
}

// snapShape is a table as a chunk's snapshot saw it, in the form of a Relation message.
type snapShape struct {
	msg   relationMsg
	types []*typeInfo
}

// snapTable is what a worker knows of a table in this session.
type snapTable struct {
	ident     string // quoted schema.table
	shape     *snapShape
	keyCols   []int // indexes into shape.msg.cols of the chunking key (the record key)
	keyIdents []string
	selects   string
	rowFilter string // the publication's row filter, "" if none (shaping.go)
	estimated int64
	pages     int64
	tuples    float64
}

type snapWorker struct {
	src   *Source
	conn  *pgx.Conn
	types *typeCatalog
	descs map[string]*snapTable
}

func (s *Source) openSnapshotWorker(ctx context.Context) (snapshot.Worker, error) {
	cfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, &FatalError{Err: fmt.Errorf("parsing dsn: %w", err)}
	}
	// The same session settings as the replication connection: rows are decoded from the
	// same text output, so a row gives the same values from a snapshot and from the stream.
	for k, v := range map[string]string{"application_name": "cdcd_snapshot", "DateStyle": "ISO, YMD", "IntervalStyle": "iso_8601",
		"TimeZone": "UTC", "extra_float_digits": "3"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres for the snapshot: %w", err)
	}
	return &snapWorker{src: s, conn: conn, types: newTypeCatalog(conn), descs: map[string]*snapTable{}}, nil
}

func (w *snapWorker) Close() { w.conn.Close(context.Background()) }

func isUndefinedTable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "42P01" || pg.Code == "3F000")
}

// queryError names what failed and, where it can, the fix.
func queryError(t *snapshot.Task, what string, err error) error {
	var pg *pgconn.PgError
	switch {
	case isUndefinedTable(err):
		return fmt.Errorf("%s: %w", t.Table, snapshot.ErrTableGone)
	case errors.As(err, &pg) && pg.Code == "42501":
		return fmt.Errorf("%s %s: %w; fix: GRANT SELECT ON %s TO the role cdcd connects as", what, t.Table, err, t.Table)
	case t.Where != "" && errors.As(err, &pg) && strings.HasPrefix(pg.Code, "42"):
		return fmt.Errorf("%w %q on %s: %v", snapshot.ErrInvalidCondition, t.Where, t.Table, err)
	}
	return fmt.Errorf("%s %s: %w", what, t.Table, err)
}

// describe reads the table's shape as pgoutput would describe it (columns in attnum order
// without dropped and generated ones, replica identity flags) and its chunking key.
func (w *snapWorker) describe(ctx context.Context, table string) (*snapTable, error) {
	if d := w.descs[table]; d != nil {
		return d, nil
	}
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		return nil, err
	}
	d := &snapTable{ident: pgx.Identifier{schema, name}.Sanitize()}
	var oid uint32
	var ident string
	err = w.conn.QueryRow(ctx, `SELECT c.oid, c.relreplident::text, c.reltuples::float8, c.relpages::int8
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, schema, name).
		Scan(&oid, &ident, &d.tuples, &d.pages)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", table, snapshot.ErrTableGone)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the catalog of %s: %w", table, err)
	}
	rows, err := w.conn.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod,
			coalesce(a.attnum = ANY ((SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = a.attrelid
				AND CASE WHEN $2 = 'i' THEN i.indisreplident ELSE i.indisprimary END LIMIT 1)::int2[]), false)
		FROM pg_attribute a
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, oid, ident)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	msg := relationMsg{id: oid, namespace: schema, name: name, identity: ident[0]}
	var inIndex []bool
	for rows.Next() {
		var c relationCol
		var key bool
		if err := rows.Scan(&c.name, &c.typ, &c.typmod, &key); err != nil {
			rows.Close()
			return nil, err
		}
		inIndex = append(inIndex, key)
		msg.cols = append(msg.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	var pk []string
	if ident == "f" {
		if pk, err = primaryKey(ctx, w.conn, oid); err != nil {
			return nil, fmt.Errorf("reading the primary key of %s: %w", table, err)
		}
	}
	// Only what the publication publishes (shaping.go).
	pub, err := readPublishedShape(ctx, w.conn, w.src.cfg.Publication, schema, name)
	if err != nil {
		return nil, err
	}
	if msg.cols, inIndex, err = pub.applyColumnList(table, w.src.cfg.Publication, msg.cols, inIndex, pk); err != nil {
		return nil, err
	}
	d.rowFilter = pub.filter
	shape := &snapShape{msg: msg, types: make([]*typeInfo, len(msg.cols))}
	for i := range shape.msg.cols {
		c := &shape.msg.cols[i]
		switch ident {
		case "f":
			c.key, c.flags = true, 1
		case "d", "i":
			c.key = inIndex[i]
			if c.key {
				c.flags = 1
			}
		}
		_, ti, err := w.types.resolveColumn(ctx, c.name, c.typ, c.typmod)
		if err != nil {
			return nil, &FatalError{Err: fmt.Errorf("table %s: %w; fix: change the column's type or stop capturing the table", table, err)}
		}
		shape.types[i] = ti
	}
	// The record key: replica identity columns, or the primary key under FULL (as the stream
	// keys the table, see relations).
	if ident == "f" {
		for _, n := range pk {
			if i := slices.IndexFunc(msg.cols, func(c relationCol) bool { return c.name == n }); i >= 0 {
				d.keyCols = append(d.keyCols, i)
			}
		}
	} else if ident != "n" {
		for i, c := range shape.msg.cols {
			if c.key {
				d.keyCols = append(d.keyCols, i)
			}
		}
	}
	d.shape = shape
	var sel []string
	for _, c := range msg.cols {
		sel = append(sel, pgx.Identifier{c.name}.Sanitize())
	}
	d.selects = strings.Join(sel, ", ")
	for _, i := range d.keyCols {
		d.keyIdents = append(d.keyIdents, pgx.Identifier{msg.cols[i].name}.Sanitize())
	}
	w.descs[table] = d
	return d, nil
}

func (w *snapWorker) Describe(ctx context.Context, t *snapshot.Task) (bool, int64, error) {
	d, err := w.describe(ctx, t.Table)
	if err != nil {
		return false, 0, err
	}
	est := int64(d.tuples)
	if d.tuples < 0 && d.pages < 10000 {
		// Never analyzed (PostgreSQL 14+ says -1): small tables are counted.
		if err := w.conn.QueryRow(ctx, "SELECT count(*) FROM "+d.ident).Scan(&est); err != nil {
			est = 0
		}
	}
	return len(d.keyCols) == 0, max(est, 0), nil
}

// Prepare waits out transactions the stream may have carried before it tracked the table
// although a snapshot could still miss them (fact 3).
func (w *snapWorker) Prepare(ctx context.Context, t *snapshot.Task) error {
	var text string
	if err := w.conn.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&text); err != nil {
		return fmt.Errorf("reading the current snapshot: %w", err)
	}
	z, err := parseSnapshot(text)
	if err != nil {
		return err
	}
	if len(z.xip8) == 0 {
		return nil
	}
	var wait []uint64
	rows, err := w.conn.Query(ctx, "SELECT x::text::int8, coalesce(pg_xact_status(x), '') FROM unnest($1::text[]::xid8[]) AS x", xidTexts(z.xip8))
	if err != nil {
		return fmt.Errorf("reading transaction status: %w", err)
	}
	for rows.Next() {
		var x int64
		var status string
		if err := rows.Scan(&x, &status); err != nil {
			rows.Close()
			return err
		}
		if status != "in progress" || w.src.recent.has(uint32(x)) {
			wait = append(wait, uint64(x))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading transaction status: %w", err)
	}
	started, warned := time.Now(), false
	for len(wait) > 0 {
		if err := w.conn.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&text); err != nil {
			return fmt.Errorf("reading the current snapshot: %w", err)
		}
		now, err := parseSnapshot(text)
		if err != nil {
			return err
		}
		wait = slices.DeleteFunc(wait, func(x uint64) bool { return !now.xip[uint32(x)] })
		if len(wait) == 0 {
			break
		}
		if !warned && time.Since(started) > 10*time.Second {
			warned = true
			w.src.log.Warn("snapshot waits for committed transactions to become visible (a synchronous standby that does not answer?)",
				"table", t.Table, "xids", xidTexts(wait))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func xidTexts(x []uint64) []string {
	out := make([]string, len(x))
	for i, v := range x {
		out[i] = strconv.FormatUint(v, 10)
	}
	return out
}

// keyCond is "(k1, k2) > ($1, $2)" (op and the first parameter number given).
func keyCond(d *snapTable, op string, first int) string {
	ps := make([]string, len(d.keyIdents))
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(first+i)
	}
	return "(" + strings.Join(d.keyIdents, ", ") + ") " + op + " (" + strings.Join(ps, ", ") + ")"
}

func textArgs(v []string) [][]byte {
	out := make([][]byte, len(v))
	for i, s := range v {
		out[i] = []byte(s)
	}
	return out
}

func (w *snapWorker) Plan(ctx context.Context, t *snapshot.Task, rows int) (_ []string, _ bool, err error) {
	defer source.ForgetIfGone(w.descs, t.Table, &err)
	d, err := w.describe(ctx, t.Table)
	if err != nil {
		return nil, false, err
	}
	if t.ByPage {
		return w.planPages(ctx, d, t, rows)
	}
	var conds []string
	var args [][]byte
	if t.Next != nil {
		conds = append(conds, keyCond(d, ">", 1))
		args = textArgs(t.Next)
	}
	if conds, args, err = d.shapeConds(t, conds, args); err != nil {
		return nil, false, err
	}
	q := "SELECT " + strings.Join(d.keyIdents, ", ") + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + strings.Join(d.keyIdents, ", ") + " OFFSET " + strconv.Itoa(max(rows-1, 0)) + " LIMIT 1"
	res := w.conn.PgConn().ExecParams(ctx, q, args, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, false, queryError(t, "planning a chunk of", res.Err)
	}
	if len(res.Rows) == 0 {
		return nil, true, nil
	}
	hi := make([]string, len(res.Rows[0]))
	for i, v := range res.Rows[0] {
		hi[i] = string(v)
	}
	return hi, false, nil
}

// planPages plans a page range of a table without a usable key: about rows rows, by the
// table's rows per page, and at most ChunkBytes of pages. The last range is open, so pages
// added while the snapshot runs are read too. A partitioned table is planned by its
// partitions (the parent has no pages): a range of pages is read from every partition, so
// it spans the largest one and holds about as many pages as partitions times its length.
func (w *snapWorker) planPages(ctx context.Context, d *snapTable, t *snapshot.Task, rows int) ([]string, bool, error) {
	var start int64
	if len(t.Next) == 1 {
		start, _ = strconv.ParseInt(t.Next[0], 10, 64)
	}
	var leaves, pages, relPages int64
	var tuples float64
	// A table that is not partitioned is its own only leaf (pg_partition_tree has no rows).
	if err := w.conn.QueryRow(ctx, `SELECT count(*), coalesce(max(pg_relation_size(p.relid)), 0) / current_setting('block_size')::int8,
			coalesce(sum(greatest(c.relpages, 0)), 0)::int8, coalesce(sum(greatest(c.reltuples, 0)), 0)::float8
		FROM (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf UNION SELECT $1::regclass
			WHERE NOT EXISTS (SELECT FROM pg_partition_tree($1::regclass))) p JOIN pg_class c ON c.oid = p.relid`, d.ident).
		Scan(&leaves, &pages, &relPages, &tuples); err != nil {
		return nil, false, queryError(t, "planning a chunk of", err)
	}
	leaves = max(leaves, 1)
	perPage := 100.0
	if relPages > 0 && tuples > 0 {
		perPage = max(tuples/float64(relPages), 1)
	}
	n := max(int64(float64(rows)/perPage/float64(leaves)), 1)
	n = min(n, max(w.src.cfg.Snapshot.ChunkBytes/8192/leaves, 1))
	if start+n >= pages {
		return nil, true, nil
	}
	return []string{strconv.FormatInt(start+n, 10)}, false, nil
}

func (w *snapWorker) Read(ctx context.Context, t *snapshot.Task, c snapshot.Chunk, maxBytes int64) (rd *snapshot.Read, err error) {
	defer source.ForgetIfGone(w.descs, t.Table, &err)
	d, err := w.describe(ctx, t.Table)
	if err != nil {
		return nil, err
	}
	tx, err := w.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning the chunk's transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The transaction's first statement takes its snapshot S.
	var text string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&text); err != nil {
		return nil, fmt.Errorf("reading the chunk's snapshot: %w", err)
	}
	snap, err := parseSnapshot(text)
	if err != nil {
		return nil, err
	}
	rd = &snapshot.Read{Visible: snap.visible, Horizon: uint64(snap.xmin), Shape: d.shape}
	if t.ByPage {
		err = w.readPages(ctx, tx, d, t, c, maxBytes, rd)
	} else {
		err = w.readKeyed(ctx, tx, d, t, c, maxBytes, rd)
	}
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("ending the chunk's transaction: %w", err)
	}
	return rd, nil
}

// readKeyed reads chunk c of a keyed table in key order into rd, stopping after the row with
// which the rows read hold maxBytes (or 4 chunk sizes of rows): rd.Rest is then its key.
func (w *snapWorker) readKeyed(ctx context.Context, tx pgx.Tx, d *snapTable, t *snapshot.Task, c snapshot.Chunk, maxBytes int64, rd *snapshot.Read) error {
	var conds []string
	var args [][]byte
	if c.Lo != nil {
		conds = append(conds, keyCond(d, ">", len(args)+1))
		args = append(args, textArgs(c.Lo)...)
	}
	if c.Hi != nil {
		conds = append(conds, keyCond(d, "<=", len(args)+1))
		args = append(args, textArgs(c.Hi)...)
	}
	limit := 4 * max(w.src.cfg.Snapshot.ChunkRows, 1)
	conds, args, err := d.shapeConds(t, conds, args)
	if err != nil {
		return err
	}
	q := "SELECT " + d.selects + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + strings.Join(d.keyIdents, ", ") + " LIMIT " + strconv.Itoa(limit)
	rr := tx.Conn().PgConn().ExecParams(ctx, q, args, nil, nil, nil)
	var size int64
	var slab valueSlab
	for rr.NextRow() {
		vals := rr.Values()
		row, n := decodeSnapRow(d, t.Table, vals, &slab)
		size += n
		rd.Rows = append(rd.Rows, row)
		if size >= maxBytes || len(rd.Rows) >= limit {
			rd.Rest = make([]string, 0, len(d.keyCols))
			for _, i := range d.keyCols {
				rd.Rest = append(rd.Rest, string(vals[i]))
			}
			break
		}
	}
	if _, err := rr.Close(); err != nil {
		return queryError(t, "reading a chunk of", err)
	}
	return nil
}

// valueSlab hands out the value slices of a chunk's rows from shared allocations: the rows
// of a chunk are published, and dropped, together.
type valueSlab struct{ free []change.Value }

// slabRows is how many rows' values one allocation holds.
const slabRows = 256

// take returns n zeroed values of their own: capped, so an append to them reallocates.
func (s *valueSlab) take(n int) []change.Value {
	if len(s.free) < n {
		s.free = make([]change.Value, n*slabRows)
	}
	v := s.free[:n:n]
	s.free = s.free[n:]
	return v
}

// decodeSnapRow decodes one row of d's columns; n is its size in the result.
func decodeSnapRow(d *snapTable, table string, vals [][]byte, slab *valueSlab) (row snapshot.Row, n int64) {
	row = snapshot.Row{Vals: slab.take(len(vals))}
	for i, v := range vals {
		n += int64(len(v))
		if v == nil {
			row.Vals[i] = change.NullValue
			continue
		}
		val, err := decodeColumn(d.shape.msg.cols[i].name, d.shape.types[i], v)
		if err != nil {
			val = change.Value{State: change.Undecodable, Str: string(v)}
			if row.Err == nil {
				row.Err = fmt.Errorf("table %s (snapshot): %w", table, err)
			}
		}
		row.Vals[i] = val
	}
	if len(d.keyCols) > 0 {
		row.Key = snapshot.KeyOf(row.Vals, d.keyCols)
	}
	return row, n
}

// readPages reads chunk c of a table without a usable key, a range of pages. A plain table's
// bounds are a page ("12": from its first tuple) or a tuple ("12,5") where a read stopped
// early. A partitioned table is read partition after partition (in the order of their oids),
// each over the same pages; where a read stops early in one of them, the bound names the
// range, the partition and the tuple (partBound): the chunk before it holds the partitions
// before that one and that one up to the tuple, the chunk after it the rest.
func (w *snapWorker) readPages(ctx context.Context, tx pgx.Tx, d *snapTable, t *snapshot.Task, c snapshot.Chunk, maxBytes int64, rd *snapshot.Read) error {
	leaves, err := partitionLeaves(ctx, tx, d.ident)
	if err != nil {
		return queryError(t, "reading a chunk of", err)
	}
	for _, b := range [][]string{c.Lo, c.Hi} {
		if _, ok := parsePartBound(b); len(b) > 1 && (!ok || len(leaves) == 0) {
			// A bound no read of this table makes (or of a table no longer partitioned):
			// reading on would read the wrong rows.
			return &FatalError{Err: fmt.Errorf("snapshot of %s: page-range bound %q is not one this version can resume for this table; "+
				"fix: start the table's snapshot afresh: start the pipeline once without the table in tables: (its snapshot leaves the queue), then add it back with snapshot: when_needed", t.Table, b)}
		}
	}
	var size int64
	if len(leaves) == 0 {
		var lo, hi string
		if len(c.Lo) == 1 {
			lo = c.Lo[0]
		}
		if len(c.Hi) == 1 {
			hi = c.Hi[0]
		}
		rest, err := readPageRange(ctx, tx, d, t, d.ident, lo, hi, maxBytes, &size, rd)
		if rest != "" {
			rd.Rest = []string{rest}
		}
		return err
	}
	var rng, from, to partBound // from, to: oid 0 when the chunk starts (ends) at a page
	if len(c.Lo) == 1 {
		rng.lo = c.Lo[0]
	}
	if len(c.Hi) == 1 {
		rng.hi = c.Hi[0]
	}
	if b, ok := parsePartBound(c.Lo); ok {
		rng, from = b, b
	}
	if b, ok := parsePartBound(c.Hi); ok {
		rng, to = b, b
	}
	for _, l := range leaves {
		if from.oid != 0 && l.oid < from.oid || to.oid != 0 && l.oid > to.oid {
			continue
		}
		lo, hi := rng.lo, rng.hi
		if l.oid == from.oid {
			lo = from.tid
		}
		if l.oid == to.oid {
			hi = to.tid
		}
		rest, err := readPageRange(ctx, tx, d, t, l.ident, lo, hi, maxBytes, &size, rd)
		if err != nil {
			return err
		}
		if rest != "" {
			rd.Rest = partBound{lo: rng.lo, hi: rng.hi, oid: l.oid, tid: rest}.bound()
			return nil
		}
	}
	return nil
}

// readPageRange reads relation rel's tuples in [lo, hi) (pages or tuples; "" is open) into rd,
// size counting the bytes of the chunk's rows so far. Once those hold maxBytes it stops before
// the next tuple and returns it ("12,5"; "" when it read the whole range), provided the
// tuples came in ctid order from the range's first page on (a TID range scan; not a
// sequential scan that joined another one midway): TOASTed values are not in the pages the
// range counted.
func readPageRange(ctx context.Context, tx pgx.Tx, d *snapTable, t *snapshot.Task, rel, lo, hi string, maxBytes int64, size *int64, rd *snapshot.Read) (string, error) {
	var conds []string
	var args [][]byte
	if lo != "" {
		conds = append(conds, "ctid >= ('('||$1||')')::tid")
		args = append(args, tidArg(lo))
	}
	if hi != "" {
		conds = append(conds, fmt.Sprintf("ctid < ('('||$%d||')')::tid", len(args)+1))
		args = append(args, tidArg(hi))
	}
	conds, args, err := d.shapeConds(t, conds, args)
	if err != nil {
		return "", err
	}
	q := "SELECT " + d.selects + ", ctid::text FROM " + rel
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rr := tx.Conn().PgConn().ExecParams(ctx, q, args, nil, nil, nil)
	ncols := len(d.shape.msg.cols)
	var loPage int64
	if lo != "" {
		p, _, _ := strings.Cut(lo, ",")
		loPage, _ = strconv.ParseInt(p, 10, 64)
	}
	var prevTid [2]int64
	ordered, first := true, true
	rest := ""
	var slab valueSlab
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) <= ncols {
			break // cannot happen: the query selects ncols columns and the ctid
		}
		tid, ok := parseTid(vals[ncols])
		if first {
			ordered = ok && tid[0] == loPage
		} else {
			ordered = ordered && ok && (tid[0] > prevTid[0] || tid[0] == prevTid[0] && tid[1] > prevTid[1])
		}
		first, prevTid = false, tid
		if ordered && *size >= maxBytes && len(rd.Rows) > 0 {
			rest = strconv.FormatInt(tid[0], 10) + "," + strconv.FormatInt(tid[1], 10)
			break
		}
		row, n := decodeSnapRow(d, t.Table, vals[:ncols], &slab)
		*size += n
		rd.Rows = append(rd.Rows, row)
	}
	if _, err := rr.Close(); err != nil {
		return "", queryError(t, "reading a chunk of", err)
	}
	return rest, nil
}

// leafPartition is a partition that holds rows (a leaf of the partition tree).
type leafPartition struct {
	oid   uint32
	ident string // quoted schema.table
}

// partitionLeaves lists the leaf partitions of a partitioned table in the order of their
// oids; none for a table that is not partitioned.
func partitionLeaves(ctx context.Context, tx pgx.Tx, ident string) ([]leafPartition, error) {
	rows, err := tx.Query(ctx, `SELECT c.oid, format('%I.%I', n.nspname, c.relname)
		FROM pg_partition_tree($1::regclass) p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.isleaf AND c.relkind <> 'p' ORDER BY c.oid`, ident)
	if err != nil {
		return nil, err
	}
	var out []leafPartition
	for rows.Next() {
		var l leafPartition
		if err := rows.Scan(&l.oid, &l.ident); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// partBoundTag marks a page-range bound of a partitioned table (partBound).
const partBoundTag = "partition"

// partBound is where a read of a partitioned table's page range [lo, hi) stopped: at tuple
// tid of the partition with oid oid. As a chunk bound it is
// ["partition", lo, hi, oid, tid], lo and hi "" when open.
type partBound struct {
	lo, hi string
	oid    uint32
	tid    string
}

func (b partBound) bound() []string {
	return []string{partBoundTag, b.lo, b.hi, strconv.FormatUint(uint64(b.oid), 10), b.tid}
}

func parsePartBound(s []string) (partBound, bool) {
	if len(s) != 5 || s[0] != partBoundTag {
		return partBound{}, false
	}
	oid, err := strconv.ParseUint(s[3], 10, 32)
	if err != nil || oid == 0 || s[4] == "" {
		return partBound{}, false
	}
	return partBound{lo: s[1], hi: s[2], oid: uint32(oid), tid: s[4]}, true
}

// tidArg is a page-range bound as the text of a tid: "12" is "12,0".
func tidArg(b string) []byte {
	if !strings.Contains(b, ",") {
		b += ",0"
	}
	return []byte(b)
}

// parseTid parses a ctid's text "(12,5)".
func parseTid(b []byte) (tid [2]int64, ok bool) {
	p, o, found := strings.Cut(strings.Trim(string(b), "()"), ",")
	var err1, err2 error
	tid[0], err1 = strconv.ParseInt(p, 10, 64)
	tid[1], err2 = strconv.ParseInt(o, 10, 64)
	return tid, found && err1 == nil && err2 == nil
}

// Watermark writes W: a transactional message, so its commit orders it in the stream and
// flushes it at once.
func (w *snapWorker) Watermark(ctx context.Context, token string) error {
	_, err := w.conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", snapshotWatermarkPrefix, token)
	return err
}
