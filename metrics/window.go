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
	Commits, Aborts                    uint64
	OpenWindows, StateBytes            int
	StreamTime                         map[int32]time.Time // per owned repartition partition
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

	mu   sync.Mutex
	jobs map[string]func() WindowStats

	in, out, late, txns, open, state, stream *prometheus.Desc
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
		jobs:   map[string]func() WindowStats{},
		in:     prometheus.NewDesc("cdcd_window_records_in_total", "Input change records a window job consumed in committed transactions.", []string{"window_job"}, nil),
		out:    prometheus.NewDesc("cdcd_window_records_out_total", "Results a window job wrote in committed transactions.", []string{"window_job"}, nil),
		late:   prometheus.NewDesc("cdcd_window_records_late_total", "Records a window job wrote to its late topic (too late for their window) in committed transactions.", []string{"window_job"}, nil),
		txns:   prometheus.NewDesc("cdcd_window_transactions_total", "Kafka transactions a window job ended, by outcome (commit, abort).", []string{"window_job", "outcome"}, nil),
		open:   prometheus.NewDesc("cdcd_window_open_windows", "Windows a window job holds open on this instance.", []string{"window_job"}, nil),
		state:  prometheus.NewDesc("cdcd_window_state_bytes", "Estimated bytes of window state held on this instance (its changelog form).", []string{"window_job"}, nil),
		stream: prometheus.NewDesc("cdcd_window_stream_time_seconds", "Stream time (unix seconds: the largest event time seen, or the wall clock once idle) of each repartition partition this instance owns.", []string{"window_job", "partition"}, nil),
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

// Describe implements prometheus.Collector.
func (w *WindowJobs) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{w.in, w.out, w.late, w.txns, w.open, w.state, w.stream} {
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
		ch <- prometheus.MustNewConstMetric(w.txns, prometheus.CounterValue, float64(s.Commits), job, "commit")
		ch <- prometheus.MustNewConstMetric(w.txns, prometheus.CounterValue, float64(s.Aborts), job, "abort")
		ch <- prometheus.MustNewConstMetric(w.open, prometheus.GaugeValue, float64(s.OpenWindows), job)
		ch <- prometheus.MustNewConstMetric(w.state, prometheus.GaugeValue, float64(s.StateBytes), job)
		for p, t := range s.StreamTime {
			ch <- prometheus.MustNewConstMetric(w.stream, prometheus.GaugeValue, float64(t.UnixMilli())/1000, job, strconv.Itoa(int(p)))
		}
	}
}
