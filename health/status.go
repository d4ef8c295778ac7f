package health

import (
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The status page: what /readyz and /metrics say, for a person. Rendered on the server
// (html/template), no script; the page reloads itself every StatusRefresh.

// StatusRefresh is how often the status page reloads itself.
const StatusRefresh = 5 * time.Second

//go:embed status.html
var statusFS embed.FS

var statusTmpl = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"bytes":    formatBytes,
	"seconds":  formatSeconds,
	"ago":      func(t time.Time, now time.Time) string { return formatSeconds(now.Sub(t).Seconds()) },
	"num":      formatCount,
	"percent":  func(f float64) string { return fmt.Sprintf("%.1f %%", f) },
	"refresh":  func() int { return int(StatusRefresh / time.Second) },
	"joinKeys": joinKeys,
}).ParseFS(statusFS, "status.html"))

// StatusPipeline is one pipeline's row of the page.
type StatusPipeline struct {
	Name       string
	State      State
	Kind       string // postgres | mysql, from the metrics it has
	LagSeconds *float64
	LagBytes   *float64
	Slots      []StatusSlot
	Binlog     *StatusBinlog
	Dead       float64
	Snapshot   []StatusSnapshot
}

// StatusSlot is a replication slot of a pipeline.
type StatusSlot struct {
	Name        string
	Retained    float64
	SafeWAL     float64
	SafeWALSet  bool   // false: max_slot_wal_keep_size is unlimited
	MaxKeepSize string // the server's max_slot_wal_keep_size, formatted

}

// StatusBinlog is a MySQL pipeline's binlog position against the server's.
type StatusBinlog struct {
	LagSeconds, LagBytes           *float64
	PurgeDistBytes, PurgeDistFiles *float64
	Expire                         *float64
}

// StatusSnapshot is one table's snapshot progress.
type StatusSnapshot struct {
	SnapshotTable
	Percent    float64
	HasPercent bool
	Rate       float64 // rows per second since it started
}

// StatusWindow is one window job's row.
type StatusWindow struct {
	Name        string
	State       State
	LagSeconds  *float64
	LagRecords  *float64
	StateBytes  *float64
	StateMax    *float64
	OpenWindows *float64
	Dead        float64
}

type statusData struct {
	Now       time.Time
	Ready     bool
	Pipelines []StatusPipeline
	Windows   []StatusWindow
	MetricErr string
	Fleet     *Fleet // nil unless in fleet mode
}

// StatusHandler serves the status page: each pipeline's phase and reason, lag, slot or binlog
// headroom, snapshot progress and dead letters, and each window job's lag and state, from the
// registry and the metrics g gathers. It shows no configuration, so no secret: reasons are
// redacted as for /readyz.
func (r *Registry) StatusHandler(g prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		d := r.statusData(g)
		var b strings.Builder
		if err := statusTmpl.Execute(&b, d); err != nil {
			http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(b.String()))
	})
}

