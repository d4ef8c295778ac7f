package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// The MySQL side of the snapshot engine (package snapshot).
//
// A chunk is read in `START TRANSACTION WITH CONSISTENT SNAPSHOT`. MariaDB reports the binlog
// position that snapshot corresponds to (Binlog_snapshot_file / Binlog_snapshot_position, taken
// under the lock that orders commits in the binlog and in InnoDB, as mariabackup and mysqldump
// --single-transaction rely on): a transaction is visible to the snapshot exactly when it
// starts before that position. So fact 1 of the engine holds (the watermark, written after the
// snapshot was taken, is after every visible transaction in the binlog), fact 3 needs no wait
// (every transaction the stream carried before it began tracking a table is before a later
// snapshot's position), and Tx order is visibility order. MySQL itself has no such status
// variable: snapshots of MySQL (not MariaDB) pipelines are refused.
//
// The watermark is a row inserted into the signal table (kind "watermark"); on-demand requests
// are rows of kind "snapshot" (`cdcd snapshot`). The stream takes them up at their
// transaction's end.

// SnapshotConfig configures the source's snapshots.
type SnapshotConfig struct {
	Mode        snapshot.Mode
	Parallelism int
	ChunkRows   int
	ChunkBytes  int64
	Progress    func([]snapshot.Progress)
	// SignalTable is db.table of the table cdcd writes watermarks and requests into (created
	// if missing). Default: cdcd_signal in the first captured table's database.
	SignalTable string
}

