package main

import (
	"context"
	"fmt"
	"time"
)

// A freshly started broker compiles its hot paths (HotSpot's JIT) for minutes, on the cores
// the steady phases need, and each tool's traffic takes paths of its own: after a restart,
// 180 s of synthetic small transactions left the broker's compiler quiet, and cdcd's first
// phase still set it compiling 12 s of the phase's 20 (the broker at 0.79 of a core, cdcd's
// p99 297 ms against 24–29 ms on a broker that had run for hours). Whichever tool ran first
// paid for it; the bare pipelines, run last, never did. Nor is the writer's traffic enough:
// after a warm-up of cdcd's own load without a consumer, the first measured phase still had
// the broker compiling 10 s of its 20, for the phase's read_committed consumer, and each new
// rate or shape set it compiling again (4–8 s). So before its first steady phase each tool
// runs every steady phase's load in turn, read back as the phases read it, unmeasured, until a
// whole cycle of them leaves the broker's compiler quiet.

// warmupChunk is one round of the warm-up load; jitSettled is the compiler time below which a
// round counts as settled.
const (
	warmupChunk = 10 * time.Second
	jitSettled  = 0.5 // seconds of compilation in one round
)

// The catch-up (scenario 1) meets the same: the first tool to catch up on a broker that had
// carried no traffic since it started paid for its compilation (cdcd's catch-up at 144.8k
// rows/s on a broker started a minute before, 165k on one idle for 12 minutes, 187k on one
// that had run the suite before), and the tools after it never did. So before its catch-up
// each tool, running, streams rounds of catchupWarmupRows rows written as fast as PostgreSQL
// takes them, read back read_committed, until two rounds in a row leave the broker's compiler
// quiet; the tool is then stopped and its measured backlog written.

// catchupWarmupRows is one round of the catch-up warm-up.
const catchupWarmupRows = 200_000

// toolWarmup is what a tool's warm-up did.
type toolWarmup struct {
	catchup  bool // before the catch-up (else before the steady phases)
	took     time.Duration
	rounds   int
	jitS     float64 // the broker's compiler seconds during the warm-up (jitKnown: it was read)
	lastJIT  float64 // in the last round
	settled  bool
	jitKnown bool
	// slotLag: bytes of the warm-up's WAL the tool's slot would still decode again (catch-up)
	slotLag int64
}

func (w *toolWarmup) String() string {
	s := fmt.Sprintf("%s of its own steady loads, read back as the phases read them (%d rounds of %s, one phase's load each in turn), before its first steady phase", w.took.Round(time.Second), w.rounds, warmupChunk)
	if w.catchup {
		s = fmt.Sprintf("%s streaming rows written as fast as PostgreSQL took them, read back read_committed (%d rounds of %s rows), before its catch-up", w.took.Round(time.Second), w.rounds, human(catchupWarmupRows))
	}
	if w.slotLag > 0 {
		s += fmt.Sprintf("; **its slot's restart_lsn stayed %.1f MB behind the warm-up's end**, which the catch-up decoded again", float64(w.slotLag)/1e6)
	}
	switch {
	case !w.jitKnown:
		s += "; the broker's compiler could not be read (-kafka-pid), so it ran its longest"
	case w.settled:
		s += fmt.Sprintf("; the broker's JIT compiled for %.1f s in it, and under %.1f s in each of the last cycle's rounds (settled)", w.jitS, jitSettled)
	default:
		s += fmt.Sprintf("; **the broker's JIT had not settled**: %.1f s of compilation in all, %.2f s in the last round", w.jitS, w.lastJIT)
	}
	return s
}

// warmUntilSettled runs round(ctx, i) (one warmupChunk of load each) until cycle rounds in a
// row each leave the broker's compiler under jitSettled seconds, or until limit. jit reads the
// compiler's cumulative seconds (ok false: unknown, and the warm-up runs until limit).
func warmUntilSettled(ctx context.Context, limit time.Duration, cycle int, jit func() (float64, bool), round func(ctx context.Context, i int) error) (*toolWarmup, error) {
	w := &toolWarmup{}
	start := time.Now()
	j0, ok := jit()
	w.jitKnown = ok
	quiet := 0
	for w.took < limit && ctx.Err() == nil {
		if err := round(ctx, w.rounds); err != nil {
			return w, err
		}
		w.rounds++
		w.took = time.Since(start)
		j1, ok := jit()
		if !ok || !w.jitKnown {
			w.jitKnown = false
			continue
		}
		w.lastJIT, w.jitS = j1-j0, w.jitS+j1-j0
		j0 = j1
		if quiet++; w.lastJIT >= jitSettled {
			quiet = 0
		}
		if quiet >= max(cycle, 1) {
			w.settled = true
			break
		}
	}
	return w, ctx.Err()
}

// brokerJIT reads the broker's cumulative compiler seconds.
func brokerJIT(ctx context.Context, pid int) (float64, bool) {
	ok, _, secs := sampleBrokerJIT(ctx, pid)
	return secs, ok
}

// warmRound runs one round of a tool's warm-up: wr's load, read back by a read_committed
// consumer as a steady phase reads it; the round ends when the rows are in or 30 s after the
// writer.
func warmRound(ctx context.Context, o options, t streamTool, wr *latencyWriter) error {
	lc, err := newLatencyConsumer(ctx, o.kafka, o.registry, t.topic(), wr.firstID, wr.total(), t.format())
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- lc.run(cctx) }()
	if err := wr.run(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for lc.received() < wr.acked() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-consumed
	return nil
}

// catchupWarmRound writes n rows in txRows-row transactions while t runs, as fast as
// PostgreSQL takes them, and waits until a read_committed consumer has read them all from t's
// topic.
func catchupWarmRound(ctx context.Context, o options, t streamTool, dsn string, firstID int64, n, txRows int) error {
	c := &idCounter{topic: t.topic(), format: t.format(), firstID: firstID, n: n}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := startIDCounter(cctx, o.kafka, c, true, 3*time.Minute)
	if _, err := writeBacklog(ctx, dsn, firstID, n, txRows); err != nil {
		cancel()
		<-done
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("%s: %w", t.label(), err)
	}
	return nil
}
