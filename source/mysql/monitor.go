package mysql

import (
	"context"
	"log/slog"
	"time"

	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/go-mysql-org/go-mysql/client"
)

// MonitorConfig configures Monitor.
type MonitorConfig struct {
	Pipeline string
	DSN      string
	Source   *Source
	Interval time.Duration // default 10s
	Metrics  *metrics.MySQL
	Log      *slog.Logger
}

// Monitor sets the binlog lag and retention metrics of one pipeline every Interval until ctx
// ends. It runs also while the pipeline is failed or retrying: how close the committed
// position is to being purged matters most then.
func Monitor(ctx context.Context, cfg MonitorConfig) {
	if cfg.Metrics == nil {
		return
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var conn *client.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		if conn == nil {
			c, err := Connect(ctx, cfg.DSN)
			if err != nil {
				cfg.Log.Debug("binlog monitor: connecting", "err", err)
			} else {
				conn = c
			}
		}
		if conn != nil {
			if err := sample(conn, cfg); err != nil {
				cfg.Log.Debug("binlog monitor: sampling", "err", err)
				conn.Close()
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// binlogState is what one sample of the server says, computed against cdcd's positions.
type binlogState struct {
	lagBytes, retained, purgeBytes   uint64
	files, purgeFiles                int
	lagKnown, committedKnown, purged bool
}

func sample(conn *client.Conn, cfg MonitorConfig) error {
	names, sizes, err := binlogFiles(conn)
	if err != nil {
		return err
	}
	vars, err := variables(conn, "binlog_expire_logs_seconds", "expire_logs_days")
	if err != nil {
		return err
	}
	m, p := cfg.Metrics, cfg.Pipeline
	m.ExpireSeconds.WithLabelValues(p).Set(float64(retentionSeconds(vars)))
	st := measure(names, sizes, cfg.Source.read.Load(), cfg.Source.Acked())
	m.RetainedBytes.WithLabelValues(p).Set(float64(st.retained))
	m.Files.WithLabelValues(p).Set(float64(st.files))
	if st.lagKnown {
		m.LagBytes.WithLabelValues(p).Set(float64(st.lagBytes))
		lagSecs := 0.0
		if st.lagBytes > 0 {
			if ts := cfg.Source.readTime.Load(); ts > 0 {
				lagSecs = max(0, time.Since(time.Unix(ts, 0)).Seconds())
			}
		}
		m.LagSeconds.WithLabelValues(p).Set(lagSecs)
	}
	if st.committedKnown {
		m.PurgeDistanceBytes.WithLabelValues(p).Set(float64(st.purgeBytes))
		m.PurgeDistanceFiles.WithLabelValues(p).Set(float64(st.purgeFiles))
		purged := 0.0
		if st.purged {
			purged = 1
		}
		m.CommittedPurged.WithLabelValues(p).Set(purged)
	}
	return nil
}

// measure compares the server's binlogs with the position read (file seq<<32 | offset) and
// the committed Tx (same layout); zero positions are unknown.
func measure(names []string, sizes []uint64, read, committed uint64) binlogState {
	st := binlogState{files: len(names), lagKnown: read != 0, committedKnown: committed != 0}
	rSeq, rPos := uint32(read>>32), uint64(uint32(read))
	cSeq, cPos := uint32(committed>>32), uint64(uint32(committed))
	oldest := uint32(0)
	for i, n := range names {
		seq, err := fileSeq(n)
		if err != nil {
			continue
		}
		if i == 0 {
			oldest = seq
		}
		size := sizes[i]
		st.retained += size
		switch {
		case seq > rSeq:
			st.lagBytes += size
		case seq == rSeq && size > rPos:
			st.lagBytes += size - rPos
		}
		switch {
		case seq < cSeq:
			st.purgeBytes += size
			st.purgeFiles++
		case seq == cSeq:
			st.purgeBytes += min(cPos, size)
		}
	}
	st.purged = st.committedKnown && len(names) > 0 && cSeq < oldest
	return st
}