const (
	signalKindWatermark = "watermark"
	signalKindSnapshot  = "snapshot"
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

// writeSignal inserts a signal row in its own transaction, and drops rows older than a day.
func writeSignal(conn *client.Conn, table, kind, data string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if _, err := conn.Execute("INSERT INTO "+quoteTable(table)+" (id, kind, data) VALUES (?, ?, ?)", hex.EncodeToString(b[:]), kind, data); err != nil {
		return err
	}
	_, err := conn.Execute("DELETE FROM " + quoteTable(table) + " WHERE created < NOW(6) - INTERVAL 1 DAY")
	return err
}

// RequestSnapshot asks pipeline to snapshot table (rows matching where, all if empty) through
// the signal table; it checks the table and the condition first and returns the request id.
func RequestSnapshot(ctx context.Context, dsn, signalTable, pipeline, table, where string) (string, error) {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	q := "SELECT 1 FROM " + quoteTable(table)
	if where != "" {
		q += " WHERE (" + where + ")"
	}
	if _, err := conn.Execute(q + " LIMIT 0"); err != nil {
		return "", fmt.Errorf("checking %s with the condition %q: %w; fix: name an existing table and give a condition the server accepts in a WHERE clause", table, where, err)
	}
	if err := ensureSignalTable(conn, signalTable); err != nil {
		return "", err
	}
	id, content := snapshot.NewSignal(pipeline, table, where)
	if err := writeSignal(conn, signalTable, signalKindSnapshot, string(content)); err != nil {
		return "", fmt.Errorf("writing the snapshot request into %s: %w", signalTable, err)
	}
	return id, nil
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
	keyed     bool // chunked by its primary key (else read as one chunk)
	avgRow    int64
	rows      int64
}

type snapWorker struct {
	src   *Source
	conn  *client.Conn
	descs map[string]*myTable
}

func (s *Source) openSnapshotWorker(ctx context.Context) (snapshot.Worker, error) {
	conn, err := Connect(ctx, s.cfg.DSN)
	if err != nil {
		return nil, err
	}
	if err := PrepareSnapshotSession(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return &snapWorker{src: s, conn: conn, descs: map[string]*myTable{}}, nil
}

func (w *snapWorker) Close() { w.conn.Close() }

func (w *snapWorker) describe(table string) (*myTable, error) {
	if d := w.descs[table]; d != nil {
		return d, nil
	}
	db, name, _ := strings.Cut(table, ".")
	t, specs, err := TableFromCatalog(w.conn, db, name)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, fmt.Errorf("%s: %w", table, snapshot.ErrTableGone)
		}
		return nil, err
	}
	d := &myTable{table: t, specs: specs, ident: quoteTable(table), keyed: len(t.KeyColumns) > 0}
	var sel []string
	for _, s := range specs {
		c := quoteIdent(s.Name)
		if s.Type == gomysql.MYSQL_TYPE_FLOAT {
			c = "CAST(" + c + " AS DOUBLE)" // the text protocol prints FLOAT with 6 digits
		}
		sel = append(sel, c)
	}
	d.selects = strings.Join(sel, ", ")
	for _, i := range t.KeyColumns {
		d.keyIdents = append(d.keyIdents, quoteIdent(specs[i].Name))
		if specs[i].Type == gomysql.MYSQL_TYPE_ENUM || specs[i].Type == gomysql.MYSQL_TYPE_SET {
			d.keyed = false // ENUM and SET sort by index but compare as text: no keyset paging
		}
	}
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

// Prepare has nothing to wait for on MariaDB (see the comment at the top of this file).
func (w *snapWorker) Prepare(context.Context, *snapshot.Task) error { return nil }

// literal renders a key value read as text back as SQL that compares like the column.
func literal(s *ColumnSpec, raw string) string {
	switch s.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
		gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_YEAR:
		if _, err := strconv.ParseFloat(raw, 64); err == nil {
			return raw
		}
	}
	if s.Collation == collationBinary {
		return "X'" + hex.EncodeToString([]byte(raw)) + "'"
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(raw) + "'"
}

func (w *snapWorker) keyCond(d *myTable, op string, vals []string) string {
	lits := make([]string, len(vals))
	for i, v := range vals {
		lits[i] = literal(&d.specs[d.table.KeyColumns[i]], v)
	}
	return "(" + strings.Join(d.keyIdents, ", ") + ") " + op + " (" + strings.Join(lits, ", ") + ")"
}

// chunkRows is how many rows a chunk of d plans: rows, fewer for wide rows.
func (w *snapWorker) chunkRows(d *myTable, rows int) int {
	if d.avgRow > 0 {
		rows = min(rows, max(int(w.src.cfg.Snapshot.ChunkBytes/d.avgRow), 1))
	}
	return max(rows, 1)
}

func (w *snapWorker) Plan(_ context.Context, t *snapshot.Task, rows int) ([]string, bool, error) {
	d, err := w.describe(t.Table)
	if err != nil {
		return nil, false, err
	}
	if t.ByPage || !d.keyed {
		return nil, true, nil // one chunk
	}
	var conds []string
	if t.Next != nil {
		conds = append(conds, w.keyCond(d, ">", t.Next))
	}
	if t.Where != "" {
		conds = append(conds, "("+t.Where+")")
	}
	q := "SELECT " + strings.Join(d.keyIdents, ", ") + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + strings.Join(d.keyIdents, ", ") + " LIMIT 1 OFFSET " + strconv.Itoa(w.chunkRows(d, rows)-1)
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
		return 0, &FatalError{errors.New("the server does not report the binlog position of a consistent snapshot (Binlog_snapshot_file): snapshots of MySQL pipelines need MariaDB in this version of cdcd; fix: set snapshot: never for the pipeline")}
	}
	seq, err := fileSeq(file)
	if err != nil {
		return 0, err
	}
	return txOf(seq, uint32(pos)), nil
}

