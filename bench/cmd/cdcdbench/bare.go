package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// barePipeline is the latency limit of the Kafka side: the bare slot consumer's rows go on to
// Kafka with nothing else in between (no decoding beyond pgoutput's text, no Avro, no
// registry, no batching policy). A second goroutine takes whatever arrived since its last
// round and produces one JSON record per row (key {"id":n}, value an envelope with after.c,
// padded to cdcd's average record size). Transactional, each round is one Kafka transaction
// with a position record in a second topic, as cdcd's sink does for exactly-once; otherwise
// the records are only produced (acks=all, idempotent), as a tool without transactions does.
// Its latency is measured like the tools': by a read_committed consumer of its topic.
type barePipeline struct {
	txn      bool
	cl       *kgo.Client
	topic    string
	posTopic string
	pad      string

	mu      sync.Mutex
	pending []bareRow
	wake    chan struct{}
	rounds  int
}

type bareRow struct {
	id int64
	c  time.Time // the row's column c (its insert's clock_timestamp())
}

// bareRecordBytes is about the size of cdcd's records of the benchmark table (key + value).
const bareRecordBytes = 220

func (b *barePipeline) label() string {
	if b.txn {
		return "bare slot consumer → Kafka, transactional"
	}
	return "bare slot consumer → Kafka, no transactions"
}

func (b *barePipeline) add(id int64, c time.Time) {
	b.mu.Lock()
	b.pending = append(b.pending, bareRow{id, c})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run produces what arrives until ctx ends or a produce fails.
func (b *barePipeline) run(ctx context.Context) error {
	var batch []bareRow
	var ferr error
	var errMu sync.Mutex
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			errMu.Lock()
			ferr = errors.Join(ferr, err)
			errMu.Unlock()
		}
	}
	failedProduce := func() error {
		errMu.Lock()
		defer errMu.Unlock()
		return ferr
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		}
		if err := failedProduce(); err != nil {
			return err // without transactions, a failed record is seen at the next round
		}
		b.mu.Lock()
		batch, b.pending = b.pending, batch[:0]
		b.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if b.txn {
			if err := b.cl.BeginTransaction(); err != nil {
				return err
			}
		}
		var last int64
		for _, r := range batch {
			if r.c.IsZero() {
				return fmt.Errorf("row %d: column c could not be read as a timestamptz in pgoutput's text format", r.id)
			}
			v, _ := json.Marshal(map[string]any{"after": map[string]string{"c": r.c.Format(time.RFC3339Nano)}, "pad": b.pad})
			b.cl.Produce(ctx, &kgo.Record{Topic: b.topic, Key: fmt.Appendf(nil, `{"id":%d}`, r.id), Value: v}, promise)
			last = r.id
		}
		if !b.txn {
			continue // the producer sends on; nothing waits for it here
		}
		b.cl.Produce(ctx, &kgo.Record{Topic: b.posTopic, Key: []byte("bare"), Value: fmt.Appendf(nil, "%d", last)}, promise)
		if err := b.cl.Flush(ctx); err != nil {
			return err
		}
		if err := failedProduce(); err != nil {
			return err
		}
		if err := b.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return err
		}
		b.mu.Lock()
		b.rounds++
		b.mu.Unlock()
	}
}

