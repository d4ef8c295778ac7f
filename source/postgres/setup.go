package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ensurePublication creates the publication for exactly tables, or adds and drops tables of
// an existing one to match. A FOR ALL TABLES publication is left alone (the stream filters).
func ensurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string, log *slog.Logger) error {
	quoted := make([]string, 0, len(tables))
	for _, t := range tables {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			return &FatalError{err}
		}
		quoted = append(quoted, quoteQualified(s, n))
	}
	var allTables bool
	err := conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, name).Scan(&allTables)
	if err == pgx.ErrNoRows {
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", quoteIdent(name), strings.Join(quoted, ", "))); err != nil {
			return &FatalError{fmt.Errorf("creating publication %s: %w (fix: create it as the tables' owner: CREATE PUBLICATION %s FOR TABLE %s)", name, err, quoteIdent(name), strings.Join(quoted, ", "))}
		}
		log.Info("publication created", "publication", name, "tables", tables)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading publication %s: %w", name, err)
	}
	if allTables {
		return nil
	}
	have, err := publicationTables(ctx, conn, name)
	if err != nil {
		return fmt.Errorf("reading publication %s: %w", name, err)
	}
	want := map[string]string{}
	for i, t := range tables {
		want[normalizeTable(t)] = quoted[i]
	}
	var add, drop []string
	for t, q := range want {
		if !have[t] {
			add = append(add, q)
		}
	}
	for t := range have {
		if _, ok := want[t]; !ok {
			s, n, _ := change.ParseTableName(t)
			drop = append(drop, quoteQualified(s, n))
		}
	}
	sort.Strings(add)
	sort.Strings(drop)
	if len(add) > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", quoteIdent(name), strings.Join(add, ", "))); err != nil {
			return &FatalError{fmt.Errorf("adding %v to publication %s: %w (fix: run it as the publication's owner)", add, name, err)}
		}
		log.Info("publication tables added", "publication", name, "tables", add)
	}
	if len(drop) > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE %s", quoteIdent(name), strings.Join(drop, ", "))); err != nil {
			return &FatalError{fmt.Errorf("dropping %v from publication %s: %w (fix: run it as the publication's owner)", drop, name, err)}
		}
		log.Info("publication tables dropped", "publication", name, "tables", drop)
	}
	return nil
}

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

// heartbeat writes a transactional logical message every interval, so the slot has a
// transaction to acknowledge while the captured tables are idle and other tables or databases
// write WAL. (A non-transactional message would not move the slot forward.)
func (s *Source) heartbeat(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			c, err := connectCatalog(ctx, s.cfg.DSN)
			if err != nil {
				s.log.Warn("heartbeat: connecting failed; retrying at the next interval", "err", err)
				continue
			}
			conn = c
		}
		qctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatInterval)
		_, err := conn.Exec(qctx, `SELECT pg_logical_emit_message(true, $1, now()::text)`, HeartbeatPrefix)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat failed; retrying at the next interval", "err", err)
			conn.Close(context.Background())
			conn = nil
		}
	}
}
