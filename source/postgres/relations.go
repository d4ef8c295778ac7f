package postgres

import (
	"context"
	"errors"
	"fmt"

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
type relations struct {
	byID         map[uint32]*relation
	versions     map[string]int // qualified name -> last version handed out
	types        *typeCatalog
	conn         *pgx.Conn // catalog queries: nullability and primary keys
	database     string
	captured     map[string]bool
	onNewVersion func(*change.Table)
}

func newRelations(conn *pgx.Conn, database string, tables []string) *relations {
	captured := map[string]bool{}
	for _, t := range tables {
		captured[normalizeTable(t)] = true
	}
	return &relations{byID: map[uint32]*relation{}, versions: map[string]int{}, types: newTypeCatalog(conn),
		conn: conn, database: database, captured: captured}
}

// use points the cache at a new session's catalog connection. Cached shapes are kept, so a
// reconnect that sees the same Relation messages hands out the same *change.Table values.
func (rs *relations) use(conn *pgx.Conn) {
	rs.conn = conn
	rs.types.mu.Lock()
	rs.types.q = conn
	rs.types.mu.Unlock()
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
	qn := m.namespace + "." + m.name
	r := &relation{identity: m.identity, captured: rs.captured[qn]}
	if !r.captured {
		rs.byID[m.id] = r
		return nil
	}
	notNull, pk, err := rs.catalog(ctx, m.id)
	if err != nil {
		return fmt.Errorf("reading catalog of %s: %w", qn, err)
	}
	t := &change.Table{Database: rs.database, Schema: m.namespace, Name: m.name, FullIdentity: m.identity == 'f'}
	r.types = make([]*typeInfo, len(m.cols))
	byName := map[string]int{}
	for i, c := range m.cols {
		col, ti, err := rs.types.resolveColumn(ctx, c.name, c.typ, c.typmod)
		if err != nil {
			err = fmt.Errorf("table %s: %w", qn, err)
			if errors.Is(err, errUnsupportedType) {
				// Retrying cannot help; the table cannot be captured as it is.
				return &FatalError{fmt.Errorf("%w; fix: change the column's type or stop capturing the table", err)}
			}
			return err
		}
		col.Nullable = !notNull[c.name]
		r.types[i] = ti
		t.Columns = append(t.Columns, col)
		byName[c.name] = i
	}
	// The record key is the primary key. Under REPLICA IDENTITY FULL every column is flagged as
	// identity, so the catalog's primary key decides; otherwise the identity columns are the key.
	if m.identity == 'f' {
		for _, name := range pk {
			if i, ok := byName[name]; ok {
				t.KeyColumns = append(t.KeyColumns, i)
			}
		}
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

// catalog returns the NOT NULL columns and the primary key columns (in key order) of a table.
// It reads the current catalog: Relation messages carry neither.
func (rs *relations) catalog(ctx context.Context, relid uint32) (map[string]bool, []string, error) {
	rows, err := rs.conn.Query(ctx, `SELECT a.attname, a.attnotnull,
			coalesce((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) WHERE k.attnum = a.attnum), 0)::int
		FROM pg_attribute a
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, relid)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	notNull := map[string]bool{}
	pkPos := map[int]string{}
	for rows.Next() {
		var name string
		var nn bool
		var pos int
		if err := rows.Scan(&name, &nn, &pos); err != nil {
			return nil, nil, err
		}
		notNull[name] = nn
		if pos > 0 {
			pkPos[pos] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pk := make([]string, 0, len(pkPos))
	for i := 1; i <= len(pkPos); i++ {
		pk = append(pk, pkPos[i])
	}
	return notNull, pk, nil
}
