package integration

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMySQLTransactionsAtomicUnderSIGKILL: with batches larger than any source transaction,
// a read_committed reader of a one-partition topic sees each MariaDB transaction whole (never
// split by a Kafka transaction boundary), every change once and in commit order, across two
// SIGKILLs. (A transaction's Commit used to be held back until a heartbeat, so Kafka
// transactions cut through source transactions.)
func TestMySQLTransactionsAtomicUnderSIGKILL(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 5*time.Minute, "cdcd_atomic",
		`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
	name := uniqueName("myatomic")
	yaml := mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, "    batch:\n      max_events: 20000\n")
	yaml = strings.Replace(yaml, "topic_partitions: 3", "topic_partitions: 1", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	const total = 30_000
	seed := loggedSeed(t, "writer")
	w := &mysqlKVWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	go func() { werr <- w.run(wctx, conn, total, 200, 5000, 500, seed) }()
	for i := 0; i < 2; i++ {
		time.Sleep(2 * time.Second)
		d.stop(syscall.SIGKILL)
		d.restart()
		d.waitReady(60 * time.Second)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	c, recs := readKV(t, s, name+"."+db+".kv", total, 2*time.Minute)
	verifyKV(t, c, recs, w.changes)
}
