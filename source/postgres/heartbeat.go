package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

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
