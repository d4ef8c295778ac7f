package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/jackc/pglogrepl"
)

// TestPostgresIdleRestartNoGap: while the captured tables were idle and another database wrote
// WAL, cdcd confirmed the walsender's sent position to the slot directly, a position recorded
// nowhere in Kafka. After a plain SIGTERM and restart the slot's confirmed_flush was then
// ahead of the offsets record's ack_lsn, and the pipeline refused to start ("the source was
// acknowledged up to X, beyond the last position cdcd committed to Kafka") for good. Now the
// idle position goes through the pipeline as a Commit without events: the slot moves over the
// other database's WAL only as far as an offsets record says, the restart streams on, and
// nothing is lost or published twice. Without heartbeats only the idle position moves the
// slot; with them (every second) heartbeat transactions and idle positions interleave.
func TestPostgresIdleRestartNoGap(t *testing.T) {
	for _, hb := range []string{"1h", "1s"} {
		t.Run("heartbeat_"+hb, func(t *testing.T) { testIdleRestartNoGap(t, hb) })
	}
}

func testIdleRestartNoGap(t *testing.T, heartbeat string) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_idlegap", kvDDL)
	otherDSN := newDatabase(t, ctx, s, "cdcd_idlegap_other")
	name := uniqueName("idlegap")
	yaml := strings.Replace(pipelineYAML(s, name, dsn, []string{"public.kv"}, ""), "heartbeat_interval: 1s", "heartbeat_interval: "+heartbeat, 1)
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO kv VALUES (1, 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".public.kv")
	if n := len(c.read(t, 1, time.Minute, 0)); n != 1 {
		t.Fatalf("row 1 not published (%d records)", n)
	}

	// Noise in another database: WAL the slot reads and the pipeline has no use for.
	other := pgConnect(t, ctx, otherDSN)
	if _, err := other.Exec(ctx, `CREATE TABLE noise (x int)`); err != nil {
		t.Fatal(err)
	}
	lsnNow := func() pglogrepl.LSN {
		var text string
		if err := db.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		lsn, err := pglogrepl.ParseLSN(text)
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	confirmed := func() pglogrepl.LSN {
		var text string
		if err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&text); err != nil {
			t.Fatal(err)
		}
		lsn, err := pglogrepl.ParseLSN(text)
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	var mid pglogrepl.LSN
	for i := 0; i < 80; i++ {
		if _, err := other.Exec(ctx, `INSERT INTO noise SELECT generate_series(1, 100)`); err != nil {
			t.Fatal(err)
		}
		if i == 40 {
			mid = lsnNow()
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The slot still moves over the other database's WAL while the tables are idle (retained
	// WAL stays bounded without heartbeats).
	deadline := time.Now().Add(time.Minute)
	for confirmed() < mid {
		if time.Now().After(deadline) {
			t.Fatalf("the slot's confirmed_flush stayed at %s, before %s, while the captured tables were idle", confirmed(), mid)
		}
		time.Sleep(200 * time.Millisecond)
	}

	d.stop(syscall.SIGTERM)
	slotAt := confirmed()
	rec, ok := loadOffsets(t, ctx, s, name, 10*time.Second, func(rec offsets.Record, ok bool) bool {
		return ok && pglogrepl.LSN(rec.AckPosition) >= slotAt
	})
	if !ok || pglogrepl.LSN(rec.AckPosition) < slotAt {
		// Go on: the restart shows what the gap does to the pipeline.
		t.Errorf("after SIGTERM the slot is confirmed up to %s, beyond the committed offsets record %+v (ok %v)", slotAt, rec, ok)
	}
	t.Logf("after SIGTERM: slot confirmed %s, offsets ack_lsn %s at %s", slotAt, pglogrepl.LSN(rec.AckPosition), rec.Pos)

	d.restart()
	d.waitReady(90 * time.Second) // a gap would leave the pipeline failed (unready) for good
	if _, err := db.Exec(ctx, `INSERT INTO kv VALUES (2, 2, 2, 1)`); err != nil {
		t.Fatal(err)
	}
	recs := c.read(t, 1, time.Minute, 3*time.Second)
	if len(recs) != 1 || avroLong(recs[0].Key, 5) != 2 {
		keys := make([]int64, 0, len(recs))
		for _, r := range recs {
			keys = append(keys, avroLong(r.Key, 5))
		}
		t.Fatalf("after the restart, want row 2 once, got keys %v\n%s", keys, d.Logs())
	}
	if strings.Contains(d.Logs(), "beyond the last position cdcd committed") {
		t.Fatalf("the restart saw a gap:\n%s", d.Logs())
	}
}
