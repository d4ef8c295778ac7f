package publish

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func newSink(t testing.TB, cfg Config) (*Sink, *kfake.Cluster) {
	t.Helper()
	c, _ := newCluster(t)
	return openSink(t, c, cfg, NewMemory()), c
}

// newCluster starts an in-process Kafka and returns an admin client of it.
func newCluster(t testing.TB) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, kadm.NewClient(cl)
}

// openSink opens a sink (a session) on cluster c with the pipeline's memory mem.
func openSink(t testing.TB, c *kfake.Cluster, cfg Config, mem *Memory) *Sink {
	t.Helper()
	return openSinkClock(t, c, cfg, mem, nil)
}

// openSinkClock is openSink with the encoder's clock now (nil: time.Now).
func openSinkClock(t testing.TB, c *kfake.Cluster, cfg Config, mem *Memory, now func() time.Time) *Sink {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "p", Now: now}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline, cfg.KafkaOpts, cfg.OffsetsTopic = "p", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "_cdcd_offsets"
	cfg.TransactionTimeout, cfg.MaxMessageBytes, cfg.TopicPartitions, cfg.TopicReplication = 10*time.Second, 1<<20, 1, 1
	cfg.ExactlyOnce, cfg.BatchMaxEvents, cfg.BatchMaxBytes, cfg.BatchInterval = true, 100, 1<<20, time.Millisecond
	ctx := context.Background()
	s, err := Open(ctx, cfg, mem, enc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	rec, _, err := s.Fence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Resume(rec)
	return s
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
	if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: 100, Index: 1}, AckPosition: 101}}); err != nil {
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

// docsTx adds one source transaction of two creates to the sink, a small row and a large one
// (that does not compress: the broker measures batches as compressed), and commits it.
func docsTx(ctx context.Context, s *Sink) (small, large string, err error) {
	docs := &change.Table{Schema: "public", Name: "docs", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}, {Name: "body", Kind: change.KindString, Nullable: true}}}
	noise := make([]byte, 5_000)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	small, large = strings.Repeat("s", 100), hex.EncodeToString(noise)
	for i, body := range []string{small, large} {
		if err := s.Add(ctx, &change.Item{Event: change.Event{Op: change.OpCreate, Table: docs, Pos: change.Position{Tx: 7, Index: uint32(i)},
			After: []change.Value{{State: change.Present, Int: int64(i + 1)}, {State: change.Present, Str: body}}}}); err != nil {
			return small, large, err
		}
	}
	if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: 7, Index: 2}, AckPosition: 7}}); err != nil {
		return small, large, err
	}
	return small, large, s.Commit(ctx)
}

// readCommitted returns what topic holds, read_committed.
func readCommitted(t *testing.T, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	rcl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer rcl.Close()
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []*kgo.Record
	for rctx.Err() == nil {
		rcl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// checkOnlyLargeDeadLettered: the small row is in its topic once, the large one in the
// dead-letter topic, as record_too_large.
func checkOnlyLargeDeadLettered(t *testing.T, c *kfake.Cluster, small, large string) {
	t.Helper()
	if got := readCommitted(t, c, "p.public.docs"); len(got) != 1 || !strings.Contains(string(got[0].Value), small) {
		t.Errorf("p.public.docs holds %d records, want the small change alone", len(got))
	}
	letters := readCommitted(t, c, "p.dlq")
	if len(letters) != 1 || !strings.Contains(string(letters[0].Value), large) {
		t.Fatalf("p.dlq holds %d records, want the large change alone", len(letters))
	}
	for _, h := range letters[0].Headers {
		if h.Key == HeaderErrorClass && string(h.Value) != "record_too_large" {
			t.Errorf("dead letter class %s, want record_too_large", h.Value)
		}
	}
}

// When the broker refuses a producer batch as too large (MESSAGE_TOO_LARGE), every record in
// it fails, not only the large one. The next session must dead-letter only the record that is
// too large: a small change that shared its batch goes to its topic.
func TestBrokerRefusalDeadLettersOnlyTheLargeRecord(t *testing.T) {
	c, adm := newCluster(t)
	ctx := context.Background()
	const topic = "p.public.docs"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("100000")}, topic); err != nil {
		t.Fatal(err)
	}
	mem := NewMemory()
	cfg := Config{DeadLetter: true, DLQTopic: "p.dlq", DLQMaxMessageBytes: 1 << 20}

	// Session 1 learns the topic's limit (100,000), then the topic is changed to 3,000: the
	// broker refuses the transaction's batch, both records in it.
	s1 := openSink(t, c, cfg, mem)
	if _, err := s1.topicLimit(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("3000")}}, topic); err != nil {
		t.Fatal(err)
	}
	if _, _, err := docsTx(ctx, s1); err == nil || !strings.Contains(err.Error(), "MESSAGE_TOO_LARGE") {
		t.Fatalf("session 1: want the commit refused as too large, got %v", err)
	}
	s1.Close()

	// Session 2, the same pipeline: the small change to its topic, the large one dead-lettered.
	small, large, err := docsTx(ctx, openSink(t, c, cfg, mem))
	if err != nil {
		t.Fatalf("session 2: %v", err)
	}
	checkOnlyLargeDeadLettered(t, c, small, large)
}

