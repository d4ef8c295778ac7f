package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// MonitorConfig configures the slot and progress watcher of one pipeline.
type MonitorConfig struct {
	Pipeline string
	DSN      string
	Slot     string
	Tables   []string
	// Interval between polls; each poll has a timeout of min(Interval, 5s).
	Interval time.Duration
	// StallAfter: how long the pipeline may deliver nothing while the server shows work for
	// it before it is declared stalled (unready, cdcd_pipeline_stalled 1).
	StallAfter time.Duration
	// Published returns how many events the pipeline has committed to Kafka so far.
	Published func() uint64
	Metrics   *metrics.Metrics
	Health    *health.Registry
	Log       *slog.Logger
}

// Monitor polls the slot's statistics and the server's progress on its own connection, so it
// never blocks the stream, and declares the pipeline stalled when it delivers nothing while
// the server shows work for it:
//   - rows of the captured tables changed (pg_stat_all_tables) but no event was published, or
//   - the server's WAL grew but the slot's confirmed position did not move
//
// for longer than StallAfter. It runs until ctx ends; the first poll is immediate.
func Monitor(ctx context.Context, cfg MonitorConfig) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &monitor{cfg: cfg}
	t := time.NewTimer(0)
	defer t.Stop()
	defer func() {
		if m.conn != nil {
			m.conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.poll(ctx); err != nil && ctx.Err() == nil {
			cfg.Log.Warn("polling slot statistics failed; retrying at the next interval", "slot", cfg.Slot, "err", err)
			if m.conn != nil {
				m.conn.Close(context.Background())
				m.conn = nil
			}
		}
		t.Reset(cfg.Interval)
	}
}

type monitor struct {
	cfg  MonitorConfig
	conn *pgx.Conn

	// progress marks: when the published count or the confirmed position last moved, and the
	// server's counters at that moment
	published     uint64
	publishedAt   time.Time
	tupAtMark     int64
	confirmed     uint64
	confirmedAt   time.Time
	walAtConfirm  uint64
	stalledReason string
}

