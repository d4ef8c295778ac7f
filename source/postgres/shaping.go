package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/jackc/pgx/v5"
)

// publishedShape is what the publication lets out of a table (PostgreSQL 15+): its column
// list (nil when every column is published) and its row filter ("" when none). A snapshot
// applies both, so it publishes exactly what the stream would: never a column or a row the
// operator kept out of the publication.
type publishedShape struct {
	cols   map[string]bool
	filter string
}

// readPublishedShape reads the table's column list and row filter in the publication from
// pg_publication_tables (attnames lists every published column, rowfilter is the deparsed
// WHERE). Before PostgreSQL 15 a publication has neither.
func readPublishedShape(ctx context.Context, conn *pgx.Conn, publication, schema, name string) (publishedShape, error) {
	var ps publishedShape
	version, err := serverVersionNum(ctx, conn)
	if err != nil {
		return ps, fmt.Errorf("reading server_version_num: %w", err)
	}
	if version < 150000 || publication == "" {
		return ps, nil
	}
	var attnames []string
	var filter *string
	err = conn.QueryRow(ctx, `SELECT attnames::text[], rowfilter FROM pg_publication_tables
		WHERE pubname = $1 AND schemaname = $2 AND tablename = $3 LIMIT 1`, publication, schema, name).Scan(&attnames, &filter)
	if err == pgx.ErrNoRows {
		return ps, nil // not (yet) published: the stream carries nothing of it either
	}
	if err != nil {
		return ps, fmt.Errorf("reading the column list and row filter of %s.%s in publication %s: %w", schema, name, publication, err)
	}
	ps.cols = map[string]bool{}
	for _, a := range attnames {
		ps.cols[a] = true
	}
	if filter != nil {
		ps.filter = *filter
	}
	return ps, nil
}

// applyColumnList keeps of cols (and of the parallel inIndex) the published ones. A key
// column the list leaves out is refused: the record key and the snapshot's chunks need it,
// and PostgreSQL itself refuses updates of such a table.
func (ps publishedShape) applyColumnList(table, publication string, cols []relationCol, inIndex []bool, keyNames []string) ([]relationCol, []bool, error) {
	if ps.cols == nil {
		return cols, inIndex, nil
	}
	var missing []string
	for i, c := range cols {
		if !ps.cols[c.name] && (inIndex[i] || slices.Contains(keyNames, c.name)) {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return nil, nil, &FatalError{Err: fmt.Errorf("table %s: the column list of publication %s leaves out key column(s) %s; fix: add them to the list (ALTER PUBLICATION %s SET TABLE %s (...)) or stop capturing the table",
			table, publication, strings.Join(missing, ", "), quoteIdent(publication), table)}
	}
	var outCols []relationCol
	var outIdx []bool
	for i, c := range cols {
		if ps.cols[c.name] {
			outCols = append(outCols, c)
			outIdx = append(outIdx, inIndex[i])
		}
	}
	return outCols, outIdx, nil
}

// shapeConds adds to a chunk's conditions the publication's row filter and the request's
// condition (parsed, its strings bound as parameters).
func (d *snapTable) shapeConds(t *snapshot.Task, conds []string, args [][]byte) ([]string, [][]byte, error) {
	if d.rowFilter != "" {
		conds = append(conds, "("+d.rowFilter+")")
	}
	if t.Where != "" {
		sql, params, err := renderCondition(t.Where, len(args)+1)
		if err != nil {
			return nil, nil, fmt.Errorf("%w %q on %s: %v", snapshot.ErrInvalidCondition, t.Where, t.Table, err)
		}
		conds = append(conds, sql)
		args = append(args, textArgs(params)...)
	}
	return conds, args, nil
}

// pgDialect renders snapshot conditions for PostgreSQL: quoted names, strings as parameters
// (text, their type inferred from the column they are compared with).
func pgDialect(first int) snapshot.Dialect {
	return snapshot.Dialect{
		Ident: func(s string) string { return pgx.Identifier{s}.Sanitize() },
		String: func(s string, args *[]string) string {
			*args = append(*args, s)
			return "$" + strconv.Itoa(first+len(*args)-1)
		},
	}
}

// renderCondition parses a request's condition and renders it with parameters numbered from
// first.
func renderCondition(where string, first int) (string, []string, error) {
	c, err := snapshot.ParseCondition(where)
	if err != nil {
		return "", nil, err
	}
	var args []string
	sql := c.SQL(pgDialect(first), &args)
	return sql, args, nil
}

// RequestSnapshot asks pipeline to snapshot table (rows matching where, all if empty): it
// checks that the table and the condition are valid, then writes the request, signed with
// key, into the log as a transactional logical message, which the pipeline's stream takes up
// at its commit. It returns the request's id.
func RequestSnapshot(ctx context.Context, dsn string, key []byte, pipeline, table, where string) (string, error) {
	if len(key) == 0 {
		return "", snapshot.ErrNoSignalKey
	}
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		return "", err
	}
	q := "SELECT 1 FROM " + pgx.Identifier{schema, name}.Sanitize()
	var args []any
	if where != "" {
		sql, params, err := renderCondition(where, 1)
		if err != nil {
			return "", fmt.Errorf("--where %q: %w", where, err)
		}
		q += " WHERE " + sql
		for _, p := range params {
			args = append(args, p)
		}
	}
	conn, err := connectCatalog(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, q+" LIMIT 0", args...); err != nil {
		return "", fmt.Errorf("checking %s with the condition %q: %w; fix: name an existing table, and compare its columns with literals of their types", table, where, err)
	}
	id, content, err := snapshot.NewSignal(key, pipeline, table, where)
	if err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", SignalPrefix, string(content)); err != nil {
		return "", fmt.Errorf("writing the snapshot request: %w", err)
	}
	return id, nil
}

