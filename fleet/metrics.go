package fleet

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics say which instance runs what: scrape every instance and sum
// cdcd_fleet_pipeline_running by pipeline (1 everywhere when the fleet is healthy).
type Metrics struct {
	running *prometheus.GaugeVec
	member  *prometheus.GaugeVec
	mu      sync.Mutex
	known   map[string]bool
}

// NewMetrics registers the fleet metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdcd_fleet_pipeline_running",
			Help: "1 for each pipeline the fleet assigned to this instance and that runs here."}, []string{"group", "instance", "pipeline"}),
		member: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdcd_fleet_member",
			Help: "1 while this instance is a member of its fleet group."}, []string{"group", "instance"}),
		known: map[string]bool{},
	}
	reg.MustRegister(m.running, m.member)
	return m
}

// Observe records s (a Config.OnChange).
func (m *Metrics) Observe(s Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	joined := 0.0
	if s.Joined {
		joined = 1
	}
	m.member.WithLabelValues(s.Group, s.Instance).Set(joined)
	now := map[string]bool{}
	for _, p := range s.Pipelines {
		now[p] = true
		m.known[p] = true
		m.running.WithLabelValues(s.Group, s.Instance, p).Set(1)
	}
	for p := range m.known {
		if !now[p] {
			m.running.WithLabelValues(s.Group, s.Instance, p).Set(0)
		}
	}
}