func (m *monitor) poll(ctx context.Context) error {
	timeout := min(m.cfg.Interval, 5*time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if m.conn == nil {
		c, err := connectCatalog(ctx, m.cfg.DSN)
		if err != nil {
			return err
		}
		m.conn = c
	}
	var st slotStats
	var walText string
	var confirmedText, restartText *string
	// The captured tables' row counters include their partitions' (a partitioned table has
	// none of its own).
	err := m.conn.QueryRow(ctx, `WITH RECURSIVE tree(relid) AS (
			SELECT to_regclass(c.name)::oid FROM unnest($2::text[]) AS c(name)
			UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid)
		SELECT pg_current_wal_lsn()::text,
			s.confirmed_flush_lsn::text, s.restart_lsn::text, coalesce(s.wal_status, ''),
			coalesce(s.active, false), s.slot_name IS NOT NULL, s.safe_wal_size,
			(SELECT setting::int8 FROM pg_settings WHERE name = 'max_slot_wal_keep_size'),
			(SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::int8 FROM pg_stat_all_tables
			  WHERE relid IN (SELECT relid FROM tree))
		FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`, m.cfg.Slot, quotedTables(m.cfg.Tables)).
		Scan(&walText, &confirmedText, &restartText, &st.walStatus, &st.active, &st.found, &st.safe, &st.keep, &st.tup)
	if err != nil {
		return fmt.Errorf("querying pg_replication_slots: %w", err)
	}
	wal, _ := pglogrepl.ParseLSN(walText)
	st.wal = uint64(wal)
	if confirmedText != nil {
		lsn, _ := pglogrepl.ParseLSN(*confirmedText)
		st.confirmed, st.hasConfirmed = uint64(lsn), true
	}
	if restartText != nil {
		lsn, _ := pglogrepl.ParseLSN(*restartText)
		st.restart, st.hasRestart = uint64(lsn), true
	}
	m.report(st)
	m.checkStall(time.Now(), st.wal, st.confirmed, st.tup)
	return nil
}

// slotStats is one poll's reading of the slot and the server.
type slotStats struct {
	wal                      uint64
	confirmed, restart       uint64
	hasConfirmed, hasRestart bool // false when the server reports NULL (a lost slot has no restart_lsn)
	walStatus                string
	active, found            bool
	safe                     *int64
	keep                     int64
	tup                      int64
}

// report sets the slot's metrics. A position the server reports as NULL is no position: the
// series that depend on it are removed rather than computed from 0 (which read as the whole
// WAL, and fired the retention alert for a lost slot); the wal_status series carries the
// alert for a lost slot.
func (m *monitor) report(st slotStats) {
	mt := m.cfg.Metrics
	if mt == nil || !st.found {
		return
	}
	p, s := m.cfg.Pipeline, m.cfg.Slot
	if st.hasRestart {
		mt.SlotRetainedBytes.WithLabelValues(p, s).Set(float64(sub(st.wal, st.restart)))
	} else {
		mt.SlotRetainedBytes.DeleteLabelValues(p, s)
	}
	if st.hasConfirmed {
		mt.SlotFlushLagBytes.WithLabelValues(p, s).Set(float64(sub(st.wal, st.confirmed)))
	} else {
		mt.SlotFlushLagBytes.DeleteLabelValues(p, s)
	}
	if st.safe != nil {
		mt.SlotSafeWALBytes.WithLabelValues(p, s).Set(float64(*st.safe))
	} else {
		mt.SlotSafeWALBytes.WithLabelValues(p, s).Set(math.NaN())
	}
	if st.keep >= 0 {
		mt.SlotMaxKeepBytes.WithLabelValues(p, s).Set(float64(st.keep) * (1 << 20)) // setting is in MB
	} else {
		mt.SlotMaxKeepBytes.WithLabelValues(p, s).Set(math.NaN())
	}
	mt.SlotActive.WithLabelValues(p, s).Set(b2f(st.active))
	mt.SetWALStatus(p, s, st.walStatus)
}

func (m *monitor) checkStall(now time.Time, wal, confirmed uint64, tup int64) {
	pub := uint64(0)
	if m.cfg.Published != nil {
		pub = m.cfg.Published()
	}
	if m.publishedAt.IsZero() || pub != m.published || tup < m.tupAtMark {
		m.published, m.publishedAt, m.tupAtMark = pub, now, tup
	}
	if m.confirmedAt.IsZero() || confirmed != m.confirmed || wal < m.walAtConfirm {
		m.confirmed, m.confirmedAt, m.walAtConfirm = confirmed, now, wal
	}
	reason := ""
	switch {
	case tup > m.tupAtMark && now.Sub(m.publishedAt) >= m.cfg.StallAfter:
		reason = fmt.Sprintf("delivering nothing: %d row changes on the captured tables since %s, none published; check that publication covers the tables (SELECT * FROM pg_publication_tables) and the pipeline's logs",
			tup-m.tupAtMark, m.publishedAt.UTC().Format(time.RFC3339))
	case wal > m.walAtConfirm && now.Sub(m.confirmedAt) >= m.cfg.StallAfter:
		reason = fmt.Sprintf("position not advancing: the slot's confirmed position has stayed at %s since %s while the server wrote %d bytes of WAL; the slot retains that WAL",
			pglogrepl.LSN(confirmed), m.confirmedAt.UTC().Format(time.RFC3339), wal-m.walAtConfirm)
	}
	if reason != m.stalledReason {
		if reason != "" {
			m.cfg.Log.Warn("pipeline stalled", "reason", reason)
		} else {
			m.cfg.Log.Info("pipeline delivering again")
		}
		m.stalledReason = reason
	}
	if m.cfg.Health != nil {
		m.cfg.Health.SetCondition(m.cfg.Pipeline, "stalled", reason)
	}
	if m.cfg.Metrics != nil {
		m.cfg.Metrics.PipelineStalled.WithLabelValues(m.cfg.Pipeline).Set(b2f(reason != ""))
	}
}

// quotedTables spells the configured tables as to_regclass reads them ("schema"."table").
func quotedTables(tables []string) []string {
	out := make([]string, 0, len(tables))
	for _, t := range tables {
		if s, n, err := change.ParseTableName(t); err == nil {
			out = append(out, quoteQualified(s, n))
		}
	}
	return out
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
