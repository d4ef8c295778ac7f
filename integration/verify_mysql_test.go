package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVerifyMariaDBFindsEachDifference: as TestVerifyPostgresFindsEachDifference, on MariaDB
// (the pipeline's committed position in the offsets topic says how far it is).
func TestVerifyMariaDBFindsEachDifference(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 4*time.Minute, "cdcd_verify_my", `CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL,
  qty INT, price DECIMAL(10,2), seen DATETIME(6), body TEXT)`)
	mysqlExec(t, conn, `INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 7, seq * 1.25, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE, REPEAT('b', seq)
  FROM seq_1_to_300`)
	name := uniqueName("verifymy")
	topic := name + "." + db + ".items"
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".items"}, ""),
		"    snapshot: never\n", "    snapshot: {mode: initial, chunk_size: 100, signal_key: "+testSignalKey+"}\n", 1)
	yaml = strings.Replace(yaml, "        server_id:", "        heartbeat_interval: 1s\n        server_id:", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	mysqlExec(t, conn, `UPDATE items SET qty = 100 WHERE id = 3`)
	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "50")
	if code != 0 || !rep.Equal || len(rep.Tables) != 1 || rep.Tables[0].Rows != 300 || !rep.Tables[0].CaughtUp {
		t.Fatalf("a clean pipeline: exit %d, report %+v\n%s", code, rep, stderr)
	}

	d.stop(syscall.SIGTERM)
	mysqlExec(t, conn, `UPDATE items SET name = 'changed' WHERE id = 5`)
	mysqlExec(t, conn, `DELETE FROM items WHERE id = 6`)
	mysqlExec(t, conn, `INSERT INTO items VALUES (1000, 'unpublished', 1, 1, NOW(6), NULL)`)
	produce(t, ctx, s, topic, 9999, true)
	rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "50", "--catch-up", "2s")
	if code != 1 || rep.Equal || len(rep.Tables) != 1 {
		t.Fatalf("planted differences: exit %d, report %+v\n%s", code, rep, stderr)
	}
	tr := rep.Tables[0]
	if tr.Missing != 1 || tr.Extra != 2 || tr.Different != 1 || tr.CaughtUp {
		t.Fatalf("want 1 missing, 2 extra, 1 different, not caught up; got %+v", tr)
	}
	var found []string
	for _, ex := range tr.Examples {
		found = append(found, fmt.Sprint(ex.Kind, " ", ex.Key["id"], " ", ex.Columns))
	}
	slices.Sort(found)
	if want := []string{"different 5 [name]", "extra 6 []", "extra 9999 []", "missing 1000 []"}; !slices.Equal(found, want) {
		t.Errorf("examples: got %q, want %q", found, want)
	}

	// Caught up, the planted record stays extra, a planted tombstone makes a row missing, and
	// --repair snapshots it again.
	d.start()
	d.waitReady(90 * time.Second)
	produce(t, ctx, s, topic, 10, false)
	rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name, "--repair")
	if tr := rep.Tables; code != 1 || len(tr) != 1 || tr[0].Extra != 1 || tr[0].Missing != 1 || tr[0].Different != 0 || !tr[0].CaughtUp {
		t.Fatalf("after catching up: exit %d, report %+v\n%s", code, rep, stderr)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name)
		if tr := rep.Tables; len(tr) == 1 && tr[0].Missing == 0 && tr[0].Extra == 1 && tr[0].Different == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after --repair: exit %d, report %+v\n%s", code, rep, stderr)
		}
		time.Sleep(time.Second)
	}
}

// TestVerifyMariaDBEqualUnderLiveWriter: as TestVerifyPostgresEqualUnderLiveWriter, on MariaDB.
func TestVerifyMariaDBEqualUnderLiveWriter(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 4*time.Minute, "cdcd_verify_mylive", `CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(200) NOT NULL,
  qty INT, price DECIMAL(10,2), seen DATETIME(6), body TEXT)`)
	mysqlExec(t, conn, `INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 7, seq * 1.25, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE, NULL
  FROM seq_1_to_300`)
	name := uniqueName("verifymylive")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".items"}, ""),
		"    snapshot: never\n", "    snapshot: {mode: initial, chunk_size: 100, signal_key: "+testSignalKey+"}\n", 1)
	yaml = strings.Replace(yaml, "        server_id:", "        heartbeat_interval: 1s\n        server_id:", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := mysqlConn(t, ctx, dsn)
			for wctx.Err() == nil {
				id := rand.IntN(400) + 1
				var err error
				switch rand.IntN(3) {
				case 0:
					_, err = c.Execute(`UPDATE items SET name = CONCAT(name, '+'), qty = qty + 1 WHERE id = ?`, id)
				case 1:
					_, err = c.Execute(`DELETE FROM items WHERE id = ?`, id)
				default:
					_, err = c.Execute(`INSERT INTO items VALUES (?, 'new', 1, 2.5, NOW(6), NULL) ON DUPLICATE KEY UPDATE qty = 0`, id)
				}
				if err != nil && wctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "20")
	stop()
	wg.Wait()
	if code != 0 || !rep.Equal || len(rep.Tables) != 1 || !rep.Tables[0].CaughtUp {
		t.Fatalf("live writer: exit %d, report %+v\n%s", code, rep, stderr)
	}
	t.Logf("verified %d rows against %d records under writers; phases %v", rep.Tables[0].Rows, rep.Tables[0].Records, rep.Tables[0].Phases)
}

// TestVerifyMariaDBOffsetsTopicHeldOpen: another producer's transaction left open in the
// offsets topic holds back its read_committed readers; verify still sees the pipeline pass
// its mark (from the pipeline's own records and its transactional id's state).
func TestVerifyMariaDBOffsetsTopicHeldOpen(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 2*time.Minute, "cdcd_verify_myheld", `CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL)`)
	mysqlExec(t, conn, `INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_50`)
	name := uniqueName("verifymyheld")
	offsetsTopic := name + "_offsets" // its own: the open transaction must not hold back other tests
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".items"}, ""),
		"    snapshot: never\n", "    snapshot: initial\n", 1)
	yaml = strings.Replace(yaml, "        server_id:", "        heartbeat_interval: 1s\n        server_id:", 1)
	yaml = strings.Replace(yaml, "  topic_partitions: 3\n", "  topic_partitions: 3\n  offsets_topic: "+offsetsTopic+"\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })

	held, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.TransactionalID(name+"-holder"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := held.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Key: []byte("holder"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.EndTransaction(context.Background(), kgo.TryAbort) }()
	mysqlExec(t, conn, `UPDATE items SET name = 'after the hold' WHERE id = 7`)

	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name, "--catch-up", "10s")
	if code != 0 || !rep.Equal || len(rep.Tables) != 1 || !rep.Tables[0].CaughtUp {
		t.Fatalf("with the offsets topic held open: exit %d, report %+v\n%s", code, rep, stderr)
	}
}
