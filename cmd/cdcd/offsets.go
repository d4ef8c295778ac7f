package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// resetOffsetsCommand forgets a pipeline's committed position, so its next start follows the
// replication slot from where the slot is. It writes a tombstone for the pipeline in the
// offsets topic inside a transaction of the pipeline's own transactional id, which also fences
// a running instance of the pipeline (it restarts and sees the reset).
func resetOffsetsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cdcd reset-offsets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	name := fs.String("pipeline", "", "pipeline whose committed position to forget")
	if err := fs.Parse(args); err != nil || *path == "" || *name == "" {
		fmt.Fprintln(stderr, "usage: cdcd reset-offsets --config FILE --pipeline NAME")
		return &exitError{2, errUsageShown}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return &exitError{1, err}
	}
	found := false
	for _, p := range cfg.Pipelines {
		found = found || p.Name == *name
	}
	if !found {
		return fmt.Errorf("no pipeline named %q in %s", *name, *path)
	}
	opts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	prev, had, err := offsets.Load(ctx, opts, cfg.Kafka.OffsetsTopic, *name)
	if err != nil {
		return err
	}
	if !had {
		fmt.Fprintf(stdout, "pipeline %s has no committed position; nothing to reset\n", *name)
		return nil
	}
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID(pipeline.TransactionalID(*name)),
		kgo.TransactionTimeout(cfg.Kafka.TransactionTimeout.D))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Kafka.OffsetsTopic, Key: []byte(*name), Partition: 0}).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("writing the reset: %w", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing the reset: %w", err)
	}
	fmt.Fprintf(stdout, "pipeline %s: forgot committed position %s (acknowledged LSN %X/%X); its next start follows the slot\n",
		*name, prev.Pos, uint32(prev.AckLSN>>32), uint32(prev.AckLSN))
	return nil
}
