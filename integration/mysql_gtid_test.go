package integration

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/source/mysql"
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

	bothDomains := func(tok mysql.Token) bool {
		return strings.Contains(","+tok.GTIDs, ",0-") && strings.Contains(","+tok.GTIDs, ",1-")
	}
	rec, ok := loadOffsets(t, ctx, s, name, 10*time.Second, func(rec offsets.Record, ok bool) bool {
		tok, err := mysql.ParseToken(rec.Pos.Resume)
		return ok && err == nil && bothDomains(tok)
	})
	if !ok {
		t.Fatal("no offsets record")
	}
	tok, err := mysql.ParseToken(rec.Pos.Resume)
	if err != nil {
		t.Fatal(err)
	}
	if !bothDomains(tok) {
		t.Errorf("committed GTID set %q does not name both domains 0 and 1", tok.GTIDs)
	}
	t.Logf("committed position %s, GTID set %s", rec.Pos, tok.GTIDs)
}

// TestMySQLGTIDDomainTwoServerIDs: a session writes a captured table with SET SESSION
// server_id=77 while cdcd streams, so MariaDB domain 0 holds GTIDs of server_ids 7 and 77;
// then cdcd restarts. The committed state used to keep one GTID per (domain, server_id),
// which MariaDB refuses in @slave_connect_state: the restarted pipeline retried forever and
// nothing after the restart arrived. It runs on a private MariaDB: the shared server's binlog
// must not carry a domain written by two server_ids for other pipelines to read.
func TestMySQLGTIDDomainTwoServerIDs(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 3*time.Minute)
	conn := mysqlConn(t, ctx, m.dsn)
	mysqlExec(t, conn, "CREATE DATABASE g")
	mysqlExec(t, conn, "CREATE TABLE g.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	mysqlExec(t, conn, "USE g")
	other := mysqlConn(t, ctx, m.dsn+"g")
	mysqlExec(t, other, "SET SESSION server_id = 77")
	name := uniqueName("mygtid77")
	yaml := mysqlPipelineYAML(s, name, m.dsn+"g", nextServerID(), []string{"g.kv"}, "    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n")
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	w := &mysqlUpserts{keys: 50, maxSize: 5}
	w.write(t, conn, 5)
	w.write(t, other, 5) // domain 0, server_id 77
	w.write(t, conn, 5)
	w.write(t, other, 5) // the domain's last GTID is server 77's
	c, recs := readKV(t, s, name+".g.kv", len(w.want), time.Minute)
	if countData(recs) != len(w.want) {
		t.Fatalf("before the restart: %d of %d changes arrived", countData(recs), len(w.want))
	}
	d.stop(syscall.SIGTERM)
	d.restart()
	d.waitReady(60 * time.Second)
	w.write(t, conn, 5)
	w.write(t, other, 5)
	c, recs = readKV(t, s, name+".g.kv", len(w.want), time.Minute)
	verifySplit(t, c, recs, w.want)
	if t.Failed() {
		t.Logf("cdcd log (tail):\n%s", tail(d.Logs(), 3000))
	}
}
