package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/cdcd-dev/cdcd/source/postgres"
	"github.com/cdcd-dev/cdcd/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

var verifyCommand = &command{
	name: "verify", args: "--config FILE --pipeline NAME [--table SCHEMA.TABLE] [--where SQL] [--output json]",
	summary: "compare each table with its topic's latest record per key",
	help: `Compares each table of a pipeline (or the one --table names) with its topic: every row with
the latest committed record of its key, values decoded with the registry's schemas. It
reports the keys the topic misses, the keys it has that the table does not (extra) and the
keys whose values differ, with counts and examples. Exits 0 when every table equals its
topic, 1 on any difference or a table it could not compare.

It reads the table in key-ordered chunks without locks, then waits until the pipeline has
published everything committed before the read (--catch-up), reads the topic, and reads
every differing key again before it reports it, so a live database verifies as equal. With
--repair it then requests an on-demand snapshot of the missing and differing keys.`,
	example: "cdcd verify --config cdcd.yaml --pipeline shop\ncdcd verify --config cdcd.yaml --pipeline shop --table public.orders --where \"id > 1000000\" --output json",
	flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
		cfgPath := configFlag(fs)
		var o verifyOptions
		fs.StringVar(&o.pipeline, "pipeline", "", "the `NAME` of the pipeline whose tables to verify (required)")
		fs.StringVar(&o.table, "table", "", "verify only this table, as `SCHEMA.TABLE` (database.table for MySQL)")
		fs.StringVar(&o.where, "where", "", "compare only the rows matching this `SQL` condition (extra keys are then not reported)")
		fs.StringVar(&o.output, "output", "text", "the report `FORMAT`: text or json")
		fs.IntVar(&o.chunk, "chunk-rows", 10000, "rows per table read, and about the keys held in memory at once")
		fs.DurationVar(&o.catchUp, "catch-up", time.Minute, "how long to wait for the pipeline to publish what was committed before the table read")
		fs.StringVar(&o.spillDir, "spill-dir", "", "the `DIR` of the temporary bucket files (default: the system's temporary directory)")
		fs.StringVar(&o.metricsFile, "metrics-file", "", "write the cdcd_verify_* metrics to this `FILE` (Prometheus text format, e.g. for node_exporter's textfile collector)")
		fs.BoolVar(&o.repair, "repair", false, "request an on-demand snapshot of the missing and differing keys of each table that differs")
		return func(ctx context.Context, stdout, stderr io.Writer) error {
			path, err := cfgPath(stderr, "verify")
			if err != nil {
				return err
			}
			if o.pipeline == "" {
				return requireFlag(stderr, "verify", "--pipeline NAME")
			}
			if o.output != "text" && o.output != "json" {
				return usageError(stderr, "verify", fmt.Sprintf("--output %q: use text or json", o.output))
			}
			if o.chunk <= 0 {
				return usageError(stderr, "verify", "--chunk-rows must be positive")
			}
			o.tty = o.output == "text" && isTerminal(os.Stderr)
			return verifyRun(ctx, path, o, stdout, stderr)
		}
	},
}

type verifyOptions struct {
	pipeline, table, where, output, spillDir, metricsFile string
	chunk                                                 int
	catchUp                                               time.Duration
	repair, tty                                           bool
}

