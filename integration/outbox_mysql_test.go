package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// runMySQL is outboxWriter.run against MariaDB/MySQL.
func (w *outboxWriter) runMySQL(ctx context.Context, db *client.Conn, total, maxTx, rate, keys int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Now()
	var v int64
	for w.written() < total {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := min(1+rng.IntN(maxTx), total-w.written())
		var txEvents []outboxEvent
		var q strings.Builder
		q.WriteString("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, secret) VALUES ")
		for i := range size {
			v++
			e := outboxEvent{typ: []string{"order", "customer"}[rng.IntN(2)], k: rng.IntN(keys), v: v}
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, `(UUID(), '%s', '%d', 'Changed', '{"k": %d, "v": %d}', 'CANARY')`, e.typ, e.k, e.k, e.v)
			txEvents = append(txEvents, e)
		}
		stmts := []string{"BEGIN", q.String()}
		switch rng.IntN(4) {
		case 0:
			stmts = append(stmts, "DELETE FROM outbox")
		case 1:
			stmts = append(stmts, "UPDATE outbox SET type = 'Updated' LIMIT 1")
		}
		for _, s := range append(stmts, "COMMIT") {
			if _, err := db.Execute(s); err != nil {
				_, _ = db.Execute("ROLLBACK")
				return fmt.Errorf("%.60s: %w", s, err)
			}
		}
		w.mu.Lock()
		w.events = append(w.events, txEvents...)
		w.mu.Unlock()
		if ahead := time.Duration(float64(w.written())/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}

// TestOutboxMariaDBExactlyOnceUnderSIGKILL is TestOutboxExactlyOnceUnderSIGKILL on MariaDB.
func TestOutboxMariaDBExactlyOnceUnderSIGKILL(t *testing.T) {
	s, ctx, dbName, dsn, conn := mysqlSetup(t, 4*time.Minute, "cdcd_outbox", `CREATE TABLE outbox (id char(36) PRIMARY KEY,
		aggregatetype varchar(64) NOT NULL, aggregateid varchar(64) NOT NULL, type varchar(64) NOT NULL, payload json, secret text)`)
	name := uniqueName("myoutbox")
	table := dbName + ".outbox"
	extra := "    shape:\n      " + table + ":\n        columns: {exclude: [secret]}\n" +
		"    outbox:\n      " + table + ":\n        topic: \"" + name + ".$${routedByValue}\"\n        headers: [type]\n"
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{table}, extra), "topic_partitions: 3", "topic_partitions: 1", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	const total = 4000
	w := &outboxWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	seed := loggedSeed(t, "outbox writer and kill schedule")
	go func() { werr <- w.runMySQL(wctx, conn, total, 50, 800, 20, seed) }()
	rng := rand.New(rand.NewPCG(seed, 5))
	for kill := 1; kill <= 3; kill++ {
		d.waitReady(90 * time.Second)
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		t.Logf("SIGKILL %d at %d events written", kill, w.written())
		d.restart()
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.waitReady(2 * time.Minute)
	c, recs := readOutbox(t, s, name, total, 2*time.Minute)
	verifyOutbox(t, c, name, recs, w.events)
	if !strings.Contains(d.Logs(), "outbox table updated") {
		t.Error("no warning about the ignored updates of the outbox table")
	}
	t.Logf("%d events verified", len(w.events))
}
