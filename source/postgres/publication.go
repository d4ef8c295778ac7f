package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pgx/v5"
)

// ensurePublication creates the publication for exactly tables, or adds and drops tables of
// an existing one to match. A FOR ALL TABLES publication keeps its membership (the stream
// filters).
//
// Partitioned tables are published through their root (publish_via_partition_root, PG 13+):
// changes of every partition, including one attached while streaming and a row that moves
// between partitions, arrive as changes of the configured parent, in order, on its one topic.
// Without it they would arrive under the partitions' names, which no configured table
// matches. Membership is compared on what the publication lists explicitly
// (pg_publication_rel: the parent), not on pg_publication_tables (which lists the
// partitions when not publishing via the root).
//
// shapes are column lists and row filters (by schema.table) a new publication carries on
// PostgreSQL 15+ where that is safe (shaping.go).
func ensurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string, shapes map[string]PublishShape, log *slog.Logger) error {
	version, err := serverVersionNum(ctx, conn)
	if err != nil {
		return fmt.Errorf("reading server_version_num: %w", err)
	}
	quoted := make([]string, 0, len(tables))
	for _, t := range tables {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			return &FatalError{Err: err}
		}
		quoted = append(quoted, quoteQualified(s, n))
	}
	var allTables, viaRoot bool
	q := `SELECT puballtables, false FROM pg_publication WHERE pubname = $1`
	if version >= 130000 {
		q = `SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1`
	}
	err = conn.QueryRow(ctx, q, name).Scan(&allTables, &viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		with := ""
		if version >= 130000 {
			with = " WITH (publish_via_partition_root = true)"
		}
		members := quoted
		if version >= 150000 && len(shapes) > 0 {
			if members, err = shapedMembers(ctx, conn, tables, quoted, shapes, log); err != nil {
				return err
			}
		}
		stmt := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s%s", quoteIdent(name), strings.Join(members, ", "), with)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return &FatalError{Err: fmt.Errorf("creating publication %s: %w (fix: create it as the tables' owner: %s)", name, err, stmt)}
		}
		log.Info("publication created", "publication", name, "tables", tables, "publish_via_partition_root", version >= 130000)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading publication %s: %w", name, err)
	}
	if !viaRoot && version >= 130000 {
		partitioned, err := partitionedTables(ctx, conn, tables)
		if err != nil {
			return fmt.Errorf("reading publication %s: %w", name, err)
		}
		if len(partitioned) > 0 {
			stmt := fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true)", quoteIdent(name))
			if _, err := conn.Exec(ctx, stmt); err != nil {
				return &FatalError{Err: fmt.Errorf("setting publish_via_partition_root on publication %s (needed for partitioned %v): %w (fix: run it as the publication's owner: %s)", name, partitioned, err, stmt)}
			}
			log.Warn("publication lacked publish_via_partition_root; set it so the partitioned tables' changes arrive under their own names (changes written before this were published under the partitions' names and are not captured)",
				"publication", name, "partitioned", partitioned)
		}
	}
	if allTables {
		return nil
	}
	have, err := publicationMembers(ctx, conn, name)
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
			return &FatalError{Err: fmt.Errorf("adding %v to publication %s: %w (fix: run it as the publication's owner)", add, name, err)}
		}
		log.Info("publication tables added", "publication", name, "tables", add)
	}
	if len(drop) > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE %s", quoteIdent(name), strings.Join(drop, ", "))); err != nil {
			return &FatalError{Err: fmt.Errorf("dropping %v from publication %s: %w (fix: run it as the publication's owner)", drop, name, err)}
		}
		log.Info("publication tables dropped", "publication", name, "tables", drop)
	}
	return nil
}

// publicationMembers returns "schema.table" of every table the publication lists explicitly
// (a partitioned table itself, not its partitions).
func publicationMembers(ctx context.Context, conn *pgx.Conn, publication string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname
		FROM pg_publication p
		JOIN pg_publication_rel pr ON pr.prpubid = p.oid
		JOIN pg_class c ON c.oid = pr.prrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1`, publication)
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

// partitionedTables returns those of tables that are partitioned (relkind 'p').
func partitionedTables(ctx context.Context, conn *pgx.Conn, tables []string) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT c.name FROM unnest($1::text[]) AS c(name)
		JOIN pg_class r ON r.oid = to_regclass(c.name) WHERE r.relkind = 'p' ORDER BY 1`, quotedTables(tables))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// normalizeTable turns a configured name (possibly quoted) into schema.table as catalogs spell it.
func normalizeTable(t string) string {
	s, n, err := change.ParseTableName(t)
	if err != nil {
		return t
	}
	return s + "." + n
}
