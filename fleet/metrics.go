package fleet

import (
	"sync"

	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics say which instance runs what: scrape every instance and sum
// cdcd_fleet_pipeline_running by pipeline (1 everywhere when the fleet is healthy).
type Metrics struct {
	m     *metrics.Fleet
	mu    sync.Mutex
	known map[string]bool
}

// NewMetrics registers the fleet metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{m: metrics.NewFleet(reg), known: map[string]bool{}}
}

// Observe records s (a Config.OnChange).
func (m *Metrics) Observe(s Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	joined := 0.0
	if s.Joined {
		joined = 1
	}
	m.m.Member.WithLabelValues(s.Group, s.Instance).Set(joined)
	now := map[string]bool{}
	for _, p := range s.Pipelines {
		now[p] = true
		m.known[p] = true
		m.m.PipelineRunning.WithLabelValues(s.Group, s.Instance, p).Set(1)
	}
	for p := range m.known {
		if !now[p] {
			m.m.PipelineRunning.WithLabelValues(s.Group, s.Instance, p).Set(0)
		}
	}
}
