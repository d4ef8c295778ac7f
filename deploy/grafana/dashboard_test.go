// Package grafana holds the cdcd Grafana dashboard (cdcd.json). Its test keeps the dashboard
// in step with package metrics: every cdcd_ metric a query names must be registered by
// metrics.New, and every registered cdcd_ metric must be shown by some panel.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcd-dev/cdcd/metrics"
)

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Multi      bool            `json:"multi"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Datasource  datasource `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // panels of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one target's expression and the row its panel sits in.
type query struct {
	panel, row, expr string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("cdcd.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("cdcd.json: %v", err)
	}
	return d
}

// flatten lists the panels in order, each with the title of the row above it, including the
// panels nested in collapsed rows.
func flatten(ps []panel) (out []panel, rows []string) {
	row := ""
	for _, p := range ps {
		if p.Type == "row" {
			row = p.Title
			out, rows = append(out, p), append(rows, row)
			for _, c := range p.Panels {
				out, rows = append(out, c), append(rows, row)
			}
			continue
		}
		out, rows = append(out, p), append(rows, row)
	}
	return out, rows
}

func queries(t *testing.T, d dashboard) []query {
	t.Helper()
	ps, rows := flatten(d.Panels)
	var qs []query
	for i, p := range ps {
		for _, tg := range p.Targets {
			qs = append(qs, query{panel: p.Title, row: rows[i], expr: tg.Expr})
		}
	}
	if len(qs) == 0 {
		t.Fatal("cdcd.json has no queries")
	}
	return qs
}

// recorder is a Registerer that remembers the descriptors of everything registered through it.
type recorder struct {
	prometheus.Registerer
	labels map[string][]string // fqName -> variable labels
}