// measureBare is measureProbe with the bare pipeline after the probe: the same load, latency
// from the insert to a read_committed consumer's receipt.
func measureBare(ctx context.Context, o options, dsn, slot, publication string, firstID int64, rate, txRows int, txn bool) *toolResult {
	b := &barePipeline{txn: txn, topic: slot, posTopic: slot + "_pos", wake: make(chan struct{}, 1)}
	tool := b.label()
	b.pad = strings.Repeat("x", max(0, bareRecordBytes-90))
	admCl, err := kgo.NewClient(kgo.SeedBrokers(o.kafka))
	if err != nil {
		return failed(tool, err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, b.topic, b.posTopic)
	}()
	// As cdcd's topics in this scenario: 3 partitions for the rows, one for positions.
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, b.topic); err != nil {
		return failed(tool, fmt.Errorf("creating topic %s: %w", b.topic, err))
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, b.posTopic); err != nil {
		return failed(tool, fmt.Errorf("creating topic %s: %w", b.posTopic, err))
	}
	opts := []kgo.Opt{kgo.SeedBrokers(o.kafka), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))}
	if txn {
		opts = append(opts, kgo.TransactionalID(slot))
	}
	if b.cl, err = kgo.NewClient(opts...); err != nil {
		return failed(tool, err)
	}
	defer b.cl.Close()
	if txn {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, _, err = b.cl.ProducerID(ictx)
		cancel()
		if err != nil {
			return failed(tool, fmt.Errorf("initializing the transactional producer: %w", err))
		}
	}

	wr := &latencyWriter{dsn: dsn, firstID: firstID, rate: rate, dur: o.latDur, conns: o.latConns, txRows: txRows, hardStop: true}
	n := wr.total()
	lc, err := newLatencyConsumer(ctx, o.kafka, o.registry, b.topic, firstID, n, formatJSON)
	if err != nil {
		return failed(tool, err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.latDur+2*time.Minute)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- lc.run(cctx) }()
	produced := make(chan error, 1)
	go func() { produced <- b.run(cctx) }()
	p := &slotProbe{firstID: firstID, n: n, bare: b}
	ready := make(chan struct{})
	probed := make(chan error, 1)
	go func() { probed <- p.run(cctx, dsn, slot, publication, ready) }()
	select {
	case <-ready:
	case err := <-probed:
		return failed(tool, err)
	}
	time.Sleep(500 * time.Millisecond) // the consumer's first fetch
	gc0, gcAt := sampleBrokerGC(ctx, o.kafkaPID), time.Now()
	// The machine's CPU split, as in cdcd's phases: the broker's and PostgreSQL's share under
	// the bare pipeline's load, beside theirs under cdcd's.
	w := watchProc(os.Getpid(), false, "harness (bare pipeline, writer, consumer)")
	defer w.finish()
	if err := wr.run(ctx); err != nil {
		return failed(tool, err)
	}
	acked := wr.acked()
	deadline := time.After(30 * time.Second)
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
wait:
	for lc.received() < acked {
		select {
		case err := <-produced:
			if err == nil {
				err = errors.New("producer stopped")
			}
			return failed(tool, err)
		case err := <-probed:
			if err != nil {
				return failed(tool, err)
			}
		case <-tk.C:
		case <-deadline:
			break wait
		}
	}
	gcNote := brokerGCNote(gc0, sampleBrokerGC(ctx, o.kafkaPID), time.Since(gcAt))
	w.finish()
	cancel()
	<-consumed
	if got := lc.received(); got < acked {
		return failed(tool, fmt.Errorf("only %d of %d rows arrived", got, acked))
	}
	r := &toolResult{Tool: tool, Rows: acked, Took: wr.finished.Sub(wr.started), CPU: -1, Machine: w.machine()}
	r.Achieved = float64(acked) / r.Took.Seconds()
	if n := w.loadNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	r.setLatencies(lc.recv, lc.srcTime, wr.ack)
	if lc.decodeEr != nil {
		r.Notes = append(r.Notes, "decode error: "+lc.decodeEr.Error())
	}
	r.Notes = append(r.Notes, r.writerNotes(wr.late)...)
	if txn {
		b.mu.Lock()
		rounds := b.rounds
		b.mu.Unlock()
		r.Notes = append(r.Notes, fmt.Sprintf("franz-go in the harness, JSON records of ~%d bytes, 3 partitions; %d Kafka transactions (%.1f rows each), each with a position record, committed one after another as cdcd does", bareRecordBytes, rounds, float64(acked)/float64(max(rounds, 1))))
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("franz-go in the harness, JSON records of ~%d bytes, 3 partitions, idempotent producer, linger 0: what Kafka gives without transactions", bareRecordBytes))
	}
	if acked < n {
		r.Notes = append(r.Notes, fmt.Sprintf("the writer reached only %d of %d rows within %s (+5 s)", acked, n, o.latDur))
	}
	if gcNote != "" {
		r.Notes = append(r.Notes, gcNote)
	}
	return r
}
