package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// The MySQL side of the snapshot engine (package snapshot).
//
// Each chunk is read in `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`. What tells
// which binlog transactions that snapshot sees depends on the consistency mode
// (source.mysql.snapshot_consistency):
//
// binlog_snapshot (MariaDB only; the default there). MariaDB reports the binlog position the
// snapshot corresponds to (Binlog_snapshot_file / Binlog_snapshot_position, taken under the
// lock that orders commits in the binlog and in InnoDB, as mariabackup and mysqldump
// --single-transaction rely on): a transaction is visible to the snapshot exactly when it
// starts before that position. So fact 1 of the engine holds (the watermark, written after the
// snapshot was taken, is after every visible transaction in the binlog), fact 3 needs no wait
// (every transaction the stream carried before it began tracking a table is before a later
// snapshot's position), and Tx order is visibility order. MySQL has no such status.
//
// watermarks (any server; the default on MySQL), the DBLog way. Before the chunk's
// transaction the worker inserts a low watermark row L (kind "low") in its own autocommit
// transaction: when the INSERT returns, L is committed. Then it reads the chunk and rolls
// back, then waits until the stream took up L and learned its Tx (lowMarks). The chunk's
// snapshot S counts a transaction as visible exactly when it starts before L in the binlog,
// and L is its horizon. Why that is right:
//   - With binlog_order_commits=ON (MySQL's default; MariaDB always commits in binlog order
//     in its group commit) InnoDB commits in binlog order, so every transaction before L in
//     the binlog committed before L did, before S began: counted visible, and visible. The
//     prerequisite checks refuse binlog_order_commits=OFF.
//   - A transaction after L is counted not visible, although S may have seen it (it committed
//     between L and S). If it changed a chunk key before the high watermark W, the row is
//     dropped. That is safe even when S saw it: with binlog_row_image=FULL the stream
//     published the change's whole row, and every change of the key that S saw precedes W
//     (fact 1), so the stream's last change of the key before W is at least as new as the
//     row (fact 2).
//   - Fact 1: a transaction becomes visible only after it is written to the binlog (InnoDB
//     commits after the binlog write), and W is written after S's SELECT ended: everything S
//     sees is before W; nothing after W can be visible to S.
//   - Fact 2: writers of one row wait for each other's commit (row locks), which follows their
//     binlog write: their binlog order is their visibility order, whichever snapshot looks.
//   - Fact 3: Prepare needs no wait: L is written after the stream began tracking the table
//     (at the session's start, or when it took up the snapshot request), so every transaction
//     the stream carried before tracking began precedes L and is visible.
//   - Fact 4: the engine prunes the tracker by the smallest horizon of the snapshots in use,
//     counting a chunk still being read at the largest horizon returned so far; that one's L
//     was committed before this chunk's L was written, so it is not after this chunk's L:
//     the bound holds.
//
// The cost of watermarks mode: one more signal row per chunk, and the wait for the stream to
// reach it (the stream's lag) before the chunk is handed to the engine.
//
// Watermarks are rows inserted into the signal table (kinds "low" and "watermark", the high
// one); on-demand requests are rows of kind "snapshot" (`cdcd snapshot`). The stream takes them
// up at their transaction's end; kinds it does not know are ignored, so versions of cdcd that
// share a signal table ignore each other's new kinds.

// Snapshot consistency modes (source.mysql.snapshot_consistency; see above).
const (
	// ConsistencyAuto is binlog_snapshot on MariaDB and watermarks on MySQL.
	ConsistencyAuto = "auto"
	// ConsistencyBinlogSnapshot reads the snapshot's binlog position (MariaDB only).
	ConsistencyBinlogSnapshot = "binlog_snapshot"
	// ConsistencyWatermarks brackets each chunk by a low watermark (any server).
	ConsistencyWatermarks = "watermarks"
)

