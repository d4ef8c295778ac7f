// Package metrics defines every Prometheus metric cdcd exports, on a registry passed in (no
// globals), so names, units and label sets live in one place. Labels are bounded: pipeline,
// table, op, class, cause — never a key, a position or an error text.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of collectors. The zero value is not usable; call New.
type Metrics struct {
	PipelineReady   *prometheus.GaugeVec // pipeline
	PipelineFailed  *prometheus.GaugeVec // pipeline
	PipelineStalled *prometheus.GaugeVec // pipeline

	EventsPublished *prometheus.CounterVec // pipeline, table, op
	BytesPublished  *prometheus.CounterVec // pipeline, table, op
	Transactions    *prometheus.CounterVec // pipeline, outcome (commit | abort)
	CommitDuration  *prometheus.HistogramVec
	EndToEnd        *prometheus.HistogramVec // source commit -> Kafka commit
	SourceLagSecs   *prometheus.GaugeVec
	SourceLagBytes  *prometheus.GaugeVec
	LastCommitted   *prometheus.GaugeVec   // unix seconds of the last committed source commit
	Retries         *prometheus.CounterVec // pipeline, cause
	ToastUnchanged  *prometheus.CounterVec // pipeline, table
	DeadLetters     *prometheus.CounterVec // pipeline, table, class
	RegistryErrors  *prometheus.CounterVec // pipeline, kind
	KafkaErrors     *prometheus.CounterVec // pipeline, kind
	TxSpilled       *prometheus.CounterVec // pipeline
	SchemaVersions  *prometheus.CounterVec // pipeline, table

	SlotRetainedBytes *prometheus.GaugeVec // pipeline, slot
	SlotFlushLagBytes *prometheus.GaugeVec // pipeline, slot
	SlotSafeWALBytes  *prometheus.GaugeVec // pipeline, slot
	SlotActive        *prometheus.GaugeVec // pipeline, slot
	SlotMaxKeepBytes  *prometheus.GaugeVec // pipeline, slot
	SlotWALStatus     *prometheus.GaugeVec // pipeline, slot, status (1 for the current one)

	Snapshot *Snapshot

	FlightTraces prometheus.Counter // execution traces written by the flight recorder
}

// New registers every collector on reg.
func New(reg prometheus.Registerer, version string) *Metrics {
	f := factory{reg}
	m := &Metrics{
		PipelineReady:   f.gauge("cdcd_pipeline_ready", "1 while the pipeline is connected and streaming, 0 otherwise.", "pipeline"),
		PipelineFailed:  f.gauge("cdcd_pipeline_failed", "1 once the pipeline stopped on an error retrying cannot fix (it stays stopped until cdcd restarts).", "pipeline"),
		PipelineStalled: f.gauge("cdcd_pipeline_stalled", "1 while the pipeline delivers nothing although the server shows work for it (see /readyz for why).", "pipeline"),

		EventsPublished: f.counter("cdcd_events_published_total", "Change events committed to Kafka.", "pipeline", "table", "op"),
		BytesPublished:  f.counter("cdcd_published_bytes_total", "Bytes of record keys and values committed to Kafka.", "pipeline", "table", "op"),
		Transactions:    f.counter("cdcd_kafka_transactions_total", "Kafka transactions ended, by outcome (commit, abort).", "pipeline", "outcome"),
		CommitDuration: f.histogram("cdcd_kafka_transaction_commit_duration_seconds", "Time to flush and commit one Kafka transaction.",
			prometheus.ExponentialBuckets(0.001, 2, 14), "pipeline"),
		EndToEnd: f.histogram("cdcd_end_to_end_latency_seconds", "Time from the source transaction's commit to the Kafka commit that published it.",
			prometheus.ExponentialBuckets(0.001, 2, 18), "pipeline"),
		SourceLagSecs:  f.gauge("cdcd_source_lag_seconds", "Age of the newest source transaction received, at the time it was received.", "pipeline"),
		SourceLagBytes: f.gauge("cdcd_source_lag_bytes", "Source log bytes between the server's current position and the last committed position.", "pipeline"),
		LastCommitted:  f.gauge("cdcd_last_committed_source_timestamp_seconds", "Commit time (unix seconds) of the last source transaction committed to Kafka.", "pipeline"),
		Retries:        f.counter("cdcd_retries_total", "Retries after retriable failures, by cause.", "pipeline", "cause"),
		ToastUnchanged: f.counter("cdcd_toast_unchanged_placeholders_total", "Unchanged TOAST values published (as the placeholder, or as null listed in unchanged_toast).", "pipeline", "table"),
		DeadLetters:    f.counter("cdcd_dead_letters_total", "Records written to the dead-letter topic, by error class.", "pipeline", "table", "class"),
		RegistryErrors: f.counter("cdcd_schema_registry_errors_total", "Schema registry requests that failed, by kind (unavailable, rejected).", "pipeline", "kind"),
		KafkaErrors:    f.counter("cdcd_kafka_errors_total", "Kafka produce/transaction failures, by kind.", "pipeline", "kind"),
		TxSpilled:      f.counter("cdcd_source_transactions_spilled_total", "Source transactions that outgrew the memory limit and were buffered on disk.", "pipeline"),
		SchemaVersions: f.counter("cdcd_schema_changes_total", "New table schema versions seen by the source.", "pipeline", "table"),

		SlotRetainedBytes: f.gauge("cdcd_postgres_slot_retained_wal_bytes", "WAL the slot holds back: pg_current_wal_lsn() - restart_lsn.", "pipeline", "slot"),
		SlotFlushLagBytes: f.gauge("cdcd_postgres_slot_confirmed_flush_lag_bytes", "pg_current_wal_lsn() - confirmed_flush_lsn.", "pipeline", "slot"),
		SlotSafeWALBytes:  f.gauge("cdcd_postgres_slot_safe_wal_size_bytes", "WAL that can still be written before the slot is lost (NaN when max_slot_wal_keep_size is unlimited).", "pipeline", "slot"),
		SlotActive:        f.gauge("cdcd_postgres_slot_active", "1 when a walsender is attached to the slot.", "pipeline", "slot"),
		SlotMaxKeepBytes:  f.gauge("cdcd_postgres_max_slot_wal_keep_size_bytes", "The server's max_slot_wal_keep_size (NaN when unlimited).", "pipeline", "slot"),
		SlotWALStatus:     f.gauge("cdcd_postgres_slot_wal_status", "1 for the slot's current wal_status (reserved, extended, unreserved, lost).", "pipeline", "slot", "status"),
	}
	m.Snapshot = newSnapshot(f)
	m.FlightTraces = prometheus.NewCounter(prometheus.CounterOpts{Name: "cdcd_flight_recorder_traces_total",
		Help: "Execution traces written by the flight recorder (diagnostics.flight_recorder) after a slow commit."})
	reg.MustRegister(m.FlightTraces)
	bi := f.gauge("cdcd_build_info", "Build information; always 1.", "version", "goversion")
	bi.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// WALStatuses are the values of pg_replication_slots.wal_status.
var WALStatuses = []string{"reserved", "extended", "unreserved", "lost"}

// SetWALStatus sets the status series of one slot so exactly one is 1.
func (m *Metrics) SetWALStatus(pipeline, slot, status string) {
	for _, s := range WALStatuses {
		v := 0.0
		if s == status {
			v = 1
		}
		m.SlotWALStatus.WithLabelValues(pipeline, slot, s).Set(v)
	}
}
