package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pgx/v5"
)

// relation is the decoder's view of one table as the latest Relation message described it.
type relation struct {
	table    *change.Table
	types    []*typeInfo // per column
	identity byte
	captured bool // listed in the pipeline's tables
}

// relations caches Relation messages by relation id. A Relation message whose shape equals
// the cached one keeps the same *change.Table, so the encoder's per-table caches stay warm;
// a different shape yields a new Table with a higher Version.
//
// A table's shape is a function of the Relation message, never of the catalog at the moment
// cdcd reads it, so replaying the same WAL later, after more DDL, gives the same schemas:
//   - Columns, their types and typmods, and the replica identity come from the message
//     (pgoutput writes it from the historic catalog snapshot of the change it precedes).
//   - The key is the columns the message flags as replica identity (REPLICA IDENTITY DEFAULT:
//     the primary key; USING INDEX: the index's columns). Those are NOT NULL by PostgreSQL's
//     own rules (a primary key, or the unique index USING INDEX requires on NOT NULL columns),
//     so key columns are not nullable.
//   - Every other column is nullable. NOT NULL is not in the message: reading it from today's
//     catalog made a historical change's schema depend on later DDL (SET NOT NULL over old
//     NULLs turned them into poison records; a renamed NOT NULL column changed its schema
//     between live and replayed reads).
//   - REPLICA IDENTITY FULL flags every column, which is no key. The record key is then the
//     table's primary key as the catalog holds it when cdcd first sees the relation id; it is
//     kept with the cached relation and never re-read for a new Relation message of the same
//     relation. If the catalog's primary key later differs, the kept key stays (records keep
//     their key) and a warning says so. This one piece depends on the catalog; tables whose
//     key must be a function of the log use REPLICA IDENTITY DEFAULT or USING INDEX.
type relations struct {
	byID     map[uint32]*relation
	versions map[string]int // qualified name -> last version handed out
	types    *typeCatalog
	database string
	captured map[string]bool
	// fullKeys: the primary key (column names, key order) kept per relation id of a REPLICA
	// IDENTITY FULL table, read once.
	fullKeys map[uint32][]string
	// primaryKey reads a table's primary key columns (key order) from the catalog.
	primaryKey func(ctx context.Context, relid uint32) ([]string, error)
	// detached: per relation id, the table version snapshot chunks used when their shape
	// differed from the stream's (see snapshotTable).
	detached     map[uint32]*change.Table
	log          *slog.Logger
	onNewVersion func(*change.Table)
}

