package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// signalKindVerify marks a row `cdcd verify` inserts into the signal table: the stream ignores
// its kind, but the transaction moves the pipeline's committed position past it.
const signalKindVerify = "verify"

// TableReader reads a captured table's rows for `cdcd verify` as a snapshot chunk does: the
// same session settings, catalog shape and text decoding, so a row gives the same values (and,
// encoded, the same `after`) as a snapshot of it. Each read is its own short consistent-snapshot
// transaction in key order.
type TableReader struct {
	w      *snapWorker
	d      *myTable
	signal string
}

// OpenTableReader connects and describes table (database.table); signal is the pipeline's
// signal table, where Mark writes.
func OpenTableReader(ctx context.Context, dsn, table, signal string) (*TableReader, error) {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := PrepareSnapshotSession(conn); err != nil {
		conn.Close()
		return nil, err
	}
	w := &snapWorker{conn: conn, descs: map[string]*myTable{}}
	db, name, err := change.ParseTableName(table)
	if err != nil {
		conn.Close()
		return nil, err
	}
	d, err := w.describe(db + "." + name)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &TableReader{w: w, d: d, signal: signal}, nil
}

// Table is the table as a snapshot's rows carry it.
func (r *TableReader) Table() *change.Table { return r.d.table }

// Close ends the connection.
func (r *TableReader) Close() { r.w.Close() }

// Estimate is the server's row estimate (0 when unknown).
func (r *TableReader) Estimate() int64 { return r.d.rows }

// Chunk reads up to limit rows whose key is after the key after (text values; nil: from the
// start) and that match where, in key order. pos is the binlog position of the read's
// snapshot (MariaDB reports it exactly; MySQL's current position is read right after the
// snapshot begins): it sees the transactions that start before pos.
func (r *TableReader) Chunk(_ context.Context, after []string, where string, limit int) ([][]change.Value, []string, uint64, error) {
	if !r.d.keyed {
		return nil, nil, 0, fmt.Errorf("table %s has no primary key usable for key order (none, or an ENUM or SET column in it): its records cannot be matched to rows", r.d.table.QualifiedName())
	}
	var conds []string
	if after != nil {
		c, err := r.w.keyCond(r.d, ">", after)
		if err != nil {
			return nil, nil, 0, err
		}
		conds = append(conds, c)
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	q := "SELECT " + r.d.selects + " FROM " + r.d.ident
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + strings.Join(r.d.keyIdents, ", ") + " LIMIT " + strconv.Itoa(limit)
	return r.read(q)
}

// Rows reads the rows with the given keys (each the text of the key columns, in key order).
func (r *TableReader) Rows(_ context.Context, keys [][]string) ([][]change.Value, uint64, error) {
	if len(keys) == 0 {
		return nil, 0, nil
	}
	tuples := make([]string, len(keys))
	for i, k := range keys {
		if len(k) != len(r.d.keyIdents) {
			return nil, 0, fmt.Errorf("key %v of %s: %d values for %d key columns", k, r.d.table.QualifiedName(), len(k), len(r.d.keyIdents))
		}
		lits := make([]string, len(k))
		for j, v := range k {
			l, err := literal(&r.d.specs[r.d.table.KeyColumns[j]], v)
			if err != nil {
				return nil, 0, fmt.Errorf("key %v of %s: %w", k, r.d.table.QualifiedName(), err)
			}
			lits[j] = l
		}
		tuples[i] = "(" + strings.Join(lits, ", ") + ")"
	}
	q := "SELECT " + r.d.selects + " FROM " + r.d.ident + " WHERE (" + strings.Join(r.d.keyIdents, ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
	rows, _, pos, err := r.read(q)
	return rows, pos, err
}

func (r *TableReader) read(q string) ([][]change.Value, []string, uint64, error) {
	name := r.d.table.QualifiedName()
	if _, err := r.w.conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, nil, 0, fmt.Errorf("beginning the read of %s: %w", name, err)
	}
	defer func() { _, _ = r.w.conn.Execute("ROLLBACK") }()
	pos, err := r.w.snapshotPos()
	if err != nil {
		file, off, merr := masterStatus(r.w.conn)
		if merr != nil {
			return nil, nil, 0, merr
		}
		seq, serr := fileSeq(file)
		if serr != nil {
			return nil, nil, 0, serr
		}
		pos = txOf(seq, off)
	}
	res, err := r.w.conn.Execute(q)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading %s: %w", name, err)
	}
	var rows [][]change.Value
	var last []string
	for _, row := range res.RowDatas {
		b := []byte(row)
		vals := make([]change.Value, len(r.d.specs))
		raws := make([][]byte, len(r.d.specs))
		for i := range r.d.specs {
			raw, isNull, m, err := gomysql.LengthEncodedString(b)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("reading %s: %w", name, err)
			}
			b = b[m:]
			if isNull {
				vals[i] = change.NullValue
				continue
			}
			if raw == nil {
				raw = []byte{}
			}
			raws[i] = raw
			v, err := DecodeText(&r.d.specs[i], r.d.table.Columns[i].Kind, raw)
			if err != nil {
				v = change.Value{State: change.Undecodable, Str: string(raw)}
			}
			vals[i] = v
		}
		rows = append(rows, vals)
		last = last[:0]
		for _, k := range r.d.table.KeyColumns {
			last = append(last, string(raws[k]))
		}
	}
	return rows, last, pos, nil
}

// Mark returns the server's binlog position and then commits a row of kind verify into the
// signal table: that transaction starts at or after the position, so once the pipeline's
// committed position reaches the position, every transaction before it is in Kafka.
func (r *TableReader) Mark(context.Context) (uint64, error) {
	file, off, err := masterStatus(r.w.conn)
	if err != nil {
		return 0, err
	}
	seq, err := fileSeq(file)
	if err != nil {
		return 0, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	if err := writeSignal(r.w.conn, r.signal, signalKindVerify, hex.EncodeToString(b[:])); err != nil {
		return 0, fmt.Errorf("writing the verify mark into %s: %w; fix: GRANT INSERT, DELETE ON the signal table TO the cdcd user", r.signal, err)
	}
	return txOf(seq, off), nil
}
