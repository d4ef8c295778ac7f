package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWindowJobMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	w := NewWindowJobs(reg)
	w.Add("orders", func() WindowStats {
		return WindowStats{RecordsIn: 10, RecordsOut: 3, RecordsLate: 1, DeadLetters: 2, Commits: 4, Aborts: 1, OpenWindows: 2, StateBytes: 300,
			StreamTime: map[int32]time.Time{1: time.UnixMilli(1_700_000_000_500)}}
	})
	w.ConsumerLag.WithLabelValues("orders", "shop.public.orders", "0").Set(5)
	want := `
# HELP cdcd_window_records_in_total Input change records a window job consumed in committed transactions.
# TYPE cdcd_window_records_in_total counter
cdcd_window_records_in_total{window_job="orders"} 10
# HELP cdcd_window_records_late_total Records a window job wrote to its late topic (too late for their window) in committed transactions.
# TYPE cdcd_window_records_late_total counter
cdcd_window_records_late_total{window_job="orders"} 1
# HELP cdcd_window_dead_letters_total Input records a window job could never process (on_error: dlq) and wrote to its dead-letter topic in committed transactions.
# TYPE cdcd_window_dead_letters_total counter
cdcd_window_dead_letters_total{window_job="orders"} 2
# HELP cdcd_window_transactions_total Kafka transactions a window job ended, by outcome (commit, abort).
# TYPE cdcd_window_transactions_total counter
cdcd_window_transactions_total{outcome="abort",window_job="orders"} 1
cdcd_window_transactions_total{outcome="commit",window_job="orders"} 4
# HELP cdcd_window_open_windows Windows a window job holds open on this instance.
# TYPE cdcd_window_open_windows gauge
cdcd_window_open_windows{window_job="orders"} 2
# HELP cdcd_window_stream_time_seconds Stream time (unix seconds: the largest event time seen, or the wall clock once idle) of each repartition partition this instance owns.
# TYPE cdcd_window_stream_time_seconds gauge
cdcd_window_stream_time_seconds{partition="1",window_job="orders"} 1.7000000005e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cdcd_window_records_in_total", "cdcd_window_records_late_total", "cdcd_window_dead_letters_total",
		"cdcd_window_transactions_total", "cdcd_window_open_windows", "cdcd_window_stream_time_seconds"); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Restore progress (records and bytes read from the changelog, partitions still restoring,
// records left to read), the state limit and the duration of each transaction by outcome.
func TestWindowJobRestoreAndTransactionMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	w := NewWindowJobs(reg)
	w.Add("orders", func() WindowStats {
		return WindowStats{RestoredRecords: 1000, RestoredBytes: 64000, RestoringPartitions: 2, RestoreRemaining: 500, StateMaxBytes: 1 << 30}
	})
	w.ObserveTransaction("orders", true, 30*time.Millisecond)
	w.ObserveTransaction("orders", false, 2*time.Second)
	want := `
# HELP cdcd_window_restore_records_total Changelog records a window job read to restore its state (on assignment, after an aborted transaction).
# TYPE cdcd_window_restore_records_total counter
cdcd_window_restore_records_total{window_job="orders"} 1000
# HELP cdcd_window_restore_bytes_total Bytes of changelog records (keys and values) a window job read to restore its state.
# TYPE cdcd_window_restore_bytes_total counter
cdcd_window_restore_bytes_total{window_job="orders"} 64000
# HELP cdcd_window_restoring_partitions Partitions whose state the window job is restoring now (it processes none of their records until done).
# TYPE cdcd_window_restoring_partitions gauge
cdcd_window_restoring_partitions{window_job="orders"} 2
# HELP cdcd_window_restore_remaining_records Changelog records the running restore still has to read (an upper bound: compaction may have removed some).
# TYPE cdcd_window_restore_remaining_records gauge
cdcd_window_restore_remaining_records{window_job="orders"} 500
# HELP cdcd_window_state_max_bytes The window job's state.max_bytes: the job stops when its state on this instance exceeds it.
# TYPE cdcd_window_state_max_bytes gauge
cdcd_window_state_max_bytes{window_job="orders"} 1.073741824e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cdcd_window_restore_records_total", "cdcd_window_restore_bytes_total",
		"cdcd_window_restoring_partitions", "cdcd_window_restore_remaining_records", "cdcd_window_state_max_bytes"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(w.TxnDuration); n != 2 {
		t.Errorf("cdcd_window_transaction_duration_seconds has %d series, want one per outcome (2)", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
