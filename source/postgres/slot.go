package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type slotInfo struct {
	exists         bool
	created        bool // created by this session
	confirmedFlush uint64
	restartLSN     uint64 // 0 when the server reports none (a lost slot)
	walStatus      string
	snapshotName   string // exported snapshot of a slot created now (for an initial snapshot)
}

// readSlot returns the slot's state; exists is false when there is no such slot. It never
// changes the server.
func readSlot(ctx context.Context, conn *pgx.Conn, name string) (slotInfo, error) {
	var si slotInfo
	var confirmed, restart *string
	var plugin string
	err := conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, restart_lsn::text, coalesce(wal_status, ''), coalesce(plugin, '')
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&confirmed, &restart, &si.walStatus, &plugin)
	if errors.Is(err, pgx.ErrNoRows) {
		return si, nil
	}
	if err != nil {
		return si, fmt.Errorf("reading replication slot %s: %w", name, err)
	}
	si.exists = true
	if plugin != "pgoutput" {
		return si, &FatalError{Err: fmt.Errorf("replication slot %s uses plugin %q, not pgoutput; fix: choose another slot name or drop it", name, plugin)}
	}
	for _, f := range []struct {
		text *string
		dst  *uint64
	}{{confirmed, &si.confirmedFlush}, {restart, &si.restartLSN}} {
		if f.text == nil {
			continue
		}
		lsn, err := pglogrepl.ParseLSN(*f.text)
		if err != nil {
			return si, fmt.Errorf("reading replication slot %s: %w", name, err)
		}
		*f.dst = uint64(lsn)
	}
	return si, nil
}

// createSlot creates the logical replication slot (pgoutput) on the replication connection.
func createSlot(ctx context.Context, repl *pgconn.PgConn, name string, log *slog.Logger) (slotInfo, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return slotInfo{}, fmt.Errorf("creating replication slot %s: %w", name, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return slotInfo{}, fmt.Errorf("creating replication slot %s: parsing its consistent point: %w", name, err)
	}
	log.Info("replication slot created", "slot", name, "consistent_point", res.ConsistentPoint)
	return slotInfo{exists: true, created: true, confirmedFlush: uint64(lsn), restartLSN: uint64(lsn), walStatus: "reserved", snapshotName: res.SnapshotName}, nil
}

// checkResume decides, before anything is created, whether the pipeline may stream from the
// slot: if the pipeline committed positions before but the slot is missing or lost, the
// changes since are gone from the server, and a new slot would only hold WAL while the
// pipeline sits failed. (A slot acknowledged beyond the committed position is a gap the
// pipeline checks once it has fenced older producers.)
func checkResume(slotName string, slot slotInfo, r change.Resume) error {
	if !r.Committed {
		return nil
	}
	if !slot.exists {
		return &FatalError{Err: fmt.Errorf("slot %s did not exist although the pipeline committed changes up to %s: it was dropped or the database failed over, and the changes since are lost to any new slot; cdcd created nothing; "+
			"fix: re-snapshot the tables, then `cdcd reset-offsets --config FILE --pipeline NAME` to start with a new slot", slotName, pglogrepl.LSN(r.AckPosition))}
	}
	if slot.walStatus == "lost" {
		return &FatalError{Err: fmt.Errorf("slot %s has wal_status lost: the server removed WAL it still needed (max_slot_wal_keep_size); fix: drop the slot (SELECT pg_drop_replication_slot('%s')), reset offsets and re-snapshot", slotName, slotName)}
	}
	return nil
}
