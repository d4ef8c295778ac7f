package publish

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

type undecodableErr struct{}

func (undecodableErr) Error() string     { return "cannot decode column x" }
func (undecodableErr) Undecodable() bool { return true }

// The poison path decides once what a failed change calls for: a source's error about an
// event is that event's dead letter (of its class, or "other" when the source says no more),
// and the pipeline goes on.
func TestRefuseSourceErrorsAreDeadLettersOfTheirClass(t *testing.T) {
	s, c := newSink(t, Config{DeadLetter: true, DLQTopic: "p.dlq", DLQMaxMessageBytes: 1 << 20, Ack: func(uint64) {}})
	tbl := &change.Table{Schema: "public", Name: "t", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	ctx := context.Background()
	for i, err := range []error{undecodableErr{}, errors.New("something the source could not say more about")} {
		if e := s.Add(ctx, &change.Item{Event: change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{Int: int64(i)}},
			Pos: change.Position{Tx: 10, Index: uint32(i)}, Err: err}}); e != nil {
			t.Fatalf("event %d: %v", i, e)
		}
	}
	if err := s.Add(ctx, &change.Item{Commit: &change.Commit{Pos: change.Position{Tx: 10, Index: 2}, AckPosition: 11}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readCommitted(t, c, "p.dlq")
	var classes []string
	for _, r := range got {
		for _, h := range r.Headers {
			if h.Key == HeaderErrorClass {
				classes = append(classes, string(h.Value))
			}
		}
	}
	if strings.Join(classes, ",") != "undecodable_value,other" {
		t.Fatalf("dead-letter classes %v, want [undecodable_value other]", classes)
	}
}

// A registry that refuses cdcd's own credentials is not about one change: even with
// on_error: dlq the pipeline stops with the fix, instead of dead-lettering every change.
func TestRefuseRegistryRefusingCdcdStops(t *testing.T) {
	c, _ := newCluster(t)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
	}))
	t.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "p"}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Pipeline: "p", KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, OffsetsTopic: "_cdcd_offsets",
		TransactionTimeout: 10 * time.Second, MaxMessageBytes: 1 << 20, TopicPartitions: 1, TopicReplication: 1,
		ExactlyOnce: true, BatchMaxEvents: 100, BatchMaxBytes: 1 << 20, BatchInterval: time.Millisecond,
		DeadLetter: true, DLQTopic: "p.dlq", DLQMaxMessageBytes: 1 << 20, Ack: func(uint64) {}}
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
	tbl := &change.Table{Schema: "public", Name: "t", Version: 1,
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true}}, KeyColumns: []int{0}}
	err = s.Add(ctx, &change.Item{Event: change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{Int: 1}}, Pos: change.Position{Tx: 10}}})
	var perr *PoisonError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), "check schema_registry url, username and password") {
		t.Fatalf("Add = %v; want a PoisonError that stops the pipeline with the credentials fix", err)
	}
}
