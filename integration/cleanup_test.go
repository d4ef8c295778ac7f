package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// A test's database is dropped with its replication slots even while a client streams from
// one and reconnects as soon as its walsender is terminated, as a pipeline still running
// does: left behind, the slot would keep WAL on the stack's server and pin the database.
func TestDropDatabaseDropsActiveSlots(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, time.Minute)
	const name = "cdcd_cleanup_slots"
	dsn := newDatabase(t, ctx, s, name)
	slot := uniqueName("cleanup")
	rc, err := pgconn.Connect(ctx, dsn+"?replication=database")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pglogrepl.CreateReplicationSlot(ctx, rc, slot, "test_decoding", pglogrepl.CreateReplicationSlotOptions{}); err != nil {
		t.Fatal(err)
	}
	rc.Close(ctx)

	// The client: streams from the slot, and when its connection ends, connects again.
	stream := func() {
		c, err := pgconn.Connect(ctx, dsn+"?replication=database")
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		if pglogrepl.StartReplication(ctx, c, slot, 0, pglogrepl.StartReplicationOptions{}) != nil {
			return
		}
		for {
			if _, err := c.ReceiveMessage(ctx); err != nil {
				return
			}
		}
	}
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for cctx.Err() == nil {
			stream()
		}
	}()
	defer func() { stop(); wg.Wait() }()

	admin := pgConnect(t, ctx, s.pgDSN)
	for active := false; !active; time.Sleep(20 * time.Millisecond) {
		if err := admin.QueryRow(ctx, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
	}

	if err := dropDatabase(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	var slots, dbs int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&dbs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || dbs != 0 {
		t.Errorf("after dropDatabase: %d slot(s) named %s and %d database(s) named %s left", slots, slot, dbs, name)
	}
}