func newRelations(database string, tables []string, log *slog.Logger) *relations {
	captured := map[string]bool{}
	for _, t := range tables {
		captured[normalizeTable(t)] = true
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &relations{byID: map[uint32]*relation{}, versions: map[string]int{}, types: newTypeCatalog(nil),
		database: database, captured: captured, fullKeys: map[uint32][]string{}, log: log,
		primaryKey: func(context.Context, uint32) ([]string, error) {
			return nil, errors.New("no catalog connection")
		}}
}

// use points the cache at a new session's catalog connection. Cached shapes are kept, so a
// reconnect that sees the same Relation messages hands out the same *change.Table values.
func (rs *relations) use(conn *pgx.Conn) {
	rs.types.mu.Lock()
	rs.types.q = conn
	rs.types.mu.Unlock()
	rs.primaryKey = func(ctx context.Context, relid uint32) ([]string, error) { return primaryKey(ctx, conn, relid) }
}

func (rs *relations) get(id uint32) (*relation, error) {
	r, ok := rs.byID[id]
	if !ok {
		return nil, fmt.Errorf("change for relation id %d arrived before its Relation message", id)
	}
	return r, nil
}

// apply updates the cache from a Relation message.
func (rs *relations) apply(ctx context.Context, m relationMsg) error {
	r, err := rs.build(ctx, m)
	if err != nil {
		return err
	}
	if r.table == nil {
		rs.byID[m.id] = r
		return nil
	}
	t, qn := r.table, m.namespace+"."+m.name
	if old, ok := rs.byID[m.id]; ok && old.table != nil && old.table.SameShape(t) && old.table.FullIdentity == t.FullIdentity {
		r.table = old.table
	} else {
		rs.versions[qn]++
		t.Version = rs.versions[qn]
		r.table = t
		if rs.onNewVersion != nil {
			rs.onNewVersion(t)
		}
	}
	rs.byID[m.id] = r
	return nil
}

// snapshotTable is the table version a snapshot chunk's rows are emitted with: the stream's
// own when the chunk's shape (m, as the chunk's snapshot saw the catalog) equals it, or when
// the stream has not described the relation yet (m then becomes its description; the
// server's Relation message precedes the relation's next change anyway). A chunk read after
// DDL the stream has not reached gets a version of its own shape, kept apart from the one
// the stream decodes with.
func (rs *relations) snapshotTable(ctx context.Context, m relationMsg) (*change.Table, error) {
	cur, ok := rs.byID[m.id]
	if !ok || cur.table == nil {
		if err := rs.apply(ctx, m); err != nil {
			return nil, err
		}
		if r := rs.byID[m.id]; r.table != nil {
			return r.table, nil
		}
		return nil, fmt.Errorf("table %s.%s is not captured", m.namespace, m.name)
	}
	r, err := rs.build(ctx, m)
	if err != nil {
		return nil, err
	}
	t := r.table
	if cur.table.SameShape(t) && cur.table.FullIdentity == t.FullIdentity {
		return cur.table, nil
	}
	if d := rs.detached[m.id]; d != nil && d.SameShape(t) && d.FullIdentity == t.FullIdentity {
		return d, nil
	}
	qn := m.namespace + "." + m.name
	rs.versions[qn]++
	t.Version = rs.versions[qn]
	if rs.detached == nil {
		rs.detached = map[uint32]*change.Table{}
	}
	rs.detached[m.id] = t
	if rs.onNewVersion != nil {
		rs.onNewVersion(t)
	}
	return t, nil
}

// build makes a relation (with an unversioned table when captured) from a Relation message.
func (rs *relations) build(ctx context.Context, m relationMsg) (*relation, error) {
	qn := m.namespace + "." + m.name
	r := &relation{identity: m.identity, captured: rs.captured[qn]}
	if !r.captured {
		return r, nil
	}
	t := &change.Table{Database: rs.database, Schema: m.namespace, Name: m.name, FullIdentity: m.identity == 'f'}
	r.types = make([]*typeInfo, len(m.cols))
	for i, c := range m.cols {
		col, ti, err := rs.types.resolveColumn(ctx, c.name, c.typ, c.typmod)
		if err != nil {
			err = fmt.Errorf("table %s: %w", qn, err)
			if errors.Is(err, errUnsupportedType) {
				// Retrying cannot help; the table cannot be captured as it is.
				return nil, &FatalError{Err: fmt.Errorf("%w; fix: change the column's type or stop capturing the table", err)}
			}
			return nil, err
		}
		col.Nullable = true
		r.types[i] = ti
		t.Columns = append(t.Columns, col)
	}
	if m.identity == 'f' {
		key, err := rs.fullIdentityKey(ctx, m, qn)
		if err != nil {
			return nil, err
		}
		t.KeyColumns = key
	} else {
		for i, c := range m.cols {
			if c.key {
				t.KeyColumns = append(t.KeyColumns, i)
			}
		}
	}
	for _, i := range t.KeyColumns {
		t.Columns[i].Key = true
		t.Columns[i].Nullable = false
	}
	r.table = t
	return r, nil
}

// fullIdentityKey returns the key column indexes of a REPLICA IDENTITY FULL table: its
// primary key, read from the catalog the first time the relation id is seen and kept.
func (rs *relations) fullIdentityKey(ctx context.Context, m relationMsg, qn string) ([]int, error) {
	pk, ok := rs.fullKeys[m.id]
	if !ok {
		var err error
		if pk, err = rs.primaryKey(ctx, m.id); err != nil {
			return nil, fmt.Errorf("reading the primary key of %s (REPLICA IDENTITY FULL): %w", qn, err)
		}
		rs.fullKeys[m.id] = pk
	} else if now, err := rs.primaryKey(ctx, m.id); err == nil && !slices.Equal(now, pk) {
		// Only a warning: the kept key stays, so the records of this relation keep their key.
		rs.log.Warn("the primary key of a REPLICA IDENTITY FULL table changed; records stay keyed by the key cdcd read first until the pipeline restarts",
			"table", qn, "key", strings.Join(pk, ","), "catalog_key", strings.Join(now, ","),
			"fix", "use REPLICA IDENTITY DEFAULT or USING INDEX so the key comes from the log, or expect keys to change at the next restart")
	}
	var key []int
	for _, name := range pk {
		i := slices.IndexFunc(m.cols, func(c relationCol) bool { return c.name == name })
		if i < 0 {
			return nil, &FatalError{Err: fmt.Errorf("table %s (REPLICA IDENTITY FULL) is keyed by its primary key (%s), but column %q is not in its Relation message: it was renamed or dropped between the change and the moment cdcd read the key; fix: rename the column back until cdcd has streamed past the rename, and use REPLICA IDENTITY DEFAULT or USING INDEX so the key comes from the log",
				qn, strings.Join(pk, ", "), name)}
		}
		key = append(key, i)
	}
	return key, nil
}

// primaryKey returns the primary key columns of a table, in key order.
func primaryKey(ctx context.Context, conn *pgx.Conn, relid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname
		FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY k.ord`, relid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
