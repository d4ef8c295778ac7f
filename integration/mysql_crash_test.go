package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// mysqlKVWriter commits upserts into kv in transactions of random size, paced to about rate
// rows per second. v increases globally, so per key it increases in commit order.
type mysqlKVWriter struct {
	mu      sync.Mutex
	changes []kvChange
	rows    int
}

func (w *mysqlKVWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows
}

func (w *mysqlKVWriter) run(ctx context.Context, db *client.Conn, total, maxTx, rate, keys int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	var v, tx int64
	for w.rows < total {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := min(1+rng.IntN(maxTx), total-w.rows)
		tx++
		var txChanges []kvChange
		if _, err := db.Execute("BEGIN"); err != nil {
			return err
		}
		for done := 0; done < size; {
			n := min(100, size-done)
			var q strings.Builder
			q.WriteString("INSERT INTO kv (k, v, tx, txsize) VALUES ")
			for i := 0; i < n; i++ {
				v++
				k := rng.IntN(keys)
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,%d,%d)", k, v, tx, size)
				txChanges = append(txChanges, kvChange{k, v, tx, size})
			}
			q.WriteString(" ON DUPLICATE KEY UPDATE v = VALUES(v), tx = VALUES(tx), txsize = VALUES(txsize)")
			if _, err := db.Execute(q.String()); err != nil {
				_, _ = db.Execute("ROLLBACK")
				return err
			}
			done += n
		}
		if _, err := db.Execute("COMMIT"); err != nil {
			return err
		}
		w.mu.Lock()
		w.changes = append(w.changes, txChanges...)
		w.rows += size
		w.mu.Unlock()
		if ahead := time.Duration(float64(w.rows)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}

// TestMySQLExactlyOnceUnderSIGKILL: a writer commits 200k rows into MariaDB in transactions
// of 1..400 rows while cdcd, with batch.max_events 50 (most source transactions are split
// across Kafka transactions), is killed with SIGKILL 6 times and restarted. Every change must
// arrive exactly once and in commit order per key, and the latest record per key must equal
// the table.
func TestMySQLExactlyOnceUnderSIGKILL(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 10*time.Minute, "cdcd_mycrash",
		`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
	name := uniqueName("mycrash")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, "    batch:\n      max_events: 50\n"))
	d.waitReady(60 * time.Second)

	const total = 200_000
	seed := loggedSeed(t, "writer and kill schedule")
	rng := rand.New(rand.NewPCG(seed, 13))
	w := &mysqlKVWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	go func() { werr <- w.run(wctx, conn, total, 400, 5000, 2000, seed) }()
	kills := 0
	for kills < 6 {
		time.Sleep(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		kills++
		t.Logf("SIGKILL %d at %d rows written", kills, w.written())
		d.restart()
		d.waitReady(60 * time.Second)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if w.written() != total {
		t.Fatalf("the writer finished with %d rows; make the kill schedule shorter than the writer", w.written())
	}
	c, recs := readKV(t, s, name+"."+db+".kv", total, 4*time.Minute)
	verifySplit(t, c, recs, w.changes)

	// The latest record per key equals the table.
	latest := map[int64]int64{}
	for _, r := range recs {
		if r.Attrs.IsControl() || r.Value == nil {
			continue
		}
		env := unwrap(c.decode(t, r.Value)).(map[string]any)
		after := unwrapAll(unwrap(env["after"]).(map[string]any))
		latest[int64(after["k"].(int))] = after["v"].(int64)
	}
	res, err := conn.Execute("SELECT k, v FROM kv")
	if err != nil {
		t.Fatal(err)
	}
	if res.RowNumber() != len(latest) {
		t.Fatalf("table has %d keys, the topic %d", res.RowNumber(), len(latest))
	}
	for i := 0; i < res.RowNumber(); i++ {
		k, _ := res.GetInt(i, 0)
		v, _ := res.GetInt(i, 1)
		if latest[k] != v {
			t.Errorf("key %d: table has v=%d, the topic's latest record %d", k, v, latest[k])
		}
	}
}
