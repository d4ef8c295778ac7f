package offsets

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCovers(t *testing.T) {
	split := Record{Pos: change.Position{Tx: 200, Index: 4}, Complete: false}
	whole := Record{Pos: change.Position{Tx: 200, Index: 9}, Complete: true}
	cases := []struct {
		name     string
		r        Record
		p        change.Position
		isCommit bool
		want     bool
	}{
		{"earlier tx event", split, change.Position{Tx: 100, Index: 50}, false, true},
		{"earlier tx commit", split, change.Position{Tx: 100, Index: 51}, true, true},
		{"split tx published event", split, change.Position{Tx: 200, Index: 4}, false, true},
		{"split tx next event", split, change.Position{Tx: 200, Index: 5}, false, false},
		{"split tx commit", split, change.Position{Tx: 200, Index: 9}, true, false},
		{"whole tx event", whole, change.Position{Tx: 200, Index: 8}, false, true},
		{"whole tx commit", whole, change.Position{Tx: 200, Index: 9}, true, true},
		{"later tx", whole, change.Position{Tx: 201}, false, false},
		{"zero record covers nothing new", Record{}, change.Position{Tx: 1}, false, false},
	}
	for _, c := range cases {
		if got := c.r.Covers(c.p, c.isCommit); got != c.want {
			t.Errorf("%s: Covers = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMarshalRoundTripAndNewerVersionRefused(t *testing.T) {
	r := Record{Pos: change.Position{Tx: 1 << 40, Index: 3}, Complete: true, AckPosition: 1<<40 + 8, CommitTime: time.Unix(1700000000, 0).UTC()}
	got, err := Unmarshal(r.Marshal())
	if err != nil || got.Pos != r.Pos || got.AckPosition != r.AckPosition || !got.Complete || !got.CommitTime.Equal(r.CommitTime) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := Unmarshal([]byte(`{"version":99}`)); err == nil {
		t.Fatal("a newer format must be refused, not misread")
	}
}

// Load returns the last committed record of the pipeline, ignores aborted transactions and
// other pipelines, and treats a tombstone as a reset.
func TestLoad(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	adm, _ := kgo.NewClient(opts...)
	defer adm.Close()
	if err := EnsureTopic(ctx, kadm.NewClient(adm), "_off", 1); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopic(ctx, kadm.NewClient(adm), "_off", 1); err != nil {
		t.Fatalf("EnsureTopic must accept an existing topic: %v", err)
	}
	if _, ok, err := Load(ctx, opts, "_off", "a"); err != nil || ok {
		t.Fatalf("empty topic: ok=%v err=%v", ok, err)
	}
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	write := func(pipeline string, r *Record, commit bool) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: "_off", Key: []byte(pipeline)}
		if r != nil {
			rec = r.KafkaRecord("_off", pipeline)
		}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	write("a", &Record{Pos: change.Position{Tx: 10}, Complete: true}, true)
	write("b", &Record{Pos: change.Position{Tx: 99}, Complete: true}, true)
	write("a", &Record{Pos: change.Position{Tx: 20}, Complete: true}, true)
	write("a", &Record{Pos: change.Position{Tx: 30}, Complete: true}, false) // aborted
	got, ok, err := Load(ctx, opts, "_off", "a")
	if err != nil || !ok || got.Pos.Tx != 20 {
		t.Fatalf("Load a = %+v ok=%v err=%v, want tx 20", got, ok, err)
	}
	write("a", nil, true) // reset
	if _, ok, err := Load(ctx, opts, "_off", "a"); err != nil || ok {
		t.Fatalf("after a tombstone: ok=%v err=%v, want no record", ok, err)
	}
	if got, ok, _ := Load(ctx, opts, "_off", "b"); !ok || got.Pos.Tx != 99 {
		t.Fatalf("Load b = %+v", got)
	}
}

// A partial position written by a version that counted only captured events cannot be
// resumed exactly: it is refused with the fix. A complete one means the same in both.
func TestPartialVersion1RecordRefused(t *testing.T) {
	partial := []byte(`{"version":1,"pos":{"tx":4096,"index":7},"complete":false,"ack_lsn":100}`)
	if _, err := Unmarshal(partial); err == nil || !strings.Contains(err.Error(), "older cdcd") {
		t.Fatalf("a partial version 1 record: got %v, want a refusal naming the fix", err)
	}
	complete := []byte(`{"version":1,"pos":{"tx":4096,"index":7},"complete":true,"ack_lsn":5000}`)
	r, err := Unmarshal(complete)
	if err != nil || r.Pos.Tx != 4096 || !r.Complete {
		t.Fatalf("a complete version 1 record: %+v, %v", r, err)
	}
	if r2, err := Unmarshal(r.Marshal()); err != nil || r2.Version != formatVersion {
		t.Fatalf("round trip: %+v, %v", r2, err)
	}
}