// A broker that refuses a record its topic's settings admit (the size cdcd reads says it
// fits): the record that shared the refused batch is produced alone next time and passes;
// the large one, refused alone, is dead-lettered by the session after.
func TestBrokerRefusalOfARecordThatSeemsToFit(t *testing.T) {
	c, adm := newCluster(t)
	ctx := context.Background()
	created, err := adm.CreateTopic(ctx, 1, 1, nil, "p.public.docs")
	if err != nil {
		t.Fatal(err)
	}
	// The broker refuses every produce request carrying more than 4,000 bytes for the docs
	// topic (its default max.message.bytes admits them).
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		big := false
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				big = big || (t.Topic == created.Topic || t.TopicID == created.ID) && len(p.Records) > 4000
			}
		}
		if !big {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.MessageTooLarge.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	mem := NewMemory()
	cfg := Config{DeadLetter: true, DLQTopic: "p.dlq", DLQMaxMessageBytes: 1 << 20}
	for session := 1; session <= 2; session++ {
		s := openSink(t, c, cfg, mem)
		if _, _, err := docsTx(ctx, s); err == nil || !strings.Contains(err.Error(), "MESSAGE_TOO_LARGE") {
			t.Fatalf("session %d: want the commit refused as too large, got %v", session, err)
		}
		s.Close()
	}
	small, large, err := docsTx(ctx, openSink(t, c, cfg, mem))
	if err != nil {
		t.Fatalf("session 3: %v", err)
	}
	checkOnlyLargeDeadLettered(t, c, small, large)
}

// A failed produce is retried after 10 ms at first (franz-go's default is 250 ms, paid by every
// transaction whose first produce meets CONCURRENT_TRANSACTIONS), doubling up to 5 s.
func TestProduceRetryBackoff(t *testing.T) {
	b := produceRetryBackoff()
	within := func(fails int, want time.Duration) {
		t.Helper()
		for range 50 {
			if d := b(fails); d < want*8/10 || d > want*12/10 {
				t.Fatalf("after %d failures: %v, want %v ±20 %%", fails, d, want)
			}
		}
	}
	within(0, 10*time.Millisecond)
	within(1, 10*time.Millisecond)
	within(2, 20*time.Millisecond)
	within(5, 160*time.Millisecond)
	within(9, 2560*time.Millisecond)
	within(10, 5*time.Second)
	within(1000, 5*time.Second)
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[b(3)] = true
	}
	if len(seen) < 2 {
		t.Error("no jitter: every retry of the same count waits the same")
	}
}

// A data record's Kafka timestamp is the time its envelope gives as ts_ms (one clock read for
// both), and a delete's tombstone carries its delete's.
func TestRecordTimestampIsTheEnvelopesTime(t *testing.T) {
	c, _ := newCluster(t)
	at := time.Date(2001, 2, 3, 4, 5, 6, 7_000_000, time.UTC)
	s := openSinkClock(t, c, Config{Tombstones: true}, NewMemory(), func() time.Time { return at })
	tbl := &change.Table{Schema: "public", Name: "t", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	ctx := context.Background()
	for i, it := range []change.Item{
		{Event: change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{Int: 1}}, Pos: change.Position{Tx: 100}}},
		{Event: change.Event{Op: change.OpDelete, Table: tbl, Before: []change.Value{{Int: 1}}, Pos: change.Position{Tx: 100, Index: 1}}},
		{Commit: &change.Commit{Pos: change.Position{Tx: 100, Index: 2}, AckPosition: 101}},
	} {
		if err := s.Add(ctx, &it); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("p.public.t"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 3 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 3 {
		t.Fatalf("read %d records, want the insert, the delete and its tombstone", len(got))
	}
	for i, r := range got {
		if !r.Timestamp.Equal(at.Truncate(time.Millisecond)) {
			t.Errorf("record %d: timestamp %v, want the encoder's clock %v", i, r.Timestamp.UTC(), at)
		}
	}
}
