package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetricsDuringRun scrapes /metrics while a pipeline streams: every metric the person on
// call needs is there with a sane value, and the exposition is lint-clean.
func TestMetricsDuringRun(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_metrics", `CREATE TABLE m (id int PRIMARY KEY, v text)`)
	name := uniqueName("metrics")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.m"}, ""))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO m SELECT g, 'v' FROM generate_series(1, 500) g; UPDATE m SET v = 'w' WHERE id <= 100; DELETE FROM m WHERE id <= 10`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for d.metric("cdcd_events_published_total") < 610 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a heartbeat and a slot poll
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(resp.Body).Lint()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	checks := []struct {
		metric string
		ok     func(float64) bool
		want   string
	}{
		{"cdcd_events_published_total", func(v float64) bool { return v == 610 }, "610 (500 creates, 100 updates, 10 deletes)"},
		{"cdcd_published_bytes_total", func(v float64) bool { return v > 610*10 }, "> 6100"},
		{"cdcd_kafka_transactions_total", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"cdcd_kafka_transaction_commit_duration_seconds_count", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"cdcd_end_to_end_latency_seconds_count", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"cdcd_end_to_end_latency_seconds_sum", func(v float64) bool { return v > 0 && v < 600 }, "in (0, 600)"},
		{"cdcd_last_committed_source_timestamp_seconds", func(v float64) bool { return time.Since(time.Unix(int64(v), 0)) < time.Minute }, "within the last minute"},
		{"cdcd_source_lag_seconds", func(v float64) bool { return v >= 0 && v < 60 }, "in [0, 60)"},
		{"cdcd_source_lag_bytes", func(v float64) bool { return v >= 0 && v < 1<<30 }, "in [0, 1 GiB)"},
		{"cdcd_pipeline_ready", func(v float64) bool { return v == 1 }, "1"},
		{"cdcd_pipeline_stalled", func(v float64) bool { return v == 0 }, "0"},
		{"cdcd_postgres_slot_retained_wal_bytes", func(v float64) bool { return v >= 0 && v < 1<<30 }, "in [0, 1 GiB)"},
		{"cdcd_postgres_slot_confirmed_flush_lag_bytes", func(v float64) bool { return v >= 0 && v < 1<<30 }, "in [0, 1 GiB)"},
		{"cdcd_postgres_slot_active", func(v float64) bool { return v == 1 }, "1"},
		{"cdcd_postgres_slot_wal_status", func(v float64) bool { return v == 1 }, "exactly one status set"},
		{"cdcd_build_info", func(v float64) bool { return v == 1 }, "1"},
	}
	for _, c := range checks {
		if v := d.metric(c.metric); !c.ok(v) {
			t.Errorf("%s = %v, want %s", c.metric, v, c.want)
		}
	}
	if body, _ := get(t, "http://"+d.http+"/metrics"); !strings.Contains(body, `cdcd_events_published_total{op="update",pipeline="`+name+`",table="public.m"} 100`) {
		t.Errorf("per-op counts missing:\n%s", grepLines(body, "cdcd_events_published_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSlotRetentionReported: WAL written while the daemon is stopped is reported as retained
// by the slot within the first poll after start, and the shipped alert fires on that series.
func TestSlotRetentionReported(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_retention", `CREATE TABLE q (id int PRIMARY KEY); CREATE TABLE filler (id int, pad text)`)
	name := uniqueName("retention")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.q"}, ""))
	d.waitReady(90 * time.Second)
	d.stop(syscall.SIGTERM)

	// 500 MB of WAL from a table the pipeline does not capture, while it is stopped.
	var start string
	if err := db.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&start); err != nil {
		t.Fatal(err)
	}
	for written := int64(0); written < 500<<20; {
		if _, err := db.Exec(ctx, `INSERT INTO filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 50000) g; TRUNCATE filler`); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT pg_current_wal_lsn() - $1::pg_lsn`, start).Scan(&written); err != nil {
			t.Fatal(err)
		}
	}
	// Give the server a limit so the near-limit alert has its denominator: retained / 0.88.
	var retained int64
	if err := db.QueryRow(ctx, `SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&retained); err != nil {
		t.Fatal(err)
	}
	admin := pgConnect(t, ctx, s.pgDSN)
	limitMB := int64(float64(retained)/0.88) >> 20
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER SYSTEM SET max_slot_wal_keep_size = '%dMB'`, limitMB)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, `ALTER SYSTEM RESET max_slot_wal_keep_size`)
		_, _ = admin.Exec(ctx, `SELECT pg_reload_conf()`)
	})
	if _, err := admin.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	d.restart()
	// Within one poll (the first is at start) the metric shows it.
	var got float64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if body, code := get(t, "http://"+d.http+"/metrics"); code == 200 && strings.Contains(body, "cdcd_postgres_slot_retained_wal_bytes{") {
			got = d.metric("cdcd_postgres_slot_retained_wal_bytes")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got < 500<<20 {
		t.Fatalf("retained WAL reported %v bytes after start, want >= 500 MB", got)
	}
	keep := d.metric("cdcd_postgres_max_slot_wal_keep_size_bytes")
	t.Logf("retained %.0f MB of max_slot_wal_keep_size %.0f MB", got/(1<<20), keep/(1<<20))

	// Feed the observed series to promtool: the shipped near-limit alert fires on it.
	dir := t.TempDir()
	rules, _ := filepath.Abs("../deploy/prometheus/alerts.yaml")
	test := fmt.Sprintf(`rule_files: [%q]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'cdcd_postgres_slot_retained_wal_bytes{pipeline="%[2]s", slot="%[2]s"}'
        values: '%.0[3]fx10'
      - series: 'cdcd_postgres_max_slot_wal_keep_size_bytes{pipeline="%[2]s", slot="%[2]s"}'
        values: '%.0[4]fx10'
    alert_rule_test:
      - eval_time: 6m
        alertname: CdcdSlotRetainedWALNearLimit
        exp_alerts:
          - exp_labels: {severity: page, pipeline: %[2]s, slot: %[2]s}
            exp_annotations:
              summary: "slot %[2]s holds %.4[5]g%% of max_slot_wal_keep_size"
              description: "When it reaches the limit the server invalidates the slot (wal_status lost) and changes are lost to it."
              runbook_url: "https://github.com/cdcd-dev/cdcd/blob/main/docs/troubleshooting.md#the-slot-retains-too-much-wal"
`, rules, name, got, keep, got/keep*100)
	path := filepath.Join(dir, "observed_test.yaml")
	if err := os.WriteFile(path, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("../scripts/promtool.sh", "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("the near-limit alert does not fire on the observed series: %v\n%s", err, out)
	}
	d.waitReady(time.Minute) // the pipeline catches up
}

// TestDeliveringNothingIsUnready: a publication that no longer covers the captured table, with
// a busy server, turns the pipeline unready (and cdcd_pipeline_stalled 1) within stall_after.
func TestDeliveringNothingIsUnready(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_nothing", `CREATE TABLE busy (id serial PRIMARY KEY, v int)`)
	name := uniqueName("nothing")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.busy"}, "    stall_after: 5s\n"))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `ALTER PUBLICATION `+name+` DROP TABLE busy`); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	defer func() { close(stop); <-writerDone }()
	go func() {
		defer close(writerDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_, _ = db.Exec(ctx, `INSERT INTO busy (v) SELECT g FROM generate_series(1, 100) g`)
			}
		}
	}()
	t0 := time.Now()
	body := d.waitUnready(time.Minute, "delivering nothing")
	t.Logf("unready after %s: %s", time.Since(t0).Round(time.Second), body)
	if v := d.metric("cdcd_pipeline_stalled"); v != 1 {
		t.Errorf("cdcd_pipeline_stalled = %v", v)
	}
}
