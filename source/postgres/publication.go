package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pgx/v5"
)

// ensurePublication creates the publication for exactly tables, or adds and drops tables of
// an existing one to match. A FOR ALL TABLES publication is left alone (the stream filters).
func ensurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string, log *slog.Logger) error {
	quoted := make([]string, 0, len(tables))
	for _, t := range tables {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			return &FatalError{err}
		}
		quoted = append(quoted, quoteQualified(s, n))
	}
	var allTables bool
	err := conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, name).Scan(&allTables)
	if err == pgx.ErrNoRows {
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", quoteIdent(name), strings.Join(quoted, ", "))); err != nil {
			return &FatalError{fmt.Errorf("creating publication %s: %w (fix: create it as the tables' owner: CREATE PUBLICATION %s FOR TABLE %s)", name, err, quoteIdent(name), strings.Join(quoted, ", "))}
		}
		log.Info("publication created", "publication", name, "tables", tables)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading publication %s: %w", name, err)
	}
	if allTables {
		return nil
	}
	have, err := publicationTables(ctx, conn, name)
	if err != nil {
		return fmt.Errorf("reading publication %s: %w", name, err)
	}
	want := map[string]string{}
	for i, t := range tables {
		want[normalizeTable(t)] = quoted[i]
	}
	var add, drop []string
	for t, q := range want {
		if !have[t] {
			add = append(add, q)
		}
	}
	for t := range have {
		if _, ok := want[t]; !ok {
			s, n, _ := change.ParseTableName(t)
			drop = append(drop, quoteQualified(s, n))
		}
	}
	sort.Strings(add)
	sort.Strings(drop)
	if len(add) > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", quoteIdent(name), strings.Join(add, ", "))); err != nil {
			return &FatalError{fmt.Errorf("adding %v to publication %s: %w (fix: run it as the publication's owner)", add, name, err)}
		}
		log.Info("publication tables added", "publication", name, "tables", add)
	}
	if len(drop) > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE %s", quoteIdent(name), strings.Join(drop, ", "))); err != nil {
			return &FatalError{fmt.Errorf("dropping %v from publication %s: %w (fix: run it as the publication's owner)", drop, name, err)}
		}
		log.Info("publication tables dropped", "publication", name, "tables", drop)
	}
	return nil
}

// publicationTables returns "schema.table" of every table the publication covers.
func publicationTables(ctx context.Context, conn *pgx.Conn, publication string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, publication)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, err
		}
		out[s+"."+t] = true
	}
	return out, rows.Err()
}

// normalizeTable turns a configured name (possibly quoted) into schema.table as catalogs spell it.
func normalizeTable(t string) string {
	s, n, err := change.ParseTableName(t)
	if err != nil {
		return t
	}
	return s + "." + n
}