func verifyRun(ctx context.Context, path string, o verifyOptions, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return &exitError{1, err}
	}
	var p *config.Pipeline
	var names []string
	for i := range cfg.Pipelines {
		names = append(names, cfg.Pipelines[i].Name)
		if cfg.Pipelines[i].Name == o.pipeline {
			p = &cfg.Pipelines[i]
		}
	}
	if p == nil {
		return fmt.Errorf("no pipeline named %q in %s (pipelines: %v)", o.pipeline, path, names)
	}
	pg, my := p.Source.Postgres, p.Source.MySQL
	if pg == nil && my == nil {
		return fmt.Errorf("pipeline %s: cdcd verify supports PostgreSQL and MySQL sources (this pipeline's source is %s)", p.Name, p.SourceKind())
	}
	var tables []string
	if pg != nil {
		tables = qualified(pg.Tables)
	} else {
		tables = qualified(my.Tables)
	}
	if o.table != "" {
		s, n, err := change.ParseTableName(o.table)
		if err != nil {
			return &exitError{2, fmt.Errorf("--table %q: %w (fix: write it as schema.table, or database.table for MySQL)", o.table, err)}
		}
		if !slices.Contains(tables, s+"."+n) {
			return fmt.Errorf("pipeline %s does not capture %s (its tables: %v); fix: name a captured table", p.Name, s+"."+n, tables)
		}
		tables = []string{s + "." + n}
	}
	log := newLogger(cfg.Log, stderr)
	enc, err := newEncoder(cfg, p, connectorName(p), log)
	if err != nil {
		return err
	}
	schemas, err := registryClient(cfg)
	if err != nil {
		return err
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	vc := verify.Config{Pipeline: p.Name, Tables: tables, Where: o.where, Encoder: enc, Schemas: schemas, KafkaOpts: kopts,
		ChunkRows: o.chunk, SpillDir: o.spillDir, CatchUp: o.catchUp, Log: log.With("pipeline", p.Name), Metrics: verify.NewMetrics(reg),
		Open: func(ctx context.Context, table string) (verify.Source, error) {
			if my != nil {
				r, err := mysql.OpenTableReader(ctx, my.DSN, table, signalTable(my))
				if err != nil {
					return nil, err
				}
				return &myVerifySource{TableReader: r, pipeline: p.Name, offsetsTopic: cfg.Kafka.OffsetsTopic, kopts: kopts}, nil
			}
			r, err := postgres.OpenTableReader(ctx, pg.DSN, table)
			if err != nil {
				return nil, err
			}
			return &pgVerifySource{TableReader: r, slot: pg.Slot}, nil
		}}
	if o.tty {
		vc.Progress = func(pr verify.Progress) { printVerifyProgress(stderr, pr) }
	}
	rep, err := verify.Run(ctx, vc)
	if err != nil {
		return err
	}
	if o.metricsFile != "" {
		if err := writeMetricsFile(reg, o.metricsFile); err != nil {
			return err
		}
	}
	if o.output == "json" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printVerifyReport(stdout, rep)
	}
	if o.repair {
		out := stdout
		if o.output == "json" {
			out = stderr // stdout holds only the report
		}
		if err := verifyRepair(ctx, p, rep, out); err != nil {
			return err
		}
	}
	if rep.Equal {
		return nil
	}
	n := 0
	for _, t := range rep.Tables {
		if !t.Equal() {
			n++
		}
	}
	return &exitError{1, fmt.Errorf("pipeline %s: %d of %d table(s) differ from their topics or could not be compared", p.Name, n, len(rep.Tables))}
}

// pgVerifySource is a PostgreSQL table for verify: the pipeline has passed a mark once its
// slot's confirmed position is beyond it.
type pgVerifySource struct {
	*postgres.TableReader
	slot string
}

func (s *pgVerifySource) Caught(ctx context.Context, mark uint64) (bool, error) {
	lsn, ok, err := s.SlotConfirmed(ctx, s.slot)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, fmt.Errorf("replication slot %s does not exist: the pipeline has not run, or its slot was dropped", s.slot)
	}
	return lsn > mark, nil
}

// myVerifySource is a MySQL table for verify: the pipeline has passed a mark once its
// committed position (the offsets topic) reaches it.
type myVerifySource struct {
	*mysql.TableReader
	pipeline, offsetsTopic string
	kopts                  []kgo.Opt

	// cl reads the offsets topic for every look (made at the first one, with
	// offsets.ReaderOpts), and committed reads it incrementally: a look reads only what was
	// written since the last. The reader reads to the high watermark and decides itself which
	// records are committed, so another pipeline's transaction left open in the shared topic
	// does not hold it back.
	cl        *kgo.Client
	committed *offsets.Reader
}

func (s *myVerifySource) Caught(ctx context.Context, mark uint64) (bool, error) {
	if s.cl == nil {
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, s.kopts...), offsets.ReaderOpts()...)...)
		if err != nil {
			return false, fmt.Errorf("creating kafka client: %w", err)
		}
		s.cl, s.committed = cl, offsets.NewReader(cl, s.offsetsTopic, s.pipeline)
	}
	rec, ok, err := s.committed.Read(ctx)
	if err != nil {
		return false, err
	}
	return ok && rec.Pos.Tx >= mark, nil
}

// Close closes the table reader and the offsets topic's client.
func (s *myVerifySource) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
	if s.TableReader != nil {
		s.TableReader.Close()
	}
}