func (r *Registry) statusData(g prometheus.Gatherer) statusData {
	states, ready := r.Snapshot()
	now := r.now()
	d := statusData{Now: now, Ready: ready, Fleet: r.Fleet()}
	m := metricSet{}
	if g != nil {
		fams, err := g.Gather()
		if err != nil {
			d.MetricErr = err.Error()
		}
		for _, f := range fams {
			m[f.GetName()] = f.GetMetric()
		}
	}
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := states[n]
		if job, ok := strings.CutPrefix(n, windowPrefix); ok {
			l := map[string]string{"window_job": job}
			d.Windows = append(d.Windows, StatusWindow{
				Name: job, State: s,
				LagSeconds:  m.one("cdcd_window_consumer_lag_seconds", l),
				LagRecords:  m.sum("cdcd_window_consumer_lag_records", l),
				StateBytes:  m.one("cdcd_window_state_bytes", l),
				StateMax:    m.one("cdcd_window_state_max_bytes", l),
				OpenWindows: m.sum("cdcd_window_open_windows", l),
				Dead:        deref(m.sum("cdcd_window_dead_letters_total", l)),
			})
			continue
		}
		l := map[string]string{"pipeline": n}
		p := StatusPipeline{Name: n, State: s,
			LagSeconds: m.one("cdcd_source_lag_seconds", l),
			LagBytes:   m.one("cdcd_source_lag_bytes", l),
			Dead:       deref(m.sum("cdcd_dead_letters_total", l)),
		}
		for _, mt := range m.match("cdcd_postgres_slot_retained_wal_bytes", l) {
			slot := label(mt, "slot")
			sl := map[string]string{"pipeline": n, "slot": slot}
			st := StatusSlot{Name: slot, Retained: value(mt), MaxKeepSize: "–"}
			if v := m.one("cdcd_postgres_max_slot_wal_keep_size_bytes", sl); v != nil {
				st.MaxKeepSize = formatBytes(*v)
				if math.IsNaN(*v) || *v < 0 {
					st.MaxKeepSize = "unlimited"
				}
			}
			if v := m.one("cdcd_postgres_slot_safe_wal_size_bytes", sl); v != nil && !math.IsNaN(*v) {
				st.SafeWAL, st.SafeWALSet = *v, true
			}
			p.Slots = append(p.Slots, st)
		}
		if len(p.Slots) > 0 {
			p.Kind = "postgres"
		}
		if lag := m.one("cdcd_mysql_binlog_lag_bytes", l); lag != nil || m.one("cdcd_mysql_binlog_purge_distance_files", l) != nil {
			p.Kind = "mysql"
			p.Binlog = &StatusBinlog{LagSeconds: m.one("cdcd_mysql_binlog_lag_seconds", l), LagBytes: lag,
				PurgeDistBytes: m.one("cdcd_mysql_binlog_purge_distance_bytes", l), PurgeDistFiles: m.one("cdcd_mysql_binlog_purge_distance_files", l),
				Expire: m.one("cdcd_mysql_binlog_expire_seconds", l)}
		}
		for _, t := range s.Snapshot {
			ss := StatusSnapshot{SnapshotTable: t}
			if t.RowsEstimated > 0 {
				ss.Percent, ss.HasPercent = min(100, 100*float64(t.Rows)/float64(t.RowsEstimated)), true
			}
			if el := now.Sub(t.Started).Seconds(); !t.Started.IsZero() && el > 0 {
				ss.Rate = float64(t.Rows) / el
			}
			p.Snapshot = append(p.Snapshot, ss)
		}
		d.Pipelines = append(d.Pipelines, p)
	}
	return d
}

// metricSet is the gathered metrics by family name.
type metricSet map[string][]*dto.Metric

// match returns the metrics of family name whose labels include want.
func (m metricSet) match(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, mt := range m[name] {
		ok := true
		for k, v := range want {
			ok = ok && label(mt, k) == v
		}
		if ok {
			out = append(out, mt)
		}
	}
	return out
}

// one is the value of the first matching metric; nil when there is none.
func (m metricSet) one(name string, want map[string]string) *float64 {
	ms := m.match(name, want)
	if len(ms) == 0 {
		return nil
	}
	v := value(ms[0])
	return &v
}

// sum adds the matching metrics; nil when there is none.
func (m metricSet) sum(name string, want map[string]string) *float64 {
	ms := m.match(name, want)
	if len(ms) == 0 {
		return nil
	}
	var v float64
	for _, mt := range ms {
		v += value(mt)
	}
	return &v
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func formatBytes(v any) string {
	f, ok := toFloat(v)
	if !ok {
		return "–"
	}
	if math.IsNaN(f) {
		return "–"
	}
	neg := ""
	if f < 0 {
		neg, f = "-", -f
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%s%.0f B", neg, f)
	}
	return fmt.Sprintf("%s%.1f %s", neg, f, units[i])
}

func formatSeconds(v any) string {
	f, ok := toFloat(v)
	if !ok || math.IsNaN(f) {
		return "–"
	}
	d := time.Duration(f * float64(time.Second))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", f*1000)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", f)
	default:
		return d.Round(time.Second).String()
	}
}

func formatCount(v any) string {
	f, ok := toFloat(v)
	if !ok || math.IsNaN(f) {
		return "–"
	}
	s := fmt.Sprintf("%.0f", math.Abs(f))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if f < 0 {
		return "-" + b.String()
	}
	return b.String()
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, false
	case *float64:
		if x == nil {
			return 0, false
		}
		return *x, true
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

func joinKeys(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
