package offsets

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reset changes pipeline's committed position in topic, as cdcd reset-offsets does. With
// acceptAck 0 it forgets the position (a tombstone): the pipeline's next start follows the
// source from where the source is. With acceptAck > 0 it keeps the position and records that
// the source was acknowledged up to acceptAck (never lowering AckPosition), the answer to a gap the
// pipeline refused: nothing already in Kafka is published again.
//
// It writes in a transaction of the pipeline's own transactionalID, which fences a running
// instance of the pipeline (it restarts and reads the new record) and aborts a transaction it
// left open. It returns the position it replaced; had is false, and nothing is written, when
// the pipeline has no committed position.
func Reset(ctx context.Context, opts []kgo.Opt, topic, pipeline, transactionalID string, txTimeout time.Duration, acceptAck uint64) (prev Record, had bool, err error) {
	return reset(ctx, opts, topic, pipeline, transactionalID, txTimeout, acceptAck, nil)
}

// reset is Reset; loaded, if set, runs after it has read the position it replaces (a test
// commits a newer position there, as a running instance could).
func reset(ctx context.Context, opts []kgo.Opt, topic, pipeline, transactionalID string, txTimeout time.Duration, acceptAck uint64, loaded func()) (prev Record, had bool, err error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.TransactionalID(transactionalID), kgo.TransactionTimeout(txTimeout))...)
	if err != nil {
		return prev, had, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	// Fence first: once this client holds the transactional ID's epoch, a running instance can
	// no longer commit, so the position read next is the last one it will ever have written.
	// Read before fencing, a commit landing in between would be overwritten by the older
	// position read here (republishing, or with accept, skipping, what it covered).
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return prev, had, fmt.Errorf("fencing pipeline %s's running instance (transactional id %s): %w", pipeline, transactionalID, err)
	}
	prev, had, err = Load(ctx, opts, topic, pipeline)
	if loaded != nil {
		loaded()
	}
	if err != nil || !had {
		return prev, had, err
	}
	if err := cl.BeginTransaction(); err != nil {
		return prev, had, err
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(pipeline), Partition: 0}
	if acceptAck > 0 {
		next := prev
		next.AckPosition, next.WrittenAt = max(prev.AckPosition, acceptAck), time.Now().UTC()
		rec = next.KafkaRecord(topic, pipeline)
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return prev, had, fmt.Errorf("writing the reset: %w", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return prev, had, fmt.Errorf("committing the reset: %w", err)
	}
	return prev, had, nil
}