func printVerifyProgress(w io.Writer, pr verify.Progress) {
	if pr.Phase == "done" {
		fmt.Fprint(w, "\r\033[K")
		return
	}
	line := fmt.Sprintf("%s: %s: %d rows", pr.Table, pr.Phase, pr.Rows)
	if pr.Estimated > 0 && pr.Phase == "table" {
		line += fmt.Sprintf(" (~%d%%)", min(pr.Rows*100/pr.Estimated, 100))
	}
	line += fmt.Sprintf(", %d records", pr.Records)
	if s := pr.Elapsed.Seconds(); s > 0 {
		line += fmt.Sprintf(", %.0f rows/s", float64(pr.Rows)/s)
	}
	fmt.Fprintf(w, "\r\033[K%s", line)
}

func printVerifyReport(w io.Writer, rep *verify.Report) {
	for _, t := range rep.Tables {
		switch {
		case t.Error != "":
			fmt.Fprintf(w, "%s: NOT COMPARED: %s\n", t.Table, t.Error)
			continue
		case t.Equal():
			fmt.Fprintf(w, "%s = topic %s: equal (%d rows, %d records, %.1fs)\n", t.Table, t.Topic, t.Rows, t.Records, t.Seconds)
			continue
		}
		fmt.Fprintf(w, "%s != topic %s: %d missing, %d extra, %d different (%d rows, %d records, %.1fs)\n",
			t.Table, t.Topic, t.Missing, t.Extra, t.Different, t.Rows, t.Records, t.Seconds)
		if !t.CaughtUp {
			fmt.Fprintln(w, "  note: the pipeline did not publish what was committed before the table read within --catch-up; differences may be changes it has not published yet (is it running?)")
		}
		for _, ex := range t.Examples {
			key, _ := json.Marshal(ex.Key)
			line := fmt.Sprintf("  %-9s key %s", ex.Kind, key)
			if len(ex.Columns) > 0 {
				line += " columns " + strings.Join(ex.Columns, ", ")
			}
			if ex.Offset != nil {
				line += fmt.Sprintf(" (latest record: partition %d offset %d)", *ex.Partition, *ex.Offset)
			}
			fmt.Fprintln(w, line)
		}
	}
}

// writeMetricsFile writes the registry's metrics in the Prometheus text format.
func writeMetricsFile(reg *prometheus.Registry, path string) error {
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("--metrics-file: %w", err)
	}
	return nil
}

// verifyRepair requests an on-demand snapshot of the missing and differing keys of each
// table that differs, through the same path as cdcd snapshot. Extra keys cannot be repaired
// by a snapshot (there is no row to read): they are named for the operator.
func verifyRepair(ctx context.Context, p *config.Pipeline, rep *verify.Report, stdout io.Writer) error {
	for _, t := range rep.Tables {
		if t.Extra > 0 {
			fmt.Fprintf(stdout, "%s: %d extra key(s) have no row to snapshot; delete them from the topic with tombstones if they must go\n", t.Table, t.Extra)
		}
		if t.Unrepairable > 0 {
			fmt.Fprintf(stdout, "%s: %d missing or different key(s) cannot be named in a snapshot condition (%s); fix: snapshot the whole table: cdcd snapshot --config FILE --pipeline %s --table %s\n",
				t.Table, t.Unrepairable, t.UnrepairableReason, p.Name, t.Table)
		}
		if t.Error != "" || len(t.RepairKeys) == 0 {
			continue
		}
		pipeline := p.Name
		var ids []string
		for _, cond := range verify.RepairConditions(t.KeyColumns, t.RepairKeys) {
			if err := checkSnapshotRequest(p, cond); err != nil {
				return fmt.Errorf("requesting the repair snapshot of %s: %w", t.Table, err)
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var id string
			var err error
			if my := p.Source.MySQL; my != nil {
				id, err = mysql.RequestSnapshot(rctx, my.DSN, p.SignalKey(), signalTable(my), pipeline, t.Table, cond)
			} else {
				id, err = postgres.RequestSnapshot(rctx, p.Source.Postgres.DSN, p.SignalKey(), pipeline, t.Table, cond)
			}
			cancel()
			if err != nil {
				return fmt.Errorf("requesting the repair snapshot of %s: %w", t.Table, err)
			}
			ids = append(ids, id)
		}
		id := strings.Join(ids, ", ")
		fmt.Fprintf(stdout, "%s: snapshot of %d key(s) requested (request %s); pipeline %s reads them while it streams\n", t.Table, len(t.RepairKeys), id, pipeline)
	}
	return nil
}
