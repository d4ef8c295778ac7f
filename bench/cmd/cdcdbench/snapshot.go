package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// snapshot is scenario 3: an initial snapshot of -snapshot-rows existing rows by cdcd
// (`snapshot: initial`) and by Debezium (snapshot.mode=initial), with `COPY ... TO STDOUT
// (FORMAT binary)` to /dev/null as the limit. All three read the same table.
func (s *suite) snapshot(ctx context.Context) {
	o := s.o
	sc := s.add(&scenarioResult{ID: "3", Kind: "throughput", Title: fmt.Sprintf("initial snapshot of %s rows", human(o.snapRows))})
	name := safeName(fmt.Sprintf("bench_%s_snap", s.stamp))
	db := "cdcdbench_" + name
	var topics []string
	defer func() { s.cleanupPG(ctx, db, topics) }()
	err := func() error {
		if err := createDatabase(ctx, o.pgDSN, db); err != nil {
			return err
		}
		dsn, err := dbDSN(o.pgDSN, db)
		if err != nil {
			return err
		}
		logf("snapshot: writing %d rows", o.snapRows)
		if _, err := writeBacklog(ctx, dsn, backlogFirstID, o.snapRows, 10_000); err != nil {
			return err
		}
		if err := execSQL(ctx, dsn, "VACUUM ANALYZE public."+benchTable); err != nil {
			return err
		}
		if o.profiling {
			return nil
		}
		logf("snapshot: limit: COPY (FORMAT binary) to /dev/null")
		sc.Limit = copyLimit(ctx, dsn, o.snapRows)
		logResult(sc, sc.Limit)
		return nil
	}()
	if err != nil {
		sc.CDCD, sc.Debezium = failed("cdcd", err), failed("Debezium", err)
		return
	}

	// cdcd: only when this build accepts `snapshot: initial`.
	cname := name + "_c"
	t, err := s.pgTool("cdcd", cname, db, "initial")
	if err != nil {
		sc.CDCD = failed("cdcd", err)
	} else {
		topics = append(topics, t.topic())
		ct := t.(*cdcdTool)
		refusal, err := cdcdRefuses(ctx, o, s.dir, cname, ct.cfgExcerpt)
		switch {
		case err != nil:
			sc.CDCD = failed("cdcd", err)
		case refusal != "" && strings.Contains(refusal, "snapshot"):
			sc.CDCD = notBuilt("cdcd", "`cdcd validate` refuses `snapshot: initial`: "+lineWith(refusal, "snapshot"))
		case refusal != "":
			sc.CDCD = failed("cdcd", fmt.Errorf("cdcd validate: %s", refusal))
		default:
			logf("snapshot: cdcd")
			sc.CDCD = measureCatchupOf(ctx, o, t, backlogFirstID, o.snapRows, max(o.catchupTimeout, 15*time.Minute))
			s.noteSettings(t, "snapshot")
			t.stop()
		}
		logResult(sc, sc.CDCD)
		if sc.CDCD.ok() && sc.Limit.ok() && ctx.Err() == nil {
			kt := name + "_kafka"
			topics = append(topics, kt)
			logf("snapshot: Kafka's own limit: a bare transactional producer")
			note, rate := kafkaLimitNote(ctx, o.kafka, kt, sc.CDCD, sc.Limit)
			sc.Notes, sc.KafkaLimit = append(sc.Notes, note), rate
		}
	}
	if o.noDebezium || ctx.Err() != nil {
		return
	}
	dname := name + "_d"
	t, err = s.pgTool("Debezium", dname, db, "initial")
	if err != nil {
		sc.Debezium = failed("Debezium", err)
		return
	}
	topics = append(topics, t.topic(), "__debezium-heartbeat."+dname)
	logf("snapshot: Debezium")
	sc.Debezium = measureCatchupOf(ctx, o, t, backlogFirstID, o.snapRows, max(o.catchupTimeout, 15*time.Minute))
	s.noteSettings(t, "snapshot")
	t.stop()
	logResult(sc, sc.Debezium)
}

// copyLimit reads the whole table with COPY (FORMAT binary) and discards it: what the server
// can hand out on one connection.
func copyLimit(ctx context.Context, dsn string, rows int) *toolResult {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return failed("COPY binary", err)
	}
	defer c.Close(context.Background())
	cw := &countWriter{}
	t0 := time.Now()
	tag, err := c.PgConn().CopyTo(ctx, cw, "COPY public."+benchTable+" TO STDOUT (FORMAT binary)")
	took := time.Since(t0)
	if err != nil {
		return failed("COPY binary", err)
	}
	return &toolResult{Tool: "COPY binary", Rows: int(tag.RowsAffected()), Took: took, Bytes: cw.n, CPU: -1,
		Notes: []string{"one connection, client discards the bytes; server CPU not counted"}}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// lineWith is the first line of s that contains sub (or its first line).
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return firstLine(s)
}

// kafkaLimitNote measures what the broker accepts on this machine from a bare transactional
// producer writing as many records as cdcd did, of cdcd's average size, in 10,000-record
// transactions to a 3-partition topic (cdcd's batch and partitions), nothing else running:
// what any snapshot into Kafka here could reach at best. It compares that with half of COPY.
// It returns the note and the producer's rows/s (0 if it failed).
func kafkaLimitNote(ctx context.Context, broker, topic string, cdcd, copyLimit *toolResult) (string, float64) {
	size := int(cdcd.Bytes / int64(max(cdcd.Rows, 1)))
	rate, cpu, err := kafkaProduceLimit(ctx, broker, topic, cdcd.Rows, max(size, 16))
	if err != nil {
		return "Kafka's own limit: " + err.Error(), 0
	}
	half := copyLimit.rowsPerSec() / 2
	verdict := "above half of COPY"
	if rate < half {
		verdict = fmt.Sprintf("below half of COPY (%.0f rows/s): on this machine no snapshot into Kafka reaches that", half)
	}
	return fmt.Sprintf("Kafka's own limit: a bare transactional producer (franz-go, no source, no encoding) wrote %d pre-built records of cdcd's average size (%d bytes) in 10,000-record transactions to a 3-partition topic at %.0f rows/s (%.1f CPU s in the producer): %s; cdcd reached %.0f%% of it",
		cdcd.Rows, size, rate, cpu, verdict, 100*cdcd.rowsPerSec()/rate), rate
}

func kafkaProduceLimit(ctx context.Context, broker, topic string, rows, size int) (rate, cpu float64, err error) {
	if err := createTopic(ctx, broker, topic, 3); err != nil {
		return 0, 0, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.TransactionalID(topic), kgo.DefaultProduceTopic(topic),
		kgo.MaxBufferedRecords(20_000), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var m cpuMeter
	m.attach(os.Getpid())
	value := make([]byte, max(size-8, 1))
	t0 := time.Now()
	for sent := 0; sent < rows; {
		if err := cl.BeginTransaction(); err != nil {
			return 0, 0, err
		}
		for n := 0; n < 10_000 && sent < rows; n, sent = n+1, sent+1 {
			key := binary.BigEndian.AppendUint64(nil, uint64(sent))
			cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return 0, 0, err
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return 0, 0, err
		}
	}
	took := time.Since(t0)
	m.read()
	return float64(rows) / took.Seconds(), m.used(), nil
}
