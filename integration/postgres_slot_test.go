package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPostgresIdleSlotAdvances: while the captured table is idle and another database writes
// 1 GB of WAL, heartbeats keep the slot's restart_lsn moving, so retained WAL stays bounded.
func TestPostgresIdleSlotAdvances(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 10*time.Minute)
	dsn := newDatabase(t, ctx, s, "cdcd_idle")
	otherDSN := newDatabase(t, ctx, s, "cdcd_idle_other")
	db := pgConnect(t, ctx, dsn)
	if _, err := db.Exec(ctx, `CREATE TABLE quiet (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	name := uniqueName("idle")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.quiet"}, ""))
	d.waitReady(90 * time.Second)

	admin := pgConnect(t, ctx, s.pgDSN)
	retained := func() int64 {
		var n int64
		if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	other := pgConnect(t, ctx, otherDSN)
	if _, err := other.Exec(ctx, `CREATE TABLE filler (id int, pad text)`); err != nil {
		t.Fatal(err)
	}
	const target = 1 << 30
	var start string
	if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&start); err != nil {
		t.Fatal(err)
	}
	var peak int64
	for written := int64(0); written < target; {
		// ~100 MB of WAL per statement
		if _, err := other.Exec(ctx, `INSERT INTO filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 90000) g`); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, `TRUNCATE filler`); err != nil {
			t.Fatal(err)
		}
		if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn() - $1::pg_lsn`, start).Scan(&written); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, retained())
	}
	// Retained WAL must come back down close to the current position (a few heartbeats and a
	// checkpoint's worth), not hold the whole gigabyte.
	_, _ = admin.Exec(ctx, `CHECKPOINT`)
	deadline := time.Now().Add(2 * time.Minute)
	var r int64
	for {
		r = retained()
		if r < 64<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
		_, _ = admin.Exec(ctx, `CHECKPOINT`)
	}
	t.Logf("1 GB of WAL written elsewhere; peak retained %d MB, now %d MB", peak>>20, r>>20)
	if r >= 64<<20 {
		t.Fatalf("slot %s still retains %d MB of WAL while its tables are idle", name, r>>20)
	}
}

// TestPostgresStandbyTakeover: a second daemon on the same pipeline waits (slot busy) without
// fencing the first, and takes over when the first stops, with no loss and no duplicates.
func TestPostgresStandbyTakeover(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_standby", kvDDL)
	name := uniqueName("standby")
	yaml := strings.Replace(pipelineYAML(s, name, dsn, []string{"public.kv"}, ""), "topic_partitions: 3", "topic_partitions: 1", 1)
	a := startDaemon(t, yaml)
	a.waitReady(90 * time.Second)
	b := startDaemon(t, yaml)

	// b must report standby, not ready, and must not disturb a.
	waitStandby(t, b, 60*time.Second)

	w := &kvWriter{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() { werr <- w.run(wctx, t, db, 20_000, 100, 2000, 200, 5) }()
	time.Sleep(4 * time.Second)
	if _, code := get(t, "http://"+a.http+"/readyz"); code != http.StatusOK {
		t.Fatalf("the active daemon lost readiness while a standby waited")
	}
	if took := a.stop(syscall.SIGTERM); took > 10*time.Second {
		t.Errorf("SIGTERM took %s", took)
	}
	t.Logf("active stopped at %d rows; standby takes over", w.written())
	b.waitReady(90 * time.Second)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	c, recs := readKV(t, s, name+".public.kv", len(w.changes), 3*time.Minute)
	verifyKV(t, c, recs, w.changes)
	if !strings.Contains(b.Logs(), "standby") {
		t.Errorf("standby never logged its state")
	}
}

// waitStandby waits until d reports phase standby (not ready) on /readyz.
func waitStandby(t *testing.T, d *daemon, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		body, code := get(t, "http://"+d.http+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "standby") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("second daemon is not a standby: %d %s\n%s", code, body, d.Logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
