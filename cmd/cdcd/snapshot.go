package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/cdcd-dev/cdcd/source/postgres"
)

// snapshotCommand requests an on-demand snapshot of a table of a running pipeline. The request
// travels through the database's log (a logical message for Postgres), so the pipeline sees
// it in order with the changes, records it with its committed position, and takes it up
// again after a restart; nothing talks to the daemon directly.
func snapshotCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cdcd snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	name := fs.String("pipeline", "", "pipeline that captures the table")
	table := fs.String("table", "", "table to snapshot, as schema.table")
	where := fs.String("where", "", "only the rows matching this condition: columns compared with literals, IN, BETWEEN, LIKE, IS [NOT] NULL, AND/OR/NOT (e.g. \"created_at > '2024-01-01' AND region IN ('eu', 'us')\")")
	if err := fs.Parse(args); err != nil || *path == "" || *name == "" || *table == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: cdcd snapshot --config FILE --pipeline NAME --table SCHEMA.TABLE [--where SQL]")
		return &exitError{2, errUsageShown}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return &exitError{1, err}
	}
	var names []string
	for _, p := range cfg.Pipelines {
		names = append(names, p.Name)
		if p.Name != *name {
			continue
		}
		pg, my := p.Source.Postgres, p.Source.MySQL
		if err := checkSnapshotRequest(&p, *where); err != nil {
			return err
		}
		if my != nil {
			return requestMySQLSnapshot(ctx, p, *table, *where, stdout)
		}
		s, n, err := change.ParseTableName(*table)
		if err != nil {
			return &exitError{2, fmt.Errorf("--table %q: %w (fix: write it as schema.table)", *table, err)}
		}
		qn := s + "." + n
		captured := qualified(pg.Tables)
		if !slices.Contains(captured, qn) {
			return fmt.Errorf("pipeline %s does not capture %s (its tables: %v); fix: add the table to source.postgres.tables (with snapshot: when_needed a restart snapshots it), or name a captured table", p.Name, qn, captured)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		id, err := postgres.RequestSnapshot(ctx, pg.DSN, p.SignalKey(), p.Name, qn, *where)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "snapshot of %s requested (request %s); pipeline %s reads it while it streams: follow /readyz (phase snapshotting) and cdcd_snapshot_rows_total\n", qn, id, p.Name)
		return nil
	}
	return fmt.Errorf("no pipeline named %q in %s (pipelines: %v)", *name, *path, names)
}

// requestMySQLSnapshot writes the request into the pipeline's signal table.
func requestMySQLSnapshot(ctx context.Context, p config.Pipeline, table, where string, stdout io.Writer) error {
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
	signal := my.SignalTable
	if signal == "" {
		signal = mysql.DefaultSignalTable(captured)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := mysql.RequestSnapshot(ctx, my.DSN, p.SignalKey(), signal, p.Name, qn, where)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot of %s requested (request %s, through %s); pipeline %s reads it while it streams: follow /readyz (phase snapshotting) and cdcd_snapshot_rows_total\n", qn, id, signal, p.Name)
	return nil
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
