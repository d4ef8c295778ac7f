package health

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/redact"
	"github.com/prometheus/client_golang/prometheus"
)

func statusPage(t *testing.T, r *Registry, g prometheus.Gatherer, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.StatusHandler(g).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestStatusPageShowsEveryPipelineAndJob(t *testing.T) {
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	r := NewRegistry("shop", "inventory", WindowKey("orders_per_customer"))
	r.now = func() time.Time { return now }
	r.Set("shop", true, "streaming", "")
	r.SetSnapshot("shop", []SnapshotTable{{Table: "public.orders", Reason: "initial", Rows: 25000, RowsEstimated: 100000,
		Chunks: 5, ChunksPending: 15, Started: now.Add(-10 * time.Second)}})
	r.Set("inventory", false, "retrying", "connecting to mysql: dial tcp 10.0.0.9:3306: connection refused")
	r.SetWindow("orders_per_customer", "running", "")

	reg := prometheus.NewRegistry()
	gauge := func(name string, v float64, labels ...string) {
		names := []string{}
		vals := []string{}
		for i := 0; i < len(labels); i += 2 {
			names, vals = append(names, labels[i]), append(vals, labels[i+1])
		}
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, names)
		reg.MustRegister(g)
		g.WithLabelValues(vals...).Set(v)
	}
	gauge("cdcd_source_lag_seconds", 1.5, "pipeline", "shop")
	gauge("cdcd_source_lag_bytes", 2048, "pipeline", "shop")
	gauge("cdcd_postgres_slot_retained_wal_bytes", 3*1024*1024, "pipeline", "shop", "slot", "cdcd_shop")
	gauge("cdcd_postgres_slot_safe_wal_size_bytes", math.NaN(), "pipeline", "shop", "slot", "cdcd_shop")
	gauge("cdcd_dead_letters_total", 7, "pipeline", "shop")
	gauge("cdcd_mysql_binlog_lag_bytes", 4096, "pipeline", "inventory")
	gauge("cdcd_mysql_binlog_purge_distance_files", 3, "pipeline", "inventory")
	gauge("cdcd_window_consumer_lag_seconds", 4, "window_job", "orders_per_customer")
	gauge("cdcd_window_state_bytes", 5*1024*1024, "window_job", "orders_per_customer")

	code, body := statusPage(t, r, reg, "/")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`id="pipeline-shop"`, `phase-snapshotting">snapshotting<`, "1.5 s", "2.0 KiB", // lag
		"cdcd_shop", "3.0 MiB", "unlimited", // the slot's retained WAL and safe_wal_size
		"public.orders", "25,000", "100,000", "25.0 %", "2,500 rows/s", // the snapshot
		`id="pipeline-inventory"`, "(mysql)", "phase-retrying", "connection refused", "3 file(s)", // binlog headroom
		`id="window-orders_per_customer"`, "4.0 s", "5.0 MiB",
		"not ready",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script; it must work without JavaScript")
	}
	if code, _ := statusPage(t, r, reg, "/nope"); code != 404 {
		t.Errorf("/nope: status %d, want 404", code)
	}
}

// Reasons on the page are redacted as on /readyz, and the page escapes what it shows.
func TestStatusPageRedactsAndEscapes(t *testing.T) {
	r := NewRegistry("shop")
	r.SetRedactor(redact.New("known-secret").String) // as cmd/cdcd sets it
	r.Set("shop", false, "failed", `auth failed with known-secret for postgres://u:PGSECRET9@db/shop <b>bold</b>`)
	_, body := statusPage(t, r, nil, "/")
	if strings.Contains(body, "known-secret") || strings.Contains(body, "PGSECRET9") {
		t.Errorf("the status page serves a secret: %s", body)
	}
	if strings.Contains(body, "<b>bold</b>") || !strings.Contains(body, "&lt;b&gt;bold&lt;/b&gt;") {
		t.Error("the reason is not escaped")
	}
}