// pgLiteralDialect renders a condition as DDL (a publication's WHERE): strings as literals,
// quotes doubled (the grammar admits no backslash, so the result is the same whatever
// standard_conforming_strings says).
var pgLiteralDialect = snapshot.Dialect{
	Ident:  func(s string) string { return pgx.Identifier{s}.Sanitize() },
	String: func(s string, _ *[]string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" },
}

// PublishShape is what of a table a new publication publishes: Include (only these columns)
// or Exclude (all but these), and a row filter (the grammar of snapshot.ParseCondition).
type PublishShape struct {
	Include, Exclude []string
	Filter           string
}

// shapedMembers spells the tables of a new publication, each with its column list and row
// filter where pushing them into the publication is safe. PostgreSQL refuses updates and
// deletes of a table whose publication's column list leaves out a replica identity column, or
// whose row filter names a column outside it: so a column list is pushed only when it keeps
// every identity column (never under REPLICA IDENTITY FULL), and a filter only under FULL or
// an identity covering its columns. cdcd applies both itself in every case (package shape);
// pushed, what they leave out does not leave the database (an excluded column of a type cdcd
// cannot carry no longer matters), and snapshots read only what is published.
func shapedMembers(ctx context.Context, conn *pgx.Conn, tables, quoted []string, shapes map[string]PublishShape, log *slog.Logger) ([]string, error) {
	out := slices.Clone(quoted)
	for i, t := range tables {
		sh, ok := shapes[normalizeTable(t)]
		if !ok {
			continue
		}
		var ident string
		var identCols, cols []string
		err := conn.QueryRow(ctx, `SELECT c.relreplident::text, coalesce((SELECT array_agg(a.attname::text) FROM pg_index i
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
				WHERE i.indrelid = c.oid AND CASE WHEN c.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END), '{}'),
			coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '{}')
			FROM pg_class c WHERE c.oid = to_regclass($1)`, quoted[i]).Scan(&ident, &identCols, &cols)
		if err != nil {
			return nil, fmt.Errorf("reading the replica identity of %s: %w", t, err)
		}
		member := quoted[i]
		var filterCols []string
		if sh.Filter != "" {
			if c, err := snapshot.ParseCondition(sh.Filter); err == nil {
				filterCols = c.Columns()
			}
		}
		if len(sh.Include) > 0 || len(sh.Exclude) > 0 {
			// The columns the filter names stay published: cdcd evaluates the filter on them
			// (and leaves them out of the records).
			var kept []string
			for _, c := range cols {
				if len(sh.Include) > 0 && slices.Contains(sh.Include, c) || len(sh.Include) == 0 && !slices.Contains(sh.Exclude, c) ||
					slices.Contains(filterCols, c) {
					kept = append(kept, c)
				}
			}
			safe := ident != "f" && len(kept) > 0
			for _, c := range identCols {
				safe = safe && slices.Contains(kept, c)
			}
			if safe {
				q := make([]string, len(kept))
				for j, c := range kept {
					q[j] = quoteIdent(c)
				}
				member += " (" + strings.Join(q, ", ") + ")"
			} else {
				log.Info("column selection not pushed into the publication: it leaves out a replica identity column (PostgreSQL would refuse the table's updates and deletes); cdcd applies it",
					"table", t)
			}
		}
		if sh.Filter != "" {
			c, err := snapshot.ParseCondition(sh.Filter)
			if err != nil {
				return nil, &FatalError{Err: fmt.Errorf("row filter of %s: %w", t, err)}
			}
			safe := ident == "f"
			if ident == "d" || ident == "i" {
				safe = true
				for _, col := range c.Columns() {
					safe = safe && slices.Contains(identCols, col)
				}
			}
			if safe {
				member += " WHERE (" + c.SQL(pgLiteralDialect, nil) + ")"
			} else {
				log.Info("row filter not pushed into the publication: it names columns outside the table's replica identity (PostgreSQL would refuse the table's updates and deletes); cdcd applies it",
					"table", t, "filter", sh.Filter)
			}
		}
		out[i] = member
	}
	return out, nil
}
