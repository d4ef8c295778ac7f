package verify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cdcd_verify_* series of a run, for a CronJob to push or write out.
type Metrics struct {
	Rows        *prometheus.GaugeVec
	Records     *prometheus.GaugeVec
	Differences *prometheus.GaugeVec
	Duration    *prometheus.GaugeVec
	Errors      *prometheus.GaugeVec
	Equal       *prometheus.GaugeVec
	LastRun     *prometheus.GaugeVec
}

// NewMetrics registers the verify metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	return &Metrics{
		Rows:        g("cdcd_verify_rows", "Rows the last verify read from the table.", "pipeline", "table"),
		Records:     g("cdcd_verify_records", "Records the last verify read from the table's topic.", "pipeline", "table"),
		Differences: g("cdcd_verify_differences", "Keys the last verify found differing, by kind (missing: not in the topic, extra: not in the table, different: other values).", "pipeline", "table", "kind"),
		Duration:    g("cdcd_verify_duration_seconds", "How long the last verify of the table took.", "pipeline", "table"),
		Errors:      g("cdcd_verify_table_error", "1 when the last verify could not compare the table (see its log line), else 0.", "pipeline", "table"),
		Equal:       g("cdcd_verify_equal", "1 when the last verify found every table equal to its topic, else 0.", "pipeline"),
		LastRun:     g("cdcd_verify_last_run_timestamp_seconds", "When the last verify of the pipeline ended (Unix time).", "pipeline"),
	}
}

func (m *Metrics) observe(pipeline string, t *TableReport) {
	if m == nil {
		return
	}
	m.Rows.WithLabelValues(pipeline, t.Table).Set(float64(t.Rows))
	m.Records.WithLabelValues(pipeline, t.Table).Set(float64(t.Records))
	m.Differences.WithLabelValues(pipeline, t.Table, Missing).Set(float64(t.Missing))
	m.Differences.WithLabelValues(pipeline, t.Table, Extra).Set(float64(t.Extra))
	m.Differences.WithLabelValues(pipeline, t.Table, Different).Set(float64(t.Different))
	m.Duration.WithLabelValues(pipeline, t.Table).Set(t.Seconds)
	e := 0.0
	if t.Error != "" {
		e = 1
	}
	m.Errors.WithLabelValues(pipeline, t.Table).Set(e)
}

func (m *Metrics) finish(pipeline string, equal bool) {
	if m == nil {
		return
	}
	v := 0.0
	if equal {
		v = 1
	}
	m.Equal.WithLabelValues(pipeline).Set(v)
	m.LastRun.WithLabelValues(pipeline).Set(float64(time.Now().Unix()))
}
