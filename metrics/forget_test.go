package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestForgetGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "test")
	my := NewMySQL(reg)
	for _, p := range []string{"a", "b"} {
		m.PipelineReady.WithLabelValues(p).Set(1)
		m.SourceLagSecs.WithLabelValues(p).Set(3)
		m.Snapshot.Running.WithLabelValues(p).Set(1)
		m.EventsPublished.WithLabelValues(p, "t", "c").Add(5)
	}
	my.LagBytes.WithLabelValues("a").Set(10)
	ForgetGauges("a", m, my)
	for name, c := range map[string]prometheus.Collector{"ready": m.PipelineReady, "lag": m.SourceLagSecs, "snapshot running": m.Snapshot.Running} {
		if n := testutil.CollectAndCount(c); n != 1 {
			t.Errorf("%s: %d series left, want b's only", name, n)
		}
	}
	if n := testutil.CollectAndCount(my.LagBytes); n != 0 {
		t.Errorf("mysql lag: %d series left", n)
	}
	if n := testutil.CollectAndCount(m.EventsPublished); n != 2 {
		t.Errorf("counters: %d series, want both pipelines' kept", n)
	}
}
