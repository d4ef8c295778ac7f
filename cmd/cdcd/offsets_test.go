package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A gap error advises `reset-offsets --accept-slot LSN`: it keeps the committed position (so
// the published part of a split transaction is not published again) and only accepts the
// slot's confirmed position. Without the flag the position is forgotten.
func TestResetOffsetsAcceptSlotKeepsPosition(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID(pipeline.TransactionalID("shop")))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := offsets.EnsureTopic(ctx, kadm.NewClient(prod), "_cdcd_offsets", 1); err != nil {
		t.Fatal(err)
	}
	partial := offsets.Record{Pos: change.Position{Tx: 0x600, Index: 99}, AckPosition: 0x301}
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, partial.KafkaRecord("_cdcd_offsets", "shop")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	path := writeFile(t, "cdcd.yaml", fmt.Sprintf(`kafka:
  brokers: [%q]
schema_registry:
  url: http://127.0.0.1:1
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
`, c.ListenAddrs()[0]))
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runMain(ctx, append([]string{"reset-offsets", "--config", path, "--pipeline", "shop"}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	var ee *exitError
	if _, err := run("--accept-slot", "nonsense"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("a malformed LSN: %v", err)
	}
	out, err := run("--accept-slot", "0/500")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, ok, err := offsets.Load(ctx, opts, "_cdcd_offsets", "shop")
	if err != nil || !ok || got.Pos != partial.Pos || got.Complete || got.AckPosition != 0x500 {
		t.Fatalf("after --accept-slot: %+v ok=%v err=%v; want the position kept and ack_lsn 0/500", got, ok, err)
	}
	if !strings.Contains(out, "kept committed position") {
		t.Errorf("output: %s", out)
	}
	if out, err := run(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, ok, err := offsets.Load(ctx, opts, "_cdcd_offsets", "shop"); err != nil || ok {
		t.Fatalf("after a reset: ok=%v err=%v, want no record", ok, err)
	}
}
