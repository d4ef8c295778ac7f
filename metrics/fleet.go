package metrics

import "github.com/prometheus/client_golang/prometheus"

// Fleet are the metrics of fleet mode: which instance runs which pipeline. The instance label
// is fleet_instance (the fleet's name for it): Prometheus sets instance to the scrape target.
type Fleet struct {
	PipelineRunning *prometheus.GaugeVec // group, fleet_instance, pipeline
	Member          *prometheus.GaugeVec // group, fleet_instance
}

// NewFleet registers the fleet metrics on reg.
func NewFleet(reg prometheus.Registerer) *Fleet {
	f := factory{reg}
	return &Fleet{
		PipelineRunning: f.gauge("cdcd_fleet_pipeline_running", "1 for each pipeline the fleet assigned to this instance and that runs here, 0 after it moved away.",
			"group", "fleet_instance", "pipeline"),
		Member: f.gauge("cdcd_fleet_member", "1 while this instance is a member of its fleet group.", "group", "fleet_instance"),
	}
}
