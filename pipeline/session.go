package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/publish"
	"golang.org/x/sync/errgroup"
)

// session is one connected run: a source stream into a Kafka sink. It ends at the first
// error; the supervisor starts a new one. Its two stages (the source's stream, the sink loop)
// run under one errgroup, so the session returns only when both have ended.
func (p *Pipeline) session(ctx context.Context) error {
	p.setHealth(false, "starting", "connecting")
	sink, err := publish.Open(ctx, p.sinkConfig(), p.mem, p.enc)
	if err != nil {
		return err
	}
	defer sink.Close()
	// Read once before the source starts (it needs to know whether the pipeline committed
	// before, and what), and once more after fencing, which reads only what older instances
	// committed in between (see publish.Sink.Fence).
	first, hasFirst, err := sink.ReadCommitted(ctx)
	if err != nil {
		return err
	}

	// The source runs under its own context: on shutdown the batch is committed first, then
	// the source is stopped so its last status update carries the final acknowledgement.
	srcCtx, stopSrc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSrc()
	items := make(chan []change.Item, 16)
	streaming := make(chan change.Streaming, 1)
	srcDone := make(chan struct{})
	var srcErr error // set before srcDone closes
	var g errgroup.Group
	g.Go(func() error {
		defer close(srcDone)
		srcErr = p.src.Run(srcCtx, change.Resume{Committed: hasFirst, Pos: first.Pos, AckPosition: first.AckPosition, State: first.Snapshot,
			OnStreaming: func(st change.Streaming) { streaming <- st }}, items)
		return nil // the sink loop watches srcDone and reports the source's error
	})
	g.Go(func() error {
		defer stopSrc()
		return p.sinkLoop(ctx, sink, first, hasFirst, items, streaming, srcDone, &srcErr)
	})
	return g.Wait()
}

// sinkLoop waits for the source to hold its stream, fences older producers, checks the
// committed state against the slot, and then publishes the source's items until ctx ends
// (drain) or either stage fails.
func (p *Pipeline) sinkLoop(ctx context.Context, sink *publish.Sink, first offsets.Record, hasFirst bool, items <-chan []change.Item,
	streaming <-chan change.Streaming, srcDone <-chan struct{}, srcErr *error) error {
	sourceFailed := func() error {
		if *srcErr == nil {
			return sourceErr(errors.New("source stream ended"))
		}
		return sourceErr(*srcErr)
	}
	var stream change.Streaming
	select {
	case stream = <-streaming:
	case <-srcDone:
		return sourceFailed()
	case <-ctx.Done():
		return nil
	}

	// Only now, holding the stream, take over the transactional id.
	committed, hasCommitted, err := sink.Fence(ctx)
	if err != nil {
		return err
	}
	if hasCommitted && !hasFirst {
		// The source started as a new pipeline (a MySQL source at the server's current
		// position): it must start again from the committed position. The first read missed it
		// when a transaction of another producer was open in the offsets topic (see
		// publish.Sink.ReadCommitted), or an older instance committed its first position since.
		return fmt.Errorf("the position read at start-up did not show the pipeline's committed position %s (a transaction was still open in the offsets topic, or an older instance committed meanwhile); starting again from it", committed.Pos)
	}
	if committed, err = checkSlot(stream, committed, hasCommitted); err != nil {
		var ge *GapError
		if errors.As(err, &ge) {
			var herr error
			if ge.Hanging, herr = sink.FindHangingTransaction(ctx); herr != nil {
				p.log.Warn("could not check the offsets topic for a hanging transaction of this pipeline (needs Kafka 2.8+ and READ on the topic); if `kafka-transactions.sh find-hanging` lists one, the gap error below is its doing", "err", herr)
			}
		}
		return err
	}
	sink.Resume(committed)
	if committed.Pos.Compare(first.Pos) != 0 {
		if !bytes.Equal(committed.Snapshot, first.Snapshot) {
			// The source started from the snapshot progress it was given: begin again from
			// the newer one rather than re-read what the older instance published.
			return fmt.Errorf("an older instance committed snapshot progress after start-up (position %s); starting again from it", committed.Pos)
		}
		p.log.Info("an older instance committed after start-up; resuming after its position", "position", committed.Pos.String())
	}
	p.streamStarted()
	p.log.Info("pipeline streaming", "resume_after", committed.Pos.String(), "complete", committed.Complete)

	// The readiness watcher runs beside the loop and ends with it.
	var lastItem atomic.Int64
	wctx, stopWatch := context.WithCancel(ctx)
	var watch errgroup.Group
	watch.Go(func() error { p.watchReadiness(wctx, sink, time.Now(), &lastItem); return nil })
	defer func() { stopWatch(); _ = watch.Wait() }()

	for {
		if ctx.Err() == nil && len(items) == 0 && sink.AtBoundary() {
			// Nothing more waits: commit now (see Sink.AtBoundary).
			if err := sink.Commit(ctx); err != nil {
				return err
			}
			continue
		}
		select {
		case chunk := <-items:
			lastItem.Store(time.Now().UnixNano())
			for i := range chunk {
				if ctx.Err() != nil {
					break // shutting down: stop reading, drain what the batch holds
				}
				if err := sink.Add(ctx, &chunk[i]); err != nil {
					if ctx.Err() != nil {
						// Failed because of the shutdown: the open transaction is left to the
						// broker, which aborts it when the next instance fences this one.
						return nil
					}
					return err
				}
			}
			change.PutChunk(chunk)
			if sink.IntervalDue() {
				if err := sink.Commit(ctx); err != nil {
					return err
				}
			}
		case <-srcDone:
			return sourceFailed()
		case <-ctx.Done():
			sink.Drain()
			return nil
		}
	}
}

// checkSlot compares the slot's confirmed position with the committed state, and makes the
// slot's starting point part of that state.
//
// A new pipeline has no offsets record: its committed state starts at the slot's confirmed
// position, so even the partial offsets records of a first transaction that is split carry
// an ack_lsn the slot agrees with. Records written before that rule (ack_lsn 0 on a record
// that is not complete: the pipeline never finished a transaction) are accepted when the slot
// is not confirmed past the transaction they name: every transaction before it reached the
// pipeline first, so the slot moved over nothing the pipeline did not see.
func checkSlot(stream change.Streaming, committed offsets.Record, hasCommitted bool) (offsets.Record, error) {
	switch {
	case !hasCommitted:
		committed.AckPosition = stream.AckedPosition
	case committed.AckPosition == 0 && !committed.Complete && stream.AckedPosition <= committed.Pos.Tx:
		committed.AckPosition = stream.AckedPosition
	case stream.AckedPosition > committed.AckPosition:
		return committed, &GapError{AckedPosition: stream.AckedPosition, Committed: committed}
	}
	return committed, nil
}
