package postgres

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStallDetection(t *testing.T) {
	var published uint64
	h := health.NewRegistry("p")
	h.Set("p", true, "streaming", "")
	mt := metrics.New(prometheus.NewRegistry(), "test")
	m := &monitor{cfg: MonitorConfig{Pipeline: "p", StallAfter: time.Minute, Published: func() uint64 { return published }, Health: h, Metrics: mt, Log: slog.New(slog.DiscardHandler)}}
	t0 := time.Unix(1_700_000_000, 0)
	ready := func() bool { _, r := h.Snapshot(); return r }
	stalled := func() float64 { return testutil.ToFloat64(mt.PipelineStalled.WithLabelValues("p")) }

	// Rows change and are published, the slot moves: healthy.
	for i := 0; i < 5; i++ {
		published += 10
		m.checkStall(t0.Add(time.Duration(i)*30*time.Second), uint64(1000+i*100), uint64(1000+i*100), int64(10*i))
	}
	if !ready() || stalled() != 0 {
		t.Fatal("a delivering pipeline was declared stalled")
	}
	// Rows keep changing on the server, nothing is published (e.g. the publication lost the
	// table), while heartbeats keep the slot moving: stalled after StallAfter.
	base := t0.Add(2 * time.Minute)
	for i := 0; i <= 3; i++ {
		m.checkStall(base.Add(time.Duration(i)*30*time.Second), uint64(2000+i*100), uint64(2000+i*100), int64(100+i*50))
	}
	st, _ := h.Snapshot()
	if ready() || stalled() != 1 || !strings.Contains(st["p"].Conditions["stalled"], "delivering nothing") {
		t.Fatalf("want stalled: %+v", st["p"])
	}
	// Publishing again clears it.
	published++
	m.checkStall(base.Add(2*time.Minute), 3000, 3000, 400)
	if !ready() || stalled() != 0 {
		t.Fatal("stall not cleared after progress")
	}
	// Idle tables, but the slot's position stays while WAL grows (a paused pipeline): stalled.
	for i := 0; i <= 3; i++ {
		m.checkStall(base.Add(3*time.Minute+time.Duration(i)*30*time.Second), uint64(4000+i*1000), 3000, 400)
	}
	st, _ = h.Snapshot()
	if ready() || !strings.Contains(st["p"].Conditions["stalled"], "position not advancing") {
		t.Fatalf("want position stall: %+v", st["p"])
	}
}

// A lost slot has no restart_lsn (NULL). Its retained-WAL series was computed from 0, i.e. the
// whole WAL position, and fired the retention alert falsely; now the series is absent and the
// wal_status "lost" series carries the alert.
func TestLostSlotReportsNoRetainedBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	mt := metrics.New(reg, "test")
	m := &monitor{cfg: MonitorConfig{Pipeline: "p", Slot: "s", Metrics: mt}}
	m.report(slotStats{found: true, wal: 3 << 30, restart: 1 << 30, hasRestart: true, confirmed: 2 << 30, hasConfirmed: true, walStatus: "reserved"})
	if got := testutil.ToFloat64(mt.SlotRetainedBytes.WithLabelValues("p", "s")); got != 2<<30 {
		t.Fatalf("retained bytes of a healthy slot = %v, want %v", got, 2<<30)
	}
	m.report(slotStats{found: true, wal: 3 << 30, confirmed: 2 << 30, hasConfirmed: true, walStatus: "lost"})
	if n := testutil.CollectAndCount(mt.SlotRetainedBytes, "cdcd_postgres_slot_retained_wal_bytes"); n != 0 {
		t.Fatalf("a lost slot still reports %d retained-bytes series (value %v)", n, testutil.ToFloat64(mt.SlotRetainedBytes.WithLabelValues("p", "s")))
	}
	if got := testutil.ToFloat64(mt.SlotWALStatus.WithLabelValues("p", "s", "lost")); got != 1 {
		t.Fatalf("wal_status lost = %v, want 1", got)
	}
}
