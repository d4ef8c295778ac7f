package mysql

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
)

// TestWatermarksVisibilityOnServer pins the boundary of the watermarks mode on a real server
// and stream, deterministically (a race the writers of the integration tests rarely hit): a
// transaction committed before the chunk's low watermark counts as visible; a delete that
// holds its row lock across the chunk's snapshot (so the snapshot still sees the row) and
// commits after the low watermark counts as not visible, so the engine drops the stale row
// instead of publishing it after the delete. Needs the stack's MariaDB (CDCD_TEST_STACK=1 and
// CDCD_TEST_MYSQL_DSN).
func TestWatermarksVisibilityOnServer(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_MYSQL_DSN")
	if os.Getenv("CDCD_TEST_STACK") == "" || dsn == "" {
		t.Skip("needs the stack's MariaDB: set CDCD_TEST_STACK=1 and CDCD_TEST_MYSQL_DSN (e.g. root@tcp(127.0.0.1:33306)/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db := fmt.Sprintf("cdcd_lowvis%d", time.Now().UnixNano()%1_000_000_000)
	exec("CREATE DATABASE " + db)
	defer func() { _, _ = admin.Execute("DROP DATABASE IF EXISTS " + db) }()
	exec("CREATE TABLE " + db + ".kv (k INT PRIMARY KEY, v INT NOT NULL)")
	exec("INSERT INTO " + db + ".kv VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)")

	src, err := New(Config{Pipeline: "lowvis", DSN: strings.TrimSuffix(dsn, "/") + "/" + db,
		ServerID: 39000 + uint32(time.Now().UnixNano()%1000), Tables: []string{db + ".kv"}, HeartbeatInterval: time.Second,
		Snapshot: source.SnapshotConfig{Mode: snapshot.Never}, SnapshotConsistency: ConsistencyWatermarks, SignalTable: db + ".cdcd_signal"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureSignalTable(admin, db+".cdcd_signal"); err != nil {
		t.Fatal(err)
	}
	out := make(chan []change.Item, 64)
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- src.Run(runCtx, change.Resume{}, out) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("the source ended with %v", err)
		}
	}()
	// txOfChange waits for the stream's change of key k with op and returns its Tx.
	txOfChange := func(op change.Op, k int64) uint64 {
		t.Helper()
		for {
			select {
			case items := <-out:
				for _, it := range items {
					ev := it.Event
					if it.Commit != nil || ev.Op != op {
						continue
					}
					row := ev.After
					if op == change.OpDelete {
						row = ev.Before
					}
					if row[0].Int == k {
						return ev.Pos.Tx
					}
				}
			case err := <-runErr:
				t.Fatalf("the source ended: %v", err)
			case <-ctx.Done():
				t.Fatalf("no %v of key %d from the stream", op, k)
			}
		}
	}

	select { // a new pipeline's first item: it streams from here
	case <-out:
	case err := <-runErr:
		t.Fatalf("the source ended: %v", err)
	case <-ctx.Done():
		t.Fatal("the source did not start streaming")
	}
	exec("UPDATE " + db + ".kv SET v = 1 WHERE k = 3")
	before := txOfChange(change.OpUpdate, 3)

	// A delete that takes its row lock now and commits only after the chunk was read.
	locker, err := Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	for _, q := range []string{"BEGIN", "DELETE FROM " + db + ".kv WHERE k = 5"} {
		if _, err := locker.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	w, err := src.openSnapshotWorker(ctx, ConsistencyWatermarks)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	task := &snapshot.Task{Table: db + ".kv"}
	if _, _, err := w.Describe(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := w.Prepare(ctx, task); err != nil {
		t.Fatal(err)
	}
	rd, err := w.Read(ctx, task, snapshot.Chunk{Seq: 1}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	saw5 := false
	for _, r := range rd.Rows {
		saw5 = saw5 || r.Vals[0].Int == 5
	}
	if !saw5 || len(rd.Rows) != 6 {
		t.Fatalf("the chunk has %d rows (key 5: %v): its snapshot must see the row the open delete holds", len(rd.Rows), saw5)
	}
	if _, err := locker.Execute("COMMIT"); err != nil {
		t.Fatal(err)
	}
	deleted := txOfChange(change.OpDelete, 5)

	if !rd.Visible(before) {
		t.Errorf("a transaction committed before the low watermark (Tx %d) counts as not visible (horizon %d)", before, rd.Horizon)
	}
	if rd.Visible(deleted) {
		t.Errorf("the delete committed after the low watermark (Tx %d) counts as visible (horizon %d): the stale row would be published after it", deleted, rd.Horizon)
	}
	if !(before < rd.Horizon && rd.Horizon < deleted) {
		t.Errorf("horizon %d is not between %d and %d", rd.Horizon, before, deleted)
	}
	if n := src.lows.len(); n != 0 {
		t.Errorf("%d low watermarks still waited for", n)
	}
}
