package metrics

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WindowStats is what a window job reports (window.Job.Stats, mapped by cmd/cdcd). Counters
// count what committed.
type WindowStats struct {
	RecordsIn, RecordsOut, RecordsLate uint64
	DeadLetters                        uint64
	Commits, Aborts                    uint64
	OpenWindows, StateBytes            int
	StreamTime                         map[int32]time.Time // per owned repartition partition
	// Restore progress: changelog records and bytes read so far (counters), partitions being
	// restored and records the running restore has left (gauges).
	RestoredRecords, RestoredBytes uint64
	RestoringPartitions            int
	RestoreRemaining               int64
	StateMaxBytes                  int64 // state.max_bytes; 0: no limit
}

// WindowJobs exports window jobs' metrics, labelled window_job (not job: Prometheus's target
// label). Counters and gauges are read from each job when
// Prometheus scrapes (so they are never older than the job's last transaction); consumer lag
// is set by whoever measures it against the brokers (cmd/cdcd's lag watcher), because a job
// that is stuck or down cannot report its own lag.
type WindowJobs struct {
	// ConsumerLag is the end offset (last stable offset) minus the group's committed offset,
	// per input and repartition partition.
	ConsumerLag *prometheus.GaugeVec // window_job, topic, partition
	// ConsumerLagSeconds is how long ago the job was last caught up with every partition.
	ConsumerLagSeconds *prometheus.GaugeVec // window_job
	Ready              *prometheus.GaugeVec // window_job
	Failed             *prometheus.GaugeVec // window_job
	// TxnDuration is how long each Kafka transaction took from its first record to its end
	// (commit or abort), observed by ObserveTransaction.
	TxnDuration *prometheus.HistogramVec // window_job, outcome

	mu   sync.Mutex
	jobs map[string]func() WindowStats

	in, out, late, dlq, txns, open, state, stream                    *prometheus.Desc
	restoredRecords, restoredBytes, restoring, restoreLeft, stateMax *prometheus.Desc
}

// NewWindowJobs registers the window job metrics on reg.
func NewWindowJobs(reg prometheus.Registerer) *WindowJobs {
	f := factory{reg}
	w := &WindowJobs{
		ConsumerLag: f.gauge("cdcd_window_consumer_lag_records",
			"Records of a window job's input (and repartition) partition not yet consumed and committed: end offset minus committed offset. A caught-up partition of a transactional topic shows 1 (its last commit marker).",
			"window_job", "topic", "partition"),
		ConsumerLagSeconds: f.gauge("cdcd_window_consumer_lag_seconds",
			"Seconds since the window job was last seen caught up with every partition (lag of at most the commit marker); 0 while caught up.", "window_job"),
		Ready:  f.gauge("cdcd_window_job_ready", "1 while the window job is running (restored and consuming), 0 otherwise.", "window_job"),
		Failed: f.gauge("cdcd_window_job_failed", "1 once the window job stopped on an error retrying cannot fix (it stays stopped until cdcd restarts).", "window_job"),
		TxnDuration: f.histogram("cdcd_window_transaction_duration_seconds",
			"Duration of a window job's Kafka transactions, from the first record produced in it to the end of the commit or abort, by outcome (commit, abort).",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "window_job", "outcome"),
		jobs:            map[string]func() WindowStats{},
		in:              prometheus.NewDesc("cdcd_window_records_in_total", "Input change records a window job consumed in committed transactions.", []string{"window_job"}, nil),
		out:             prometheus.NewDesc("cdcd_window_records_out_total", "Results a window job wrote in committed transactions.", []string{"window_job"}, nil),
		late:            prometheus.NewDesc("cdcd_window_records_late_total", "Records a window job wrote to its late topic (too late for their window) in committed transactions.", []string{"window_job"}, nil),
		dlq:             prometheus.NewDesc("cdcd_window_dead_letters_total", "Input records a window job could never process (on_error: dlq) and wrote to its dead-letter topic in committed transactions.", []string{"window_job"}, nil),
		txns:            prometheus.NewDesc("cdcd_window_transactions_total", "Kafka transactions a window job ended, by outcome (commit, abort).", []string{"window_job", "outcome"}, nil),
		open:            prometheus.NewDesc("cdcd_window_open_windows", "Windows a window job holds open on this instance.", []string{"window_job"}, nil),
		state:           prometheus.NewDesc("cdcd_window_state_bytes", "Estimated bytes of window state held on this instance (its changelog form).", []string{"window_job"}, nil),
		restoredRecords: prometheus.NewDesc("cdcd_window_restore_records_total", "Changelog records a window job read to restore its state (on assignment, after an aborted transaction).", []string{"window_job"}, nil),
		restoredBytes:   prometheus.NewDesc("cdcd_window_restore_bytes_total", "Bytes of changelog records (keys and values) a window job read to restore its state.", []string{"window_job"}, nil),
		restoring:       prometheus.NewDesc("cdcd_window_restoring_partitions", "Partitions whose state the window job is restoring now (it processes none of their records until done).", []string{"window_job"}, nil),
		restoreLeft:     prometheus.NewDesc("cdcd_window_restore_remaining_records", "Changelog records the running restore still has to read (an upper bound: compaction may have removed some).", []string{"window_job"}, nil),
		stateMax:        prometheus.NewDesc("cdcd_window_state_max_bytes", "The window job's state.max_bytes: the job stops when its state on this instance exceeds it.", []string{"window_job"}, nil),
		stream:          prometheus.NewDesc("cdcd_window_stream_time_seconds", "Stream time (unix seconds: the largest event time seen, or the wall clock once idle) of each repartition partition this instance owns.", []string{"window_job", "partition"}, nil),
	}
	reg.MustRegister(w)
	return w
}

