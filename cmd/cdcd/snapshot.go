package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/cdcd-dev/cdcd/source/postgres"
)

// requestSnapshot requests an on-demand snapshot of a table of a running pipeline. The request
// travels through the database's log (a logical message for Postgres), so the pipeline sees
// it in order with the changes, records it with its committed position, and takes it up
// again after a restart; nothing talks to the daemon directly.
//
// With w set (--wait), it then follows the snapshot on the running daemon's HTTP port until
// the snapshot ends, and fails if the pipeline does.
func requestSnapshot(ctx context.Context, path, name, table, where string, w *snapshotWait, stdout io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return &exitError{1, err}
	}
	if w != nil && w.url == "" {
		w.url = listenURL(cfg.HTTP.Listen)
	}
	var names []string
	for _, p := range cfg.Pipelines {
		names = append(names, p.Name)
		if p.Name != name {
			continue
		}
		pg, my := p.Source.Postgres, p.Source.MySQL
		if err := checkSnapshotRequest(&p, where); err != nil {
			return err
		}
		if my != nil {
			return requestMySQLSnapshot(ctx, p, table, where, w, stdout)
		}
		s, n, err := change.ParseTableName(table)
		if err != nil {
			return &exitError{2, fmt.Errorf("--table %q: %w (fix: write it as schema.table)", table, err)}
		}
		qn := s + "." + n
		captured := qualified(pg.Tables)
		if !slices.Contains(captured, qn) {
			return fmt.Errorf("pipeline %s does not capture %s (its tables: %v); fix: add the table to source.postgres.tables (with snapshot: when_needed a restart snapshots it), or name a captured table", p.Name, qn, captured)
		}
		mark, err := w.mark(ctx, p.Name, qn)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		id, err := postgres.RequestSnapshot(rctx, pg.DSN, p.SignalKey(), p.Name, qn, where)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "snapshot of %s requested (request %s); pipeline %s reads it while it streams: follow the status page (/), /readyz (phase snapshotting) and cdcd_snapshot_rows_total\n", qn, id, p.Name)
		return w.wait(ctx, p.Name, qn, mark, stdout)
	}
	return fmt.Errorf("no pipeline named %q in %s (pipelines: %v)", name, path, names)
}

// requestMySQLSnapshot writes the request into the pipeline's signal table.
func requestMySQLSnapshot(ctx context.Context, p config.Pipeline, table, where string, w *snapshotWait, stdout io.Writer) error {
	my := p.Source.MySQL
	db, name, err := change.ParseTableName(table)
	if err != nil {
		return &exitError{2, fmt.Errorf("--table %q: %w (fix: write it as database.table)", table, err)}
	}
	qn := db + "." + name
	captured := qualified(my.Tables)
	if !slices.Contains(captured, qn) {
		return fmt.Errorf("pipeline %s does not capture %s (its tables: %v); fix: add the table to source.mysql.tables, or name a captured table", p.Name, qn, captured)
	}
	signal := signalTable(my)
	mark, err := w.mark(ctx, p.Name, qn)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := mysql.RequestSnapshot(rctx, my.DSN, p.SignalKey(), signal, p.Name, qn, where)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot of %s requested (request %s, through %s); pipeline %s reads it while it streams: follow the status page (/), /readyz (phase snapshotting) and cdcd_snapshot_rows_total\n", qn, id, signal, p.Name)
	return w.wait(ctx, p.Name, qn, mark, stdout)
}

// qualified spells configured tables as schema.table (quotes removed), as requests name them.
func qualified(tables []string) []string {
	var out []string
	for _, t := range tables {
		if s, n, err := change.ParseTableName(t); err == nil {
			out = append(out, s+"."+n)
		}
	}
	return out
}

// signalTable is the MySQL source's signal table: the configured one, or the default next to
// its tables.
func signalTable(my *config.MySQL) string {
	if my.SignalTable != "" {
		return my.SignalTable
	}
	return mysql.DefaultSignalTable(qualified(my.Tables))
}
