package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

func TestStackPostgresLogicalSlot(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 30*time.Second)
	conn := pgConnect(t, ctx, s.pgDSN)
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil || walLevel != "logical" {
		t.Fatalf("wal_level = %q (%v), want logical", walLevel, err)
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot('cdcd_stack_probe', 'pgoutput', true)").Scan(&lsn); err != nil {
		t.Fatalf("creating a logical slot: %v", err)
	}
	if lsn == "" {
		t.Fatal("slot created without a position")
	}
}

func TestStackMariaDBBinlog(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 30*time.Second)
	conn, err := mysql.Connect(ctx, s.mysqlDSN)
	if err != nil {
		t.Fatalf("mariadb is not reachable (make stack-up): %v", err)
	}
	defer conn.Close()
	if _, err := conn.Execute("CREATE DATABASE IF NOT EXISTS cdcd_probe"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Execute("CREATE TABLE IF NOT EXISTS cdcd_probe.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Execute("REPLACE INTO cdcd_probe.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@gtid_binlog_pos, @@version")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 6)
	for i := range got {
		got[i], _ = r.GetString(0, i)
	}
	if got[0] != "1" || got[1] != "ROW" || got[2] != "FULL" || got[3] != "FULL" {
		t.Fatalf("log_bin/format/row_image/row_metadata = %v, want 1 ROW FULL FULL", got[:4])
	}
	if !strings.Contains(got[5], "MariaDB") || !strings.HasPrefix(got[5], "10.11") {
		t.Errorf("version %q, want MariaDB 10.11", got[5])
	}
	// After a write, MariaDB reports a GTID position: domain-server-seq per domain (other
	// tests may have written in more than one domain).
	for _, g := range strings.Split(got[4], ",") {
		if parts := strings.Split(g, "-"); len(parts) != 3 {
			t.Fatalf("gtid_binlog_pos = %q, want domain-server-sequence[,...]", got[4])
		}
	}
}

func TestStackKafkaTransactionReadCommitted(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 90*time.Second)
	topic := uniqueName("cdcd-probe-")
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("kafka at %v: creating a topic: %v (make stack-up)", s.kafka, err)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.TransactionalID("cdcd-probe"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(val string, commit kgo.TransactionEndTry) {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(val)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("ending transaction: %v", err)
		}
	}
	produce("aborted", kgo.TryAbort)
	produce("committed", kgo.TryCommit)

	cons, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 1 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no committed record read back: %v", err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 1 || got[0] != "committed" {
		t.Fatalf("read_committed consumer got %q, want only the committed record", got)
	}
}

func TestStackRegistryEnforcesBackward(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 30*time.Second)
	cl, err := sr.NewClient(sr.URLs(s.registry))
	if err != nil {
		t.Fatal(err)
	}
	subject := fmt.Sprintf("cdcd-probe-%d-value", time.Now().UnixNano())
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
	if _, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: v1, Type: sr.TypeAvro}); err != nil {
		t.Fatalf("registry at %s: %v (make stack-up)", s.registry, err)
	}
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject) {
		if r.Err != nil {
			t.Fatalf("setting BACKWARD: %v", r.Err)
		}
	}
	// A new required field without a default cannot read old data: BACKWARD refuses it.
	bad := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}`
	_, err = cl.CreateSchema(ctx, subject, sr.Schema{Schema: bad, Type: sr.TypeAvro})
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
		t.Fatalf("incompatible schema: got %v, want HTTP 409 from an enforcing registry", err)
	}
	good := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"c","type":["null","string"],"default":null}]}`
	if _, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: good, Type: sr.TypeAvro}); err != nil {
		t.Fatalf("compatible schema refused: %v", err)
	}
	vs, err := cl.SubjectVersions(ctx, subject)
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions = %v (%v), want 2", vs, err)
	}
	_, _ = cl.DeleteSubject(context.Background(), subject, sr.SoftDelete)
}
