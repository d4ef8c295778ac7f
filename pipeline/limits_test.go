package pipeline

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kgo"
)

var blobTable = &change.Table{Database: "db", Schema: "public", Name: "blobs", Version: 1,
	Columns:    []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "body", Kind: change.KindString}},
	KeyColumns: []int{0}}

// The producer's batch limit used to be the larger of the record and dead-letter limits for
// every topic, while a data topic accepts only its max.message.bytes (~1 MiB). franz-go does
// not split a batch the broker refuses, so under a backlog healthy records were refused as
// MESSAGE_TOO_LARGE and dead-lettered. Batches are now limited per topic: a backlog of rows
// each just under the topic's limit all commit to the data topic.
func TestBacklogJustUnderTopicLimitCommits(t *testing.T) {
	c, reg := newFakes(t)
	const rows = 12
	rng := rand.New(rand.NewPCG(11, 12))
	var tx []change.Event
	for i := range rows {
		// Incompressible, so batches stay as large as their records; each record fits the
		// topic's 1 MiB limit on its own.
		b := make([]byte, 780_000)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		body := base64.StdEncoding.EncodeToString(b)
		tx = append(tx, change.Event{Op: change.OpCreate, Table: blobTable,
			After: []change.Value{{Int: int64(i)}, {Str: body}}, Pos: change.Position{Tx: lsnOf(0), Index: uint32(i)}, CommitTime: time.Now()})
	}
	src := &fakeSource{txs: [][]change.Event{tx}, start: 50}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)
	p.cfg.Sink.TopicPartitions = 1 // every record in one partition: the producer batches them
	p.cfg.Sink.BatchMaxBytes = 64 << 20
	p.cfg.Sink.DeadLetter, p.cfg.Sink.DLQTopic, p.cfg.Sink.DLQMaxMessageBytes = true, "p.dlq", 16<<20

	done, stop := runPipeline(p)
	waitFor(t, "the transaction acknowledged", done, func() bool { return src.acked.Load() >= lsnOf(0)+1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, c.ListenAddrs(), "p.public.blobs", rows)); got != rows {
		t.Fatalf("data topic holds %d records, want %d", got, rows)
	}
	if n := countRecords(t, c.ListenAddrs(), "p.dlq"); n != 0 {
		t.Fatalf("%d healthy records were dead-lettered as too large", n)
	}
}

// countRecords counts the committed records of topic (0 when it does not exist).
func countRecords(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := 0
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(*kgo.Record) { n++ })
	}
	return n
}
