package mysql

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/cdcd-dev/cdcd/snapshot"
)

// myDialect renders snapshot conditions for MySQL/MariaDB: backquoted names, and strings as
// hex literals with a utf8mb4 introducer (coercible to the column's collation), which no text
// can break out of whatever the sql_mode.
var myDialect = snapshot.Dialect{
	Ident: quoteIdent,
	String: func(s string, _ *[]string) string {
		if s == "" {
			return "_utf8mb4''"
		}
		return "_utf8mb4 X'" + hex.EncodeToString([]byte(s)) + "'"
	},
}

// renderCondition parses a request's condition and renders it for MySQL.
func renderCondition(where string) (string, error) {
	c, err := snapshot.ParseCondition(where)
	if err != nil {
		return "", err
	}
	return c.SQL(myDialect, nil), nil
}

// shapeConds adds the request's condition (parsed and rendered again) to a chunk's conditions.
func shapeConds(t *snapshot.Task, conds []string) ([]string, error) {
	if t.Where == "" {
		return conds, nil
	}
	sql, err := renderCondition(t.Where)
	if err != nil {
		return nil, fmt.Errorf("%w %q on %s: %v", snapshot.ErrInvalidCondition, t.Where, t.Table, err)
	}
	return append(conds, sql), nil
}

// RequestSnapshot asks pipeline to snapshot table (rows matching where, all if empty) through
// the signal table, signed with key; it checks the table and the condition first and returns
// the request id.
func RequestSnapshot(ctx context.Context, dsn string, key []byte, signalTable, pipeline, table, where string) (string, error) {
	if len(key) == 0 {
		return "", snapshot.ErrNoSignalKey
	}
	q := "SELECT 1 FROM " + quoteTable(table)
	if where != "" {
		sql, err := renderCondition(where)
		if err != nil {
			return "", fmt.Errorf("--where %q: %w", where, err)
		}
		q += " WHERE " + sql
	}
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Execute(q + " LIMIT 0"); err != nil {
		return "", fmt.Errorf("checking %s with the condition %q: %w; fix: name an existing table, and compare its columns with literals of their types", table, where, err)
	}
	if err := ensureSignalTable(conn, signalTable); err != nil {
		return "", err
	}
	id, content, err := snapshot.NewSignal(key, pipeline, table, where)
	if err != nil {
		return "", err
	}
	if err := writeSignal(conn, signalTable, signalKindSnapshot, string(content)); err != nil {
		return "", fmt.Errorf("writing the snapshot request into %s: %w", signalTable, err)
	}
	return id, nil
}
