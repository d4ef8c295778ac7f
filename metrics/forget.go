package metrics

import (
	"reflect"

	"github.com/prometheus/client_golang/prometheus"
)

// ForgetGauges removes every gauge series of pipeline from the metric sets given (*Metrics,
// *MySQL; nested sets such as Snapshot too). A fleet instance that no longer runs a pipeline
// (it moved to another instance) must not keep reporting its last lag, readiness or slot
// retention: alerts would fire on a value nobody updates. Counters and histograms stay: their
// rates still sum correctly over the instances.
func ForgetGauges(pipeline string, sets ...any) {
	l := prometheus.Labels{"pipeline": pipeline}
	for _, s := range sets {
		forget(reflect.ValueOf(s), l)
	}
}

var gaugeVecType = reflect.TypeFor[*prometheus.GaugeVec]()

func forget(v reflect.Value, l prometheus.Labels) {
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return
	}
	if v.Type() == gaugeVecType {
		v.Interface().(*prometheus.GaugeVec).DeletePartialMatch(l)
		return
	}
	e := v.Elem()
	if e.Kind() != reflect.Struct {
		return
	}
	for i := range e.NumField() {
		if f := e.Field(i); f.CanInterface() {
			forget(f, l)
		}
	}
}