func (w *snapWorker) Read(_ context.Context, t *snapshot.Task, c snapshot.Chunk, maxBytes int64) (*snapshot.Read, error) {
	d, err := w.describe(t.Table)
	if err != nil {
		return nil, err
	}
	if _, err := w.conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, fmt.Errorf("beginning the chunk's transaction: %w", err)
	}
	defer func() { _, _ = w.conn.Execute("ROLLBACK") }()
	at, err := w.snapshotPos()
	if err != nil {
		return nil, err
	}
	var conds []string
	limit := 0
	if d.keyed && !t.ByPage {
		if c.Lo != nil {
			conds = append(conds, w.keyCond(d, ">", c.Lo))
		}
		if c.Hi != nil {
			conds = append(conds, w.keyCond(d, "<=", c.Hi))
		}
		limit = 4 * w.chunkRows(d, max(w.src.cfg.Snapshot.ChunkRows, 1))
	}
	if t.Where != "" {
		conds = append(conds, "("+t.Where+")")
	}
	q := "SELECT " + d.selects + " FROM " + d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	if limit > 0 {
		q += " ORDER BY " + strings.Join(d.keyIdents, ", ") + " LIMIT " + strconv.Itoa(limit)
	}
	r, err := w.conn.Execute(q)
	if err != nil {
		return nil, queryError(t, "reading a chunk of", err)
	}
	rd := &snapshot.Read{Visible: func(tx uint64) bool { return tx < at }, Horizon: at, Shape: d.table}
	var size int64
	for n, row := range r.RowDatas {
		b := []byte(row)
		vals := make([]change.Value, len(d.specs))
		raws := make([][]byte, len(d.specs))
		out := snapshot.Row{Vals: vals}
		for i := range d.specs {
			raw, isNull, m, err := gomysql.LengthEncodedString(b)
			if err != nil {
				return nil, fmt.Errorf("reading a chunk of %s: %w", t.Table, err)
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
			v, err := DecodeText(&d.specs[i], d.table.Columns[i].Kind, raw)
			if err != nil && out.Err == nil {
				out.Err = fmt.Errorf("table %s (snapshot): %w", t.Table, err)
			}
			vals[i] = v
		}
		if d.keyed {
			out.Key = snapshot.KeyOf(vals, d.table.KeyColumns)
		}
		rd.Rows = append(rd.Rows, out)
		if limit > 0 && (size >= maxBytes || n+1 >= limit) {
			// The chunk ends here; the rest of its range is the next chunk.
			rd.Rest = make([]string, len(d.table.KeyColumns))
			for i, k := range d.table.KeyColumns {
				rd.Rest[i] = string(raws[k])
			}
			break
		}
	}
	return rd, nil
}

func (w *snapWorker) Watermark(_ context.Context, token string) error {
	return writeSignal(w.conn, w.src.snapSignal, signalKindWatermark, token)
}

// snapshotEngine builds the session's snapshot engine, creating the signal table if needed.
func (s *Source) snapshotEngine(conn *client.Conn, flavor string, resume change.Resume) (*snapshot.Engine, error) {
	s.snapSignal = s.cfg.Snapshot.SignalTable
	if s.snapSignal == "" {
		s.snapSignal = DefaultSignalTable(s.cfg.Tables)
	}
	// With snapshot: never the table is created by the first `cdcd snapshot` request instead:
	// the stream recognises it by name whenever it appears.
	if s.cfg.Snapshot.Mode != snapshot.Never {
		if err := ensureSignalTable(conn, s.snapSignal); err != nil {
			return nil, &FatalError{err}
		}
	}
	if flavor != gomysql.MariaDBFlavor && s.cfg.Snapshot.Mode != snapshot.Never && !resume.Committed {
		return nil, &FatalError{errors.New("snapshots of MySQL pipelines need MariaDB in this version of cdcd (MySQL reports no binlog position for a consistent snapshot); fix: set snapshot: never for the pipeline")}
	}
	c := snapshot.Config{Pipeline: s.cfg.Pipeline, Mode: s.cfg.Snapshot.Mode, Tables: s.tables.list,
		Parallelism: s.cfg.Snapshot.Parallelism, ChunkRows: s.cfg.Snapshot.ChunkRows, ChunkBytes: s.cfg.Snapshot.ChunkBytes,
		Precedes: func(a, b uint64) bool { return a < b }, Log: s.log.With("component", "snapshot"), Progress: s.cfg.Snapshot.Progress}
	if s.cfg.SnapshotMetrics != nil {
		c.Metrics = s.cfg.SnapshotMetrics
	}
	eng, err := snapshot.New(c, resume.Committed, resume.State, s.openSnapshotWorker)
	if err != nil {
		return nil, &FatalError{err}
	}
	return eng, nil
}

// SetSnapshotMetrics sets where the snapshot engine reports (before Run).
func (s *Source) SetSnapshotMetrics(m snapshot.Metrics) { s.cfg.SnapshotMetrics = m }
