package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/cdcd-dev/cdcd/verify"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Bad verify invocations fail before connecting, naming the problem and the fix.
func TestVerifyUsageErrors(t *testing.T) {
	cfg := "../../config.example.yaml"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify", "--config", cfg}, 2, "--pipeline NAME is required"},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--output", "yaml"}, 2, `--output "yaml": use text or json`},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--chunk-rows", "0"}, 2, "--chunk-rows must be positive"},
		{[]string{"verify", "--config", cfg, "--pipeline", "nope"}, 1, `no pipeline named "nope"`},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--table", "public.nope"}, 1, "does not capture public.nope"},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--table", "nope"}, 2, "is not schema-qualified"},
	} {
		r := cdcd(t, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("cdcd %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
}

// --repair says how many differing keys it cannot name and how to repair them anyway.
func TestVerifyRepairNamesUnrepairableKeys(t *testing.T) {
	rep := &verify.Report{Tables: []verify.TableReport{{Table: "public.t", Different: 3, Unrepairable: 3, UnrepairableReason: "column k: no SQL text"}}}
	var out strings.Builder
	if err := verifyRepair(context.Background(), &config.Pipeline{Name: "shop"}, rep, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"public.t: 3 missing or different key(s) cannot be named", "column k: no SQL text", "cdcd snapshot --config FILE --pipeline shop --table public.t"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The MySQL verify source follows the pipeline's committed position look after look with one
// client, reading only what was written since the last look, also behind another producer's
// transaction left open in the shared offsets topic.
func TestMyVerifySourceCaughtFollowsCommits(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kopts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(kopts, kgo.TransactionalID(pipeline.TransactionalID("shop")))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := offsets.EnsureTopic(ctx, kadm.NewClient(prod), "_off", 1); err != nil {
		t.Fatal(err)
	}
	commit := func(tx uint64) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		r := offsets.Record{Pos: change.Position{Tx: tx}, Complete: true, AckPosition: tx}
		if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", "shop")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	s := &myVerifySource{pipeline: "shop", offsetsTopic: "_off", kopts: kopts}
	defer s.Close()
	caught := func(mark uint64) bool {
		t.Helper()
		ok, err := s.Caught(ctx, mark)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	commit(100)
	if !caught(50) || caught(150) {
		t.Fatal("after committing 100: want caught up to 50, not to 150")
	}
	first := s.cl
	commit(200)
	if !caught(150) || caught(250) {
		t.Fatal("after committing 200: want caught up to 150, not to 250")
	}
	// The pipeline's own transaction in progress: its record is not committed yet.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	r := offsets.Record{Pos: change.Position{Tx: 300}, Complete: true, AckPosition: 300}
	if err := prod.ProduceSync(ctx, r.KafkaRecord("_off", "shop")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if caught(250) {
		t.Fatal("caught up to 250 while the record of 300 is not committed")
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if !caught(250) || caught(350) {
		t.Fatal("after committing 300: want caught up to 250, not to 350")
	}
	// Another producer's transaction left open in the shared topic holds its last stable
	// offset back; the pipeline's commits behind it still count.
	holder, err := kgo.NewClient(append(kopts, kgo.TransactionalID("holder"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := holder.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := holder.ProduceSync(ctx, &kgo.Record{Topic: "_off", Key: []byte("holder"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit(400)
	if !caught(350) || caught(450) {
		t.Fatal("after committing 400 behind another producer's open transaction: want caught up to 350, not to 450")
	}
	if s.cl != first {
		t.Fatal("a look made a new Kafka client")
	}
}