// Add exports a job's stats under its name.
func (w *WindowJobs) Add(job string, stats func() WindowStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.jobs[job] = stats
}

// ObserveTransaction records one ended transaction of a job and how long it took.
func (w *WindowJobs) ObserveTransaction(job string, committed bool, took time.Duration) {
	outcome := "abort"
	if committed {
		outcome = "commit"
	}
	w.TxnDuration.WithLabelValues(job, outcome).Observe(took.Seconds())
}

// Describe implements prometheus.Collector.
func (w *WindowJobs) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{w.in, w.out, w.late, w.dlq, w.txns, w.open, w.state, w.stream,
		w.restoredRecords, w.restoredBytes, w.restoring, w.restoreLeft, w.stateMax} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (w *WindowJobs) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	names := make([]string, 0, len(w.jobs))
	for n := range w.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() WindowStats, len(names))
	for i, n := range names {
		fns[i] = w.jobs[n]
	}
	w.mu.Unlock()
	for i, job := range names {
		s := fns[i]()
		ch <- prometheus.MustNewConstMetric(w.in, prometheus.CounterValue, float64(s.RecordsIn), job)
		ch <- prometheus.MustNewConstMetric(w.out, prometheus.CounterValue, float64(s.RecordsOut), job)
		ch <- prometheus.MustNewConstMetric(w.late, prometheus.CounterValue, float64(s.RecordsLate), job)
		ch <- prometheus.MustNewConstMetric(w.dlq, prometheus.CounterValue, float64(s.DeadLetters), job)
		ch <- prometheus.MustNewConstMetric(w.txns, prometheus.CounterValue, float64(s.Commits), job, "commit")
		ch <- prometheus.MustNewConstMetric(w.txns, prometheus.CounterValue, float64(s.Aborts), job, "abort")
		ch <- prometheus.MustNewConstMetric(w.open, prometheus.GaugeValue, float64(s.OpenWindows), job)
		ch <- prometheus.MustNewConstMetric(w.state, prometheus.GaugeValue, float64(s.StateBytes), job)
		ch <- prometheus.MustNewConstMetric(w.restoredRecords, prometheus.CounterValue, float64(s.RestoredRecords), job)
		ch <- prometheus.MustNewConstMetric(w.restoredBytes, prometheus.CounterValue, float64(s.RestoredBytes), job)
		ch <- prometheus.MustNewConstMetric(w.restoring, prometheus.GaugeValue, float64(s.RestoringPartitions), job)
		ch <- prometheus.MustNewConstMetric(w.restoreLeft, prometheus.GaugeValue, float64(s.RestoreRemaining), job)
		if s.StateMaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(w.stateMax, prometheus.GaugeValue, float64(s.StateMaxBytes), job)
		}
		for p, t := range s.StreamTime {
			ch <- prometheus.MustNewConstMetric(w.stream, prometheus.GaugeValue, float64(t.UnixMilli())/1000, job, strconv.Itoa(int(p)))
		}
	}
}
