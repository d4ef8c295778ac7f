package publish

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func newSink(t *testing.T, cfg Config) (*Sink, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "p"}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline, cfg.KafkaOpts, cfg.OffsetsTopic = "p", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "_cdcd_offsets"
	cfg.TransactionTimeout, cfg.MaxMessageBytes, cfg.TopicPartitions, cfg.TopicReplication = 10*time.Second, 1<<20, 1, 1
	cfg.ExactlyOnce, cfg.BatchMaxEvents, cfg.BatchMaxBytes, cfg.BatchInterval = true, 100, 1<<20, time.Millisecond
	ctx := context.Background()
	s, err := Open(ctx, cfg, NewMemory(), enc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	rec, _, err := s.Fence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Resume(rec)
	return s, c
}

// A dead letter carries every named header, in the batch's transaction with its position.
func TestDeadLetterHeaders(t *testing.T) {
	var acked uint64
	s, c := newSink(t, Config{DeadLetter: true, DLQTopic: "p.dlq", DLQMaxMessageBytes: 1 << 20, Version: "v-test",
		Ack: func(lsn uint64) { acked = lsn }})
	money := &change.Table{Schema: "public", Name: "money", Version: 1,
		Columns:    []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "amount", Kind: change.KindDecimal, Precision: 5, Scale: 2}},
		KeyColumns: []int{0}}
	ctx := context.Background()
	pos := change.Position{Tx: 100, Index: 0}
	if err := s.Add(ctx, &change.Item{Event: change.Event{Op: change.OpCreate, Table: money,
		After: []change.Value{{Int: 7}, {Str: "123456.789"}}, Pos: pos}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: 100, Index: 1}, AckLSN: 101}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if acked != 101 {
		t.Errorf("acked %d after the commit, want 101", acked)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("p.dlq"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got *kgo.Record
	for got == nil && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got = r })
	}
	if got == nil {
		t.Fatal("no dead letter")
	}
	h := map[string]string{}
	for _, x := range got.Headers {
		h[x.Key] = string(x.Value)
	}
	want := map[string]string{HeaderErrorClass: "value_not_representable", HeaderPipeline: "p", HeaderSourceTable: "public.money",
		HeaderSourcePosition: pos.String(), HeaderTopic: "p.public.money", HeaderSchemaSubject: "p.public.money-value", HeaderVersion: "v-test"}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if h[HeaderErrorMessage] == "" || h[HeaderTime] == "" {
		t.Errorf("headers %v lack the message or time", h)
	}
}

// The producer's batch cap for a topic is the limit learned for that topic before its first
// record (not one limit for every topic).
func TestBatchLimitPerTopic(t *testing.T) {
	s, c := newSink(t, Config{})
	ctx := context.Background()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("300000")}, "small"); err != nil {
		t.Fatal(err)
	}
	if l, err := s.topicLimit(ctx, "small"); err != nil || l != 300000 {
		t.Fatalf("topicLimit(small) = %d, %v", l, err)
	}
	if got := s.batchLimit("small"); got != 300000 {
		t.Errorf("batch cap of small = %d, want 300000", got)
	}
	if got := s.batchLimit("never-seen"); got != 1<<20 {
		t.Errorf("batch cap of an unknown topic = %d, want kafka.max_message_bytes", got)
	}
}
