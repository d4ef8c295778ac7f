package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMySQLGTIDTwoDomains: two writers commit into the same table from two MariaDB GTID
// domains (gtid_domain_id 0 and 1) while cdcd is killed with SIGKILL three times. The
// committed position's GTID set names both domains, and every change arrives exactly once and
// in commit order per key.
func TestMySQLGTIDTwoDomains(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 5*time.Minute, "cdcd_gtid",
		`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
	conn2 := mysqlConn(t, ctx, strings.TrimSuffix(s.mysqlDSN, "/")+"/"+db)
	mysqlExec(t, conn2, "SET SESSION gtid_domain_id = 1")
	name := uniqueName("mygtid")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, "    batch:\n      max_events: 30\n"))
	d.waitReady(60 * time.Second)

	seed := loggedSeed(t, "writers and kill schedule")
	rng := rand.New(rand.NewPCG(seed, 3))
	kills := rand.New(rand.NewPCG(seed, 4))
	// One writer alternates its transactions between the two sessions, so v still increases
	// in commit order per key.
	var want []kvChange
	var v int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tx := int64(1); tx <= 600; tx++ {
			c := conn
			if tx%2 == 0 {
				c = conn2
			}
			size := 1 + rng.IntN(60)
			var q strings.Builder
			q.WriteString("INSERT INTO kv VALUES ")
			for i := 0; i < size; i++ {
				v++
				k := rng.IntN(300)
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,%d,%d)", k, v, tx, size)
				want = append(want, kvChange{k, v, tx, size})
			}
			q.WriteString(" ON DUPLICATE KEY UPDATE v = VALUES(v), tx = VALUES(tx), txsize = VALUES(txsize)")
			if _, err := c.Execute(q.String()); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(1000+kills.IntN(2000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		d.restart()
		d.waitReady(60 * time.Second)
	}
	<-done
	if t.Failed() {
		return
	}
	c, recs := readKV(t, s, name+"."+db+".kv", len(want), 2*time.Minute)
	verifySplit(t, c, recs, want)

	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec, ok, err := offsets.Load(lctx, []kgo.Opt{kgo.SeedBrokers(s.kafka...)}, "_cdcd_offsets", name)
	if err != nil || !ok {
		t.Fatalf("offsets record: %v (found %v)", err, ok)
	}
	tok, err := mysql.ParseToken(rec.Pos.Resume)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(","+tok.GTIDs, ",0-") || !strings.Contains(","+tok.GTIDs, ",1-") {
		t.Errorf("committed GTID set %q does not name both domains 0 and 1", tok.GTIDs)
	}
	t.Logf("committed position %s, GTID set %s", rec.Pos, tok.GTIDs)
}