var (
	descName   = regexp.MustCompile(`^Desc\{fqName: "((?:[^"\\]|\\.)*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			panic("cannot parse descriptor " + s)
		}
		var labels []string
		if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
			for _, v := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(v, "c("), ")"))
			}
		}
		r.labels[m[1]] = labels
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registered returns every metric metrics.New, metrics.NewMySQL, metrics.NewWindowJobs and
// metrics.NewFleet register, with their variable labels.
func registered() map[string][]string {
	r := &recorder{Registerer: prometheus.NewRegistry(), labels: map[string][]string{}}
	metrics.New(r, "test")
	metrics.NewMySQL(r)
	metrics.NewWindowJobs(r)
	metrics.NewFleet(r)
	return r.labels
}

// pendingSnapshotMetrics are shown in the Snapshots row under the names the snapshot engine
// exports (metrics/snapshot.go); until it registers them, TestMetricsExist lets these five
// names (and only these) pass unregistered. Once registered, every check applies to them.
var pendingSnapshotMetrics = map[string]bool{
	"cdcd_snapshot_rows_total":       true,
	"cdcd_snapshot_rows_estimated":   true,
	"cdcd_snapshot_chunks_total":     true,
	"cdcd_snapshot_running":          true,
	"cdcd_snapshot_duration_seconds": true,
}

var (
	cdcdMetric  = regexp.MustCompile(`cdcd_[a-z0-9_]+`)
	otherMetric = regexp.MustCompile(`\b(?:go|process)_[a-z0-9_]+`)
)

// baseName strips the series suffixes of a histogram or summary.
func baseName(name string, known map[string][]string) string {
	if _, ok := known[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			return b
		}
	}
	return name
}

func TestMetricsExist(t *testing.T) {
	known := registered()
	for _, q := range queries(t, loadDashboard(t)) {
		for _, re := range []*regexp.Regexp{cdcdMetric, otherMetric} {
			for _, name := range re.FindAllString(q.expr, -1) {
				if _, ok := known[baseName(name, known)]; !ok && !pendingSnapshotMetrics[name] {
					t.Errorf("panel %q: %s is not registered by package metrics (query %s)", q.panel, name, q.expr)
				}
			}
		}
	}
}

func TestEveryMetricShown(t *testing.T) {
	known := registered()
	used := map[string]bool{}
	for _, q := range queries(t, loadDashboard(t)) {
		for _, name := range cdcdMetric.FindAllString(q.expr, -1) {
			name = baseName(name, known)
			used[name] = true
			if name == "cdcd_build_info" && q.row != "Process" {
				t.Errorf("panel %q in row %q uses cdcd_build_info; it belongs in the Process row", q.panel, q.row)
			}
		}
	}
	var missing []string
	for name := range known {
		if strings.HasPrefix(name, "cdcd_") && !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s is registered by package metrics but no panel shows it", name)
	}
}

// TestPipelineFilter checks that every selector of a metric with a pipeline label filters on
// the pipeline template variable.
func TestPipelineFilter(t *testing.T) {
	known := registered()
	const filter = `pipeline=~"$pipeline"`
	for _, q := range queries(t, loadDashboard(t)) {
		for _, loc := range cdcdMetric.FindAllStringIndex(q.expr, -1) {
			name := baseName(q.expr[loc[0]:loc[1]], known)
			hasPipeline := false
			for _, l := range known[name] {
				hasPipeline = hasPipeline || l == "pipeline"
			}
			if !hasPipeline {
				continue
			}
			rest := q.expr[loc[1]:]
			sel := ""
			if strings.HasPrefix(rest, "{") {
				if end := strings.IndexByte(rest, '}'); end >= 0 {
					sel = rest[:end+1]
				}
			}
			if !strings.Contains(sel, filter) {
				t.Errorf("panel %q: %s is not filtered on %s (query %s)", q.panel, name, filter, q.expr)
			}
		}
	}
}

// TestWindowJobFilter checks that every selector of a metric with a window_job label filters
// on the window_job template variable.
func TestWindowJobFilter(t *testing.T) {
	known := registered()
	const filter = `window_job=~"$window_job"`
	shown := 0
	for _, q := range queries(t, loadDashboard(t)) {
		for _, loc := range cdcdMetric.FindAllStringIndex(q.expr, -1) {
			name := baseName(q.expr[loc[0]:loc[1]], known)
			hasJob := false
			for _, l := range known[name] {
				hasJob = hasJob || l == "window_job"
			}
			if !hasJob {
				continue
			}
			shown++
			rest := q.expr[loc[1]:]
			sel := ""
			if strings.HasPrefix(rest, "{") {
				if end := strings.IndexByte(rest, '}'); end >= 0 {
					sel = rest[:end+1]
				}
			}
			if !strings.Contains(sel, filter) {
				t.Errorf("panel %q: %s is not filtered on %s (query %s)", q.panel, name, filter, q.expr)
			}
			if q.row != "Window jobs" {
				t.Errorf("panel %q in row %q shows %s; window job metrics belong in the Window jobs row", q.panel, q.row, name)
			}
		}
	}
	if shown == 0 {
		t.Error("no panel shows a window job metric")
	}
}

func TestPanels(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion = %d, want 39", d.SchemaVersion)
	}
	ps, _ := flatten(d.Panels)
	ids := map[int]string{}
	for _, p := range ps {
		if p.Title == "" {
			t.Errorf("panel id %d (%s) has no title", p.ID, p.Type)
		}
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		} else {
			ids[p.ID] = p.Title
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource uid %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		if p.Type != "table" && p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no unit", p.Title)
		}
		refs := map[string]bool{}
		for i, tg := range p.Targets {
			switch {
			case tg.RefID == "":
				t.Errorf("panel %q: target %d has no refId", p.Title, i)
			case refs[tg.RefID]:
				t.Errorf("panel %q: refId %s used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %s has no expr", p.Title, tg.RefID)
			}
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: target %s datasource uid %q, want ${datasource}", p.Title, tg.RefID, tg.Datasource.UID)
			}
		}
	}
}

func TestTemplating(t *testing.T) {
	d := loadDashboard(t)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("datasource variable: type %q query %s, want a prometheus datasource variable", v.Type, v.Query)
			}
		case "pipeline":
			const want = "label_values(cdcd_pipeline_ready, pipeline)"
			if v.Type != "query" || !v.Multi || v.Definition != want || !strings.Contains(string(v.Query), want) {
				t.Errorf("pipeline variable: want a multi-value query variable over %s", want)
			}
		case "window_job":
			const want = "label_values(cdcd_window_job_ready, window_job)"
			if v.Type != "query" || !v.Multi || v.Definition != want || !strings.Contains(string(v.Query), want) {
				t.Errorf("window_job variable: want a multi-value query variable over %s", want)
			}
		}
	}
	for _, name := range []string{"datasource", "pipeline", "window_job"} {
		if !vars[name] {
			t.Errorf("no %q template variable", name)
		}
	}
}
