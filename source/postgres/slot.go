package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type slotInfo struct {
	created        bool
	confirmedFlush uint64
	restartLSN     uint64
	walStatus      string
	snapshotName   string // exported snapshot of a slot created now (for an initial snapshot)
}

// ensureSlot returns the slot's state, creating it (pgoutput) if it does not exist.
func ensureSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, name string, log *slog.Logger) (slotInfo, error) {
	var si slotInfo
	var confirmed, restart, plugin string
	err := conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '0/0'), coalesce(restart_lsn::text, '0/0'),
			coalesce(wal_status, ''), coalesce(plugin, '')
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&confirmed, &restart, &si.walStatus, &plugin)
	if err == pgx.ErrNoRows {
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil {
			return si, fmt.Errorf("creating replication slot %s: %w", name, err)
		}
		lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return si, fmt.Errorf("creating replication slot %s: %w", name, err)
		}
		log.Info("replication slot created", "slot", name, "consistent_point", res.ConsistentPoint)
		return slotInfo{created: true, confirmedFlush: uint64(lsn), restartLSN: uint64(lsn), walStatus: "reserved", snapshotName: res.SnapshotName}, nil
	}
	if err != nil {
		return si, fmt.Errorf("reading replication slot %s: %w", name, err)
	}
	if plugin != "pgoutput" {
		return si, &FatalError{fmt.Errorf("replication slot %s uses plugin %q, not pgoutput; fix: choose another slot name or drop it", name, plugin)}
	}
	c, err := pglogrepl.ParseLSN(confirmed)
	if err != nil {
		return si, err
	}
	r, err := pglogrepl.ParseLSN(restart)
	if err != nil {
		return si, err
	}
	si.confirmedFlush, si.restartLSN = uint64(c), uint64(r)
	return si, nil
}

// checkResume refuses to stream past a gap: if the pipeline committed positions before but the
// slot is new or was acknowledged beyond them, changes in between are missing.
func checkResume(slotName string, slot slotInfo, r change.Resume) error {
	if !r.Committed {
		return nil
	}
	if slot.created {
		return &FatalError{fmt.Errorf("slot %s did not exist although the pipeline committed changes up to %s: it was dropped or the database failed over, and the changes since are lost to the slot; "+
			"fix: re-snapshot the tables, then `cdcd reset-offsets --config FILE --pipeline NAME` to start from the new slot", slotName, pglogrepl.LSN(r.AckLSN))}
	}
	if slot.walStatus == "lost" {
		return &FatalError{fmt.Errorf("slot %s has wal_status lost: the server removed WAL it still needed (max_slot_wal_keep_size); fix: drop the slot, reset offsets and re-snapshot", slotName)}
	}
	return nil
}
