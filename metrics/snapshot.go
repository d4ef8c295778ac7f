package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the snapshot engine's metrics (it implements snapshot.Metrics).
type Snapshot struct {
	Rows      *prometheus.CounterVec // pipeline, table
	Estimated *prometheus.GaugeVec   // pipeline, table
	Chunks    *prometheus.CounterVec // pipeline, table
	Running   *prometheus.GaugeVec   // pipeline
	Duration  *prometheus.GaugeVec   // pipeline, table
	Rejected  *prometheus.CounterVec // pipeline, reason
}

func newSnapshot(f factory) *Snapshot {
	return &Snapshot{
		Rows:      f.counter("cdcd_snapshot_rows_total", "Existing rows a snapshot read and handed to the stream (op r; rows the stream had already changed are not counted).", "pipeline", "table"),
		Estimated: f.gauge("cdcd_snapshot_rows_estimated", "The database's estimate of a table's rows when its snapshot started (pg_class.reltuples).", "pipeline", "table"),
		Chunks:    f.counter("cdcd_snapshot_chunks_total", "Snapshot chunks read and handed to the stream.", "pipeline", "table"),
		Running:   f.gauge("cdcd_snapshot_running", "1 while the pipeline has a snapshot queued or being read, 0 otherwise.", "pipeline"),
		Rejected:  f.counter("cdcd_signals_rejected_total", "Snapshot requests (cdcd_signal) ignored because they were not signed with the pipeline's signal key or were malformed; reason: unsigned, bad_signature, no_key, malformed, invalid_condition.", "pipeline", "reason"),
		Duration:  f.gauge("cdcd_snapshot_duration_seconds", "Seconds since the table's current (or last) snapshot started, as of its last chunk.", "pipeline", "table"),
	}
}

// Chunk counts one chunk of rows.
func (s *Snapshot) Chunk(pipeline, table string, rows int) {
	s.Rows.WithLabelValues(pipeline, table).Add(float64(rows))
	s.Chunks.WithLabelValues(pipeline, table).Inc()
}

// Table sets a table's estimate and elapsed time.
func (s *Snapshot) Table(pipeline, table string, estimated int64, elapsed time.Duration) {
	s.Estimated.WithLabelValues(pipeline, table).Set(float64(max(estimated, 0)))
	s.Duration.WithLabelValues(pipeline, table).Set(elapsed.Seconds())
}

// SetRunning sets whether a snapshot runs.
func (s *Snapshot) SetRunning(pipeline string, running bool) {
	v := 0.0
	if running {
		v = 1
	}
	s.Running.WithLabelValues(pipeline).Set(v)
}

// SignalRejected counts a snapshot request the engine ignored (snapshot.SignalMetrics).
func (s *Snapshot) SignalRejected(pipeline, reason string) {
	s.Rejected.WithLabelValues(pipeline, reason).Inc()
}