// ResolveConsistency is the consistency mode a pipeline configured with mode uses on a
// server of flavor; binlog_snapshot on MySQL is refused with the fix.
func ResolveConsistency(mode, flavor string) (string, error) {
	switch mode {
	case "", ConsistencyAuto:
		if flavor == gomysql.MariaDBFlavor {
			return ConsistencyBinlogSnapshot, nil
		}
		return ConsistencyWatermarks, nil
	case ConsistencyBinlogSnapshot:
		if flavor != gomysql.MariaDBFlavor {
			return "", errors.New("source.mysql.snapshot_consistency is binlog_snapshot, which needs MariaDB (it reads the binlog position MariaDB reports for a consistent snapshot; MySQL reports none); fix: set snapshot_consistency: watermarks (or auto, which picks it on MySQL)")
		}
		return mode, nil
	case ConsistencyWatermarks:
		return mode, nil
	}
	return "", fmt.Errorf("source.mysql.snapshot_consistency %q is not a mode; fix: use auto, binlog_snapshot or watermarks", mode)
}

const (
	signalKindLow       = "low"       // a chunk's low watermark (watermarks mode)
	signalKindWatermark = "watermark" // a chunk's high watermark
	signalKindSnapshot  = "snapshot"  // an on-demand request
)

func signalDDL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteTable(table) + ` (
	id VARCHAR(64) NOT NULL PRIMARY KEY,
	kind VARCHAR(16) NOT NULL,
	data TEXT NOT NULL,
	created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteTable(t string) string {
	db, name, _ := strings.Cut(t, ".")
	return quoteIdent(db) + "." + quoteIdent(name)
}

// ensureSignalTable creates the signal table if it is missing.
func ensureSignalTable(conn *client.Conn, table string) error {
	if _, err := conn.Execute(signalDDL(table)); err != nil {
		return fmt.Errorf("creating the snapshot signal table %s: %w; fix: create it as cdcd would (%s) and GRANT INSERT, DELETE, SELECT on it to the cdcd user",
			table, err, strings.Join(strings.Fields(signalDDL(table)), " "))
	}
	return nil
}

// insertSignal inserts a signal row in its own (autocommit) transaction: when it returns, the
// row is committed.
func insertSignal(conn *client.Conn, table, kind, data string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	_, err := conn.Execute("INSERT INTO "+quoteTable(table)+" (id, kind, data) VALUES (?, ?, ?)", hex.EncodeToString(b[:]), kind, data)
	return err
}

// writeSignal inserts a signal row, and drops rows of every kind older than a day (a low
// watermark is inserted alone: the high one of its chunk follows and cleans up).
func writeSignal(conn *client.Conn, table, kind, data string) error {
	if err := insertSignal(conn, table, kind, data); err != nil {
		return err
	}
	_, err := conn.Execute("DELETE FROM " + quoteTable(table) + " WHERE created < NOW(6) - INTERVAL 1 DAY")
	return err
}

// DefaultSignalTable is cdcd_signal in the database of the first captured table.
func DefaultSignalTable(tables []string) string {
	if len(tables) == 0 {
		return ""
	}
	db, _, _ := strings.Cut(tables[0], ".")
	return db + ".cdcd_signal"
}

// myTable is what a worker knows of a table in this session.
type myTable struct {
	table     *change.Table
	specs     []ColumnSpec
	ident     string
	selects   string
	keyIdents []string
	// keyBounds are the expressions a chunk bound of each key column is read as: exact, in
	// the column's order, and as text that survives the snapshot state's JSON (FLOAT as
	// DOUBLE; BIT, ENUM and SET as their numbers; bytes in hex). bounds[i] >= 0 is the
	// position in a chunk's row of key column i's bound when it is not the column's value,
	// selected after the columns.
	keyBounds []string
	bounds    []int
	keyed     bool // chunked by its primary key (else read as one chunk)
	avgRow    int64
	rows      int64
	// unreadable are the columns (by index) cdcd cannot decode, with why: every row of the
	// table is a poison record naming them (the stream's changes of the table are too).
	unreadable map[int]error
	// unreadableErr is the error of each of its rows (nil: every column is readable).
	unreadableErr error
}

type snapWorker struct {
	src         *Source
	conn        *client.Conn
	consistency string // resolved: binlog_snapshot or watermarks
	descs       map[string]*myTable
}

func (s *Source) openSnapshotWorker(ctx context.Context, consistency string) (snapshot.Worker, error) {
	conn, err := Connect(ctx, s.cfg.DSN)
	if err != nil {
		return nil, err
	}
	if err := PrepareSnapshotSession(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return &snapWorker{src: s, conn: conn, consistency: consistency, descs: map[string]*myTable{}}, nil
}

// binlogOrderCommitsOff is the refusal of watermarks mode on a server that may commit out of
// binlog order.
const binlogOrderCommitsOff = "binlog_order_commits is OFF: InnoDB may then commit transactions out of binlog order, and snapshots with snapshot_consistency watermarks could miss rows; " +
	"fix: SET GLOBAL binlog_order_commits = ON and set binlog_order_commits=ON in my.cnf"

func (w *snapWorker) Close() { w.conn.Close() }

func (w *snapWorker) describe(table string) (*myTable, error) {
	if d := w.descs[table]; d != nil {
		return d, nil
	}
	db, name, _ := strings.Cut(table, ".")
	t, specs, unreadable, err := tableFromCatalog(w.conn, db, name, true)
	if err != nil {
		if errors.Is(err, errNoTable) {
			return nil, fmt.Errorf("%s: %w", table, snapshot.ErrTableGone)
		}
		return nil, err
	}
	for _, k := range t.KeyColumns {
		if err := unreadable[k]; err != nil {
			// Without its key the table cannot be chunked, nor its rows keyed: retrying reads
			// the same column.
			return nil, &FatalError{Err: fmt.Errorf("snapshot of %s: key %w; %s", table, err, unreadableFix)}
		}
	}
	d := &myTable{table: t, specs: specs, ident: quoteTable(table), keyed: len(t.KeyColumns) > 0, unreadable: unreadable}
	if len(unreadable) > 0 {
		i := slices.Min(slices.Collect(maps.Keys(unreadable)))
		d.unreadableErr = fmt.Errorf("table %s (snapshot): %w; %s", table, unreadable[i], unreadableFix)
	}
	var sel []string
	for _, s := range specs {
		c := quoteIdent(s.Name)
		if s.Type == gomysql.MYSQL_TYPE_FLOAT {
			c = "CAST(" + c + " AS DOUBLE)" // the text protocol prints FLOAT with 6 digits
		}
		sel = append(sel, c)
	}
	for _, i := range t.KeyColumns {
		id := quoteIdent(specs[i].Name)
		d.keyIdents = append(d.keyIdents, id)
		var b string
		switch {
		case specs[i].Type == gomysql.MYSQL_TYPE_ENUM || specs[i].Type == gomysql.MYSQL_TYPE_SET || specs[i].Type == gomysql.MYSQL_TYPE_BIT:
			// ENUM and SET sort by their number but compare with a string as text.
			b = "(" + id + " + 0)"
		case specs[i].Collation == collationBinary:
			b = "HEX(" + id + ")"
		}
		if b == "" {
			d.keyBounds = append(d.keyBounds, sel[i])
			d.bounds = append(d.bounds, -1)
		} else {
			d.keyBounds = append(d.keyBounds, b)
			d.bounds = append(d.bounds, len(sel))
			sel = append(sel, b)
		}
	}
	d.selects = strings.Join(sel, ", ")
	r, err := w.conn.Execute("SELECT COALESCE(TABLE_ROWS, 0), COALESCE(AVG_ROW_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, name)
	if err == nil && r.RowNumber() > 0 {
		d.rows, _ = r.GetInt(0, 0)
		d.avgRow, _ = r.GetInt(0, 1)
	}
	w.descs[table] = d
	return d, nil
}

func (w *snapWorker) Describe(_ context.Context, t *snapshot.Task) (bool, int64, error) {
	d, err := w.describe(t.Table)
	if err != nil {
		return false, 0, err
	}
	return !d.keyed, d.rows, nil
}

// Prepare has nothing to wait for in either consistency mode (fact 3, see the comment at the
// top of this file). In watermarks mode it checks that the server commits in binlog order:
// the checks at start do too, but with snapshot: never the first snapshot is a request, maybe
// long after, and the setting is dynamic. It logs the mode the table's snapshot reads with.
func (w *snapWorker) Prepare(_ context.Context, t *snapshot.Task) error {
	if w.consistency == ConsistencyWatermarks {
		vars, err := variables(w.conn, "binlog_order_commits")
		if err != nil {
			return fmt.Errorf("reading @@binlog_order_commits: %w", err)
		}
		if v, ok := vars["binlog_order_commits"]; ok && !strings.EqualFold(v, "ON") {
			return &FatalError{Err: errors.New(binlogOrderCommitsOff)}
		}
	}
	w.src.log.Info("snapshot consistency", "table", t.Table, "consistency", w.consistency, "where", t.Where)
	return nil
}

// literal renders a chunk bound of a key column (read as text by keyBounds) as a SQL literal
// of the column's own type, so the server compares it as the column: numbers as numbers (a
// quoted string would be compared as a DOUBLE, warning 1292), FLOAT and DOUBLE as the exact
// DOUBLE, BIT, ENUM and SET as their number, bytes as bytes. A bound that is not a value of
// the type is an error (a corrupt snapshot state).
func literal(s *ColumnSpec, raw string) (string, error) {
	bad := func() (string, error) {
		return "", fmt.Errorf("chunk bound %q is not a value of column %s", raw, s.Name)
	}
	switch s.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
		gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_YEAR, gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET, gomysql.MYSQL_TYPE_BIT:
		if _, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return raw, nil
		}
		if _, err := strconv.ParseUint(raw, 10, 64); err == nil {
			return raw, nil
		}
		return bad()
	case gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL:
		digits := strings.TrimPrefix(raw, "-")
		if digits == "" || strings.Trim(digits, "0123456789.") != "" || strings.Count(digits, ".") > 1 {
			return bad()
		}
		return raw, nil
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return bad()
		}
		// An exponent makes it a DOUBLE literal; the shortest form that parses back to f.
		return strconv.FormatFloat(f, 'e', -1, 64), nil
	}
	if s.Collation == collationBinary {
		if _, err := hex.DecodeString(raw); err != nil {
			return bad()
		}
		return "X'" + raw + "'", nil
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(raw) + "'", nil
}

// keyCond is the condition that a row's key is after vals (op ">") or at most vals (op
// "<="), written as the optimizer uses the primary key for: a row-constructor comparison
// (a, b) > (x, y) is not (MariaDB 10.11 scans from the table's start). For keys (a, b, c):
//
//	a >= x AND (a > x OR (a = x AND (b > y OR (b = y AND c > z))))
func (w *snapWorker) keyCond(d *myTable, op string, vals []string) (string, error) {
	if len(vals) != len(d.keyIdents) {
		return "", fmt.Errorf("chunk bound %q has %d values, the key of %s %d columns", vals, len(vals), d.ident, len(d.keyIdents))
	}
	lits := make([]string, len(vals))
	for i, v := range vals {
		l, err := literal(&d.specs[d.table.KeyColumns[i]], v)
		if err != nil {
			// Retrying reads the same state: stop. (States of versions before bounds were
			// typed hold BIT and binary key bounds as raw bytes.)
			return "", &FatalError{Err: fmt.Errorf("snapshot of %s: %w; its snapshot state is not one this version can resume; "+
				"fix: start the table's snapshot afresh: start the pipeline once without the table in tables: (its snapshot leaves the queue), then add it back with snapshot: when_needed", d.ident, err)}
		}
		lits[i] = l
	}
	strict := map[string]string{">": ">", "<=": "<"}[op]
	n := len(lits)
	cond := d.colCmp(n-1, op, lits[n-1])
	for i := n - 2; i >= 0; i-- {
		cond = d.colCmp(i, strict, lits[i]) + " OR (" + d.colCmp(i, "=", lits[i]) + " AND (" + cond + "))"
	}
	if n > 1 {
		cond = d.colCmp(0, map[string]string{">": ">=", "<=": "<="}[op], lits[0]) + " AND (" + cond + ")"
	}
	return "(" + cond + ")", nil
}

// colCmp compares key column i with a literal of literal's form, on the column itself so the
// index serves it. An ENUM's number compares by its labels: e IN ('x', 'y') is a range of the
// index where the number comparison e > 2 is not.
func (d *myTable) colCmp(i int, op, lit string) string {
	s := &d.specs[d.table.KeyColumns[i]]
	if s.Type != gomysql.MYSQL_TYPE_ENUM {
		return d.keyIdents[i] + " " + op + " " + lit
	}
	x, _ := strconv.Atoi(lit) // literal checked it
	var in []string
	// Number 0 is the empty value an invalid one is stored as; the labels count from 1.
	for n, l := range append([]string{""}, s.Values...) {
		if op == ">" && n > x || op == ">=" && n >= x || op == "<" && n < x || op == "<=" && n <= x || op == "=" && n == x {
			in = append(in, "'"+strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(l)+"'")
		}
	}
	if len(in) == 0 {
		return "FALSE"
	}
	return d.keyIdents[i] + " IN (" + strings.Join(in, ", ") + ")"
}

// chunkRows is how many rows a chunk of d plans: rows, fewer for wide rows.
func (w *snapWorker) chunkRows(d *myTable, rows int) int {
	if d.avgRow > 0 {
		rows = min(rows, max(int(w.src.cfg.Snapshot.ChunkBytes/d.avgRow), 1))
	}
	return max(rows, 1)
}

func (w *snapWorker) Plan(_ context.Context, t *snapshot.Task, rows int) (_ []string, _ bool, err error) {
	defer source.ForgetIfGone(w.descs, t.Table, &err)
	d, err := w.describe(t.Table)
	if err != nil {
		return nil, false, err
	}
	if t.ByPage || !d.keyed {
		return w.planOffsets(t, d, rows)
	}
	q, err := w.planQuery(t, d, rows)
	if err != nil {
		return nil, false, err
	}
	r, err := w.conn.Execute(q)
	if err != nil {
		return nil, false, queryError(t, "planning a chunk of", err)
	}
	if r.RowNumber() == 0 {
		return nil, true, nil
	}
	hi := make([]string, len(d.keyIdents))
	for i := range hi {
		b, _ := r.GetString(0, i)
		hi[i] = b
	}
	return hi, false, nil
}

// planOffsets plans a chunk of a table without a usable key by row offsets in the order of a
// full scan (InnoDB: the clustered index, the hidden row id of a keyless table; rows inserted
// later go to the end): about rows rows, fewer for wide ones, so chunk_max_bytes bounds it.
// Without a key the stream's changes cannot be reconciled with the rows (see Read).
func (w *snapWorker) planOffsets(t *snapshot.Task, d *myTable, rows int) ([]string, bool, error) {
	var start int64
	if len(t.Next) == 1 {
		var err error
		if start, err = strconv.ParseInt(t.Next[0], 10, 64); err != nil {
			return nil, false, fmt.Errorf("table %s: chunk bound %q is not a row offset", t.Table, t.Next)
		}
	}
	end := start + int64(w.chunkRows(d, rows))
	q := "SELECT 1 FROM " + d.ident
	conds, err := shapeConds(t, nil)
	if err != nil {
		return nil, false, err
	}
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	r, err := w.conn.Execute(q + " LIMIT 1 OFFSET " + strconv.FormatInt(end, 10))
	if err != nil {
		return nil, false, queryError(t, "planning a chunk of", err)
	}
	if r.RowNumber() == 0 {
		return nil, true, nil
	}
	return []string{strconv.FormatInt(end, 10)}, false, nil
}

// planQuery selects the bound of the chunk after t.Next: the key of its last row.
func (w *snapWorker) planQuery(t *snapshot.Task, d *myTable, rows int) (string, error) {
	var conds []string
	if t.Next != nil {
		c, err := w.keyCond(d, ">", t.Next)
		if err != nil {
			return "", err
		}
		conds = append(conds, c)
	}
	conds, err := shapeConds(t, conds)
	if err != nil {
		return "", err
	}
	q := "SELECT " + strings.Join(d.keyBounds, ", ") + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + " ORDER BY " + strings.Join(d.keyIdents, ", ") + " LIMIT 1 OFFSET " + strconv.Itoa(w.chunkRows(d, rows)-1), nil
}

func queryError(t *snapshot.Task, what string, err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch {
		case me.Code == gomysql.ER_NO_SUCH_TABLE:
			return fmt.Errorf("%s: %w", t.Table, snapshot.ErrTableGone)
		case me.Code == gomysql.ER_TABLEACCESS_DENIED_ERROR:
			return fmt.Errorf("%s %s: %w; fix: GRANT SELECT ON %s TO the cdcd user", what, t.Table, err, t.Table)
		case t.Where != "" && (me.Code == gomysql.ER_PARSE_ERROR || me.Code == gomysql.ER_BAD_FIELD_ERROR):
			return fmt.Errorf("%w %q on %s: %v", snapshot.ErrInvalidCondition, t.Where, t.Table, err)
		}
	}
	return fmt.Errorf("%s %s: %w", what, t.Table, err)
}

// snapshotPos reads the binlog position the transaction's consistent snapshot corresponds to.
func (w *snapWorker) snapshotPos() (uint64, error) {
	r, err := w.conn.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return 0, fmt.Errorf("reading the snapshot's binlog position: %w", err)
	}
	var file string
	var pos uint64
	for i := 0; i < r.RowNumber(); i++ {
		name, _ := r.GetString(i, 0)
		val, _ := r.GetString(i, 1)
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			file = val
		case "binlog_snapshot_position":
			pos, _ = strconv.ParseUint(val, 10, 32)
		}
	}
	if file == "" || pos == 0 {
		return 0, &FatalError{Err: errors.New("the server does not report the binlog position of a consistent snapshot (Binlog_snapshot_file), which snapshot_consistency binlog_snapshot needs (MariaDB reports it, MySQL does not); fix: set source.mysql.snapshot_consistency: watermarks")}
	}
	seq, err := fileSeq(file)
	if err != nil {
		return 0, err
	}
	return txOf(seq, uint32(pos)), nil
}

// Read reads a chunk in a consistent snapshot and tells which binlog transactions that
// snapshot saw (see the comment at the top of this file).
func (w *snapWorker) Read(ctx context.Context, t *snapshot.Task, c snapshot.Chunk, maxBytes int64) (_ *snapshot.Read, err error) {
	defer source.ForgetIfGone(w.descs, t.Table, &err)
	d, err := w.describe(t.Table)
	if err != nil {
		return nil, err
	}
	var low string
	var lowTx <-chan uint64
	if w.consistency == ConsistencyWatermarks {
		low = newLowToken(w.src.cfg.Pipeline)
		lowTx = w.src.lows.expect(low) // before the row exists: the stream cannot pass it unseen
		if err := insertSignal(w.conn, w.src.snapSignal, signalKindLow, low); err != nil {
			w.src.lows.forget(low)
			return nil, fmt.Errorf("writing the low watermark: %w", err)
		}
	}
	at, rd, err := w.readChunk(t, d, c, maxBytes)
	if err != nil {
		if low != "" {
			w.src.lows.forget(low)
		}
		return nil, err
	}
	if low != "" {
		// After the rollback: no read view is held while the stream catches up.
		if at, err = w.src.lows.wait(ctx, low, lowTx); err != nil {
			return nil, fmt.Errorf("waiting for the stream to reach the chunk's low watermark: %w", err)
		}
	}
	rd.Visible = func(tx uint64) bool { return tx < at }
	rd.Horizon = at
	return rd, nil
}

// chunkQuery selects a chunk's rows; limit is the most rows it returns (0: no limit).
func (w *snapWorker) chunkQuery(t *snapshot.Task, d *myTable, c snapshot.Chunk) (q string, limit int, err error) {
	var conds []string
	if d.keyed && !t.ByPage {
		for _, b := range []struct {
			op   string
			vals []string
		}{{">", c.Lo}, {"<=", c.Hi}} {
			if b.vals != nil {
				cond, err := w.keyCond(d, b.op, b.vals)
				if err != nil {
					return "", 0, err
				}
				conds = append(conds, cond)
			}
		}
		limit = 4 * w.chunkRows(d, max(w.src.cfg.Snapshot.ChunkRows, 1))
	}
	if conds, err = shapeConds(t, conds); err != nil {
		return "", 0, err
	}
	q = "SELECT " + d.selects + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	if limit > 0 {
		return q + " ORDER BY " + strings.Join(d.keyIdents, ", ") + " LIMIT " + strconv.Itoa(limit), limit, nil
	}
	// By row offsets (planOffsets): the chunk's rows, the last one open but as long as one.
	lo, hi, err := offsets(c)
	if err != nil {
		return "", 0, fmt.Errorf("table %s: %w", t.Table, err)
	}
	limit = w.chunkRows(d, max(w.src.cfg.Snapshot.ChunkRows, 1))
	if hi >= 0 {
		limit = int(hi - lo)
	}
	return q + " LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.FormatInt(lo, 10), limit, nil
}

// offsets are a chunk's row offsets (hi -1: open).
func offsets(c snapshot.Chunk) (lo, hi int64, err error) {
	hi = -1
	for _, b := range []struct {
		v []string
		p *int64
	}{{c.Lo, &lo}, {c.Hi, &hi}} {
		if len(b.v) == 1 {
			if *b.p, err = strconv.ParseInt(b.v[0], 10, 64); err != nil {
				return 0, 0, fmt.Errorf("chunk bound %q is not a row offset", b.v)
			}
		}
	}
	return lo, hi, nil
}

// readChunk reads the chunk's rows in one consistent snapshot, and in binlog_snapshot mode the
// binlog position that snapshot corresponds to.
func (w *snapWorker) readChunk(t *snapshot.Task, d *myTable, c snapshot.Chunk, maxBytes int64) (uint64, *snapshot.Read, error) {
	if _, err := w.conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return 0, nil, fmt.Errorf("beginning the chunk's transaction: %w", err)
	}
	defer func() { _, _ = w.conn.Execute("ROLLBACK") }()
	var at uint64
	if w.consistency == ConsistencyBinlogSnapshot {
		var err error
		if at, err = w.snapshotPos(); err != nil {
			return 0, nil, err
		}
	}
	q, limit, err := w.chunkQuery(t, d, c)
	if err != nil {
		return 0, nil, err
	}
	r, err := w.conn.Execute(q)
	if err != nil {
		return 0, nil, queryError(t, "reading a chunk of", err)
	}
	rd := &snapshot.Read{Shape: d.table}
	keyed := d.keyed && !t.ByPage
	var size int64
	for n, row := range r.RowDatas {
		b := []byte(row)
		vals := make([]change.Value, len(d.specs))
		raws := make([][]byte, len(d.specs))
		out := snapshot.Row{Vals: vals}
		for i := range d.specs {
			raw, isNull, m, err := gomysql.LengthEncodedString(b)
			if err != nil {
				return 0, nil, fmt.Errorf("reading a chunk of %s: %w", t.Table, err)
			}
			b = b[m:]
			size += int64(len(raw))
			if isNull {
				vals[i] = change.NullValue
				continue
			}
			if raw == nil {
				raw = []byte{}
			}
			raws[i] = raw
			if d.unreadable[i] != nil {
				vals[i] = change.Value{State: change.Undecodable, Str: string(raw)}
				continue
			}
			v, err := DecodeText(&d.specs[i], d.table.Columns[i].Kind, raw)
			if err != nil && out.Err == nil {
				out.Err = fmt.Errorf("table %s (snapshot): %w", t.Table, err)
			}
			vals[i] = v
		}
		if d.unreadableErr != nil {
			// Every row, NULL or not there: the stream's changes of the table are poison too.
			out.Err = d.unreadableErr
		}
		if d.keyed {
			out.Key = snapshot.KeyOf(vals, d.table.KeyColumns)
		}
		rd.Rows = append(rd.Rows, out)
		if !keyed && (size >= maxBytes || n+1 >= limit) && (c.Hi == nil || n+1 < limit) {
			// Ends here: the rest of the chunk's offsets (or of the table) is the next chunk.
			lo, _, _ := offsets(c)
			rd.Rest = []string{strconv.FormatInt(lo+int64(n)+1, 10)}
			break
		}
		if keyed && (size >= maxBytes || n+1 >= limit) {
			// The chunk ends here; the rest of its range is the next chunk.
			rd.Rest = make([]string, len(d.table.KeyColumns))
			for i, k := range d.table.KeyColumns {
				rd.Rest[i] = string(raws[k])
			}
			// Bounds that are not the column's value, selected after the columns.
			for j := len(d.specs); len(b) > 0; j++ {
				raw, _, m, err := gomysql.LengthEncodedString(b)
				if err != nil {
					return 0, nil, fmt.Errorf("reading a chunk of %s: %w", t.Table, err)
				}
				b = b[m:]
				if i := slices.Index(d.bounds, j); i >= 0 {
					rd.Rest[i] = string(raw)
				}
			}
			break
		}
	}
	return at, rd, nil
}

func (w *snapWorker) Watermark(_ context.Context, token string) error {
	return writeSignal(w.conn, w.src.snapSignal, signalKindWatermark, token)
}

// snapshotEngine builds the session's snapshot engine, creating the signal table if needed.
func (s *Source) snapshotEngine(conn *client.Conn, flavor string, resume change.Resume) (*snapshot.Engine, error) {
	consistency, err := ResolveConsistency(s.cfg.SnapshotConsistency, flavor)
	if err != nil {
		return nil, &FatalError{Err: err}
	}
	s.snapSignal = s.cfg.SignalTable
	if s.snapSignal == "" {
		s.snapSignal = DefaultSignalTable(s.cfg.Tables)
	}
	// With snapshot: never the table is created by the first `cdcd snapshot` request instead:
	// the stream recognises it by name whenever it appears.
	if s.cfg.Snapshot.Mode != snapshot.Never {
		if err := ensureSignalTable(conn, s.snapSignal); err != nil {
			return nil, &FatalError{Err: err}
		}
	}
	var keyless []string
	for _, t := range s.cfg.Snapshot.KeylessAccepted {
		if db, name, err := change.ParseTableName(t); err == nil {
			keyless = append(keyless, db+"."+name)
		}
	}
	c := s.cfg.Snapshot.Engine(s.cfg.Pipeline, s.tables.list, keyless)
	c.Precedes, c.Log = func(a, b uint64) bool { return a < b }, s.log.With("component", "snapshot")
	if s.cfg.SnapshotMetrics != nil {
		c.Metrics = s.cfg.SnapshotMetrics
	}
	open := func(ctx context.Context) (snapshot.Worker, error) { return s.openSnapshotWorker(ctx, consistency) }
	eng, err := snapshot.New(c, resume.Committed, resume.State, open)
	if err != nil {
		return nil, &FatalError{Err: err}
	}
	return eng, nil
}

// SetSnapshotMetrics sets where the snapshot engine reports (before Run).
func (s *Source) SetSnapshotMetrics(m snapshot.Metrics) { s.cfg.SnapshotMetrics = m }
