package postgres

import (
	"context"
	"fmt"
	"github.com/jackc/pglogrepl"
	"log/slog"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pgx/v5"
)

// VerifyPrefix is the logical message prefix of the marks `cdcd verify` writes: a
// transactional message whose commit the pipeline acknowledges like any other, so the slot's
// confirmed position passing it proves every change committed before it is in Kafka.
const VerifyPrefix = "cdcd_verify"

// TableReader reads a captured table's rows for `cdcd verify` exactly as a snapshot chunk
// does: the same session settings, the same table shape (the one a snapshot chunk's rows are
// emitted with) and the same decoding, so a row gives the same values (and, encoded, the same
// `after`) as a snapshot of it. Each read is its own short REPEATABLE READ transaction in key
// order: no lock beyond a plain SELECT's.
type TableReader struct {
	w     *snapWorker
	d     *snapTable
	table *change.Table
}

// OpenTableReader connects and describes table (schema.table).
func OpenTableReader(ctx context.Context, dsn, table string) (*TableReader, error) {
	src := &Source{cfg: Config{DSN: dsn}, log: slog.New(slog.DiscardHandler)}
	wk, err := src.openSnapshotWorker(ctx)
	if err != nil {
		return nil, err
	}
	w := wk.(*snapWorker)
	r := &TableReader{w: w}
	if err := r.describe(ctx, table); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

func (r *TableReader) describe(ctx context.Context, table string) error {
	d, err := r.w.describe(ctx, normalizeTable(table))
	if err != nil {
		return err
	}
	rels := newRelations(r.w.conn.Config().Database, []string{table}, nil)
	rels.use(r.w.conn)
	t, err := rels.snapshotTable(ctx, d.shape.msg)
	if err != nil {
		return err
	}
	r.d, r.table = d, t
	return nil
}

// Table is the table as a snapshot's rows carry it.
func (r *TableReader) Table() *change.Table { return r.table }

// Close ends the connection.
func (r *TableReader) Close() { r.w.Close() }

// Estimate is the planner's row estimate (0 when unknown).
func (r *TableReader) Estimate() int64 { return max(int64(r.d.tuples), 0) }

// Chunk reads up to limit rows whose key is after the key after (text values; nil: from the
// start) and that match where (empty: all), in key order. last is the text key of the last
// row, to pass as after next; fewer than limit rows means the table ended. lsn is the WAL
// position when the read's snapshot was taken: it sees the transactions that committed before.
func (r *TableReader) Chunk(ctx context.Context, after []string, where string, limit int) (rows [][]change.Value, last []string, lsn uint64, err error) {
	if len(r.d.keyCols) == 0 {
		return nil, nil, 0, fmt.Errorf("table %s has no primary key or replica identity index: its records have no key to compare", r.table.QualifiedName())
	}
	var conds []string
	var args [][]byte
	if after != nil {
		conds = append(conds, keyCond(r.d, ">", 1))
		args = textArgs(after)
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	q := "SELECT " + r.d.selects + " FROM " + r.d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + strings.Join(r.d.keyIdents, ", ") + " LIMIT " + strconv.Itoa(limit)
	return r.read(ctx, q, args)
}

// Rows reads the rows with the given keys (each the text of the key columns, in key order),
// and the WAL position of the read as Chunk does.
func (r *TableReader) Rows(ctx context.Context, keys [][]string) ([][]change.Value, uint64, error) {
	if len(keys) == 0 {
		return nil, 0, nil
	}
	var tuples []string
	var args [][]byte
	for _, k := range keys {
		if len(k) != len(r.d.keyIdents) {
			return nil, 0, fmt.Errorf("key %v of %s: %d values for %d key columns", k, r.table.QualifiedName(), len(k), len(r.d.keyIdents))
		}
		ps := make([]string, len(k))
		for i := range k {
			args = append(args, []byte(k[i]))
			ps[i] = "$" + strconv.Itoa(len(args))
		}
		tuples = append(tuples, "("+strings.Join(ps, ", ")+")")
	}
	q := "SELECT " + r.d.selects + " FROM " + r.d.ident + " WHERE (" + strings.Join(r.d.keyIdents, ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
	rows, _, lsn, err := r.read(ctx, q, args)
	return rows, lsn, err
}

func (r *TableReader) read(ctx context.Context, q string, args [][]byte) ([][]change.Value, []string, uint64, error) {
	tx, err := r.w.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("beginning the read of %s: %w", r.table.QualifiedName(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The first statement takes the snapshot; the WAL position it reads is past the commit
	// of every transaction the snapshot sees.
	var text string
	if err := tx.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&text); err != nil {
		return nil, nil, 0, fmt.Errorf("reading the WAL position: %w", err)
	}
	lsn, err := parseLSNText(text)
	if err != nil {
		return nil, nil, 0, err
	}
	rr := tx.Conn().PgConn().ExecParams(ctx, q, args, nil, nil, nil)
	var rows [][]change.Value
	var last []string
	for rr.NextRow() {
		vals := rr.Values()
		row := make([]change.Value, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = change.NullValue
				continue
			}
			val, err := decodeColumn(r.d.shape.msg.cols[i].name, r.d.shape.types[i], v)
			if err != nil {
				val = change.Value{State: change.Undecodable, Str: string(v)}
			}
			row[i] = val
		}
		rows = append(rows, row)
		last = last[:0]
		for _, i := range r.d.keyCols {
			last = append(last, string(vals[i]))
		}
	}
	if _, err := rr.Close(); err != nil {
		return nil, nil, 0, fmt.Errorf("reading %s: %w", r.table.QualifiedName(), err)
	}
	return rows, last, lsn, tx.Commit(ctx)
}

// Mark writes a verify mark into the log and returns its LSN: once the slot's confirmed
// position passes it, every change committed before the mark is in Kafka.
func (r *TableReader) Mark(ctx context.Context) (uint64, error) {
	var lsn string
	if err := r.w.conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, $1, '')::text", VerifyPrefix).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("writing the verify mark: %w", err)
	}
	return parseLSNText(lsn)
}

// SlotConfirmed is the slot's confirmed_flush_lsn (what the pipeline has made durable in
// Kafka); ok is false when the slot does not exist.
func (r *TableReader) SlotConfirmed(ctx context.Context, slot string) (lsn uint64, ok bool, err error) {
	var text *string
	err = r.w.conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&text)
	if err == pgx.ErrNoRows {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading slot %s: %w", slot, err)
	}
	if text == nil {
		return 0, true, nil
	}
	lsn, err = parseLSNText(*text)
	return lsn, true, err
}

// parseLSNText reads an LSN as the server prints it (0/16B3748).
func parseLSNText(s string) (uint64, error) {
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("reading LSN %q: %w", s, err)
	}
	return uint64(l), nil
}
