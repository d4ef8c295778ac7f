package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/jackc/pglogrepl"
)

// resetOffsets forgets a pipeline's committed position, so its next start follows the
// replication slot from where the slot is. It writes a tombstone for the pipeline in the
// offsets topic inside a transaction of the pipeline's own transactional id, which also fences
// a running instance of the pipeline (it restarts and sees the reset).
//
// With --accept-slot LSN it keeps the committed position and only accepts that the slot was
// confirmed up to LSN (the answer to a gap the pipeline refused): the pipeline then follows
// the slot and still drops what Kafka already holds, so nothing is published twice. Forgetting
// the position instead republishes whatever the slot resends (a crash between the Kafka commit
// and the slot's confirmation, or the published part of a split transaction).
func resetOffsets(ctx context.Context, path, name, acceptSlot string, stdout io.Writer) error {
	var accept uint64
	if acceptSlot != "" {
		lsn, err := pglogrepl.ParseLSN(acceptSlot)
		if err != nil {
			return &exitError{2, fmt.Errorf("--accept-slot %q: %w (fix: give the LSN the gap error names, e.g. 0/16B3748)", acceptSlot, err)}
		}
		accept = uint64(lsn)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return &exitError{1, err}
	}
	found := false
	for _, p := range cfg.Pipelines {
		found = found || p.Name == name
	}
	if !found {
		return fmt.Errorf("no pipeline named %q in %s", name, path)
	}
	opts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	prev, had, err := offsets.Reset(ctx, opts, cfg.Kafka.OffsetsTopic, name, pipeline.TransactionalID(name), cfg.Kafka.TransactionTimeout.D, accept)
	if err != nil {
		return err
	}
	if !had {
		fmt.Fprintf(stdout, "pipeline %s has no committed position; nothing to reset\n", name)
		return nil
	}
	if accept > 0 {
		fmt.Fprintf(stdout, "pipeline %s: kept committed position %s and accepted the slot's position %s (was %s); its next start follows the slot and drops what Kafka already holds\n",
			name, prev.Pos, pglogrepl.LSN(max(prev.AckPosition, accept)), pglogrepl.LSN(prev.AckPosition))
		return nil
	}
	fmt.Fprintf(stdout, "pipeline %s: forgot committed position %s (acknowledged LSN %s); its next start follows the slot, and publishes again whatever the slot still holds from before that position (use --accept-slot to keep the position instead)\n",
		name, prev.Pos, pglogrepl.LSN(prev.AckPosition))
	return nil
}
