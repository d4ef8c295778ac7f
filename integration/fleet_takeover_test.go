package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fleetPipeline is one pipeline of a fleet test: its name and its source section.
type fleetPipeline struct {
	name, source string
}

func pgFleetPipeline(name, dsn string) fleetPipeline {
	return fleetPipeline{name, fmt.Sprintf(`      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [public.kv]
        heartbeat_interval: 1s
        status_interval: 1s
`, dsn, name, name)}
}

func mysqlFleetPipeline(name, dsn, db string) fleetPipeline {
	return fleetPipeline{name, fmt.Sprintf(`      mysql:
        dsn: %q
        server_id: %d
        tables: [%s.kv]
`, dsn, nextServerID(), db)}
}

// fleetYAML is one configuration for every instance of a fleet; INSTANCE is replaced per
// instance.
func fleetYAML(s stack, group string, pipelines []fleetPipeline) string {
	var b strings.Builder
	fmt.Fprintf(&b, `kafka:
  brokers: [%q]
  topic_partitions: 1
  transaction_timeout: 10s
schema_registry:
  url: %q
http:
  listen: "HTTP_ADDR"
log:
  level: info
  format: text
shutdown_timeout: 5s
fleet:
  enabled: true
  group: %s
  instance: INSTANCE
  session_timeout: 6s
  heartbeat_interval: 1s
pipelines:
`, s.kafka[0], s.registry, group)
	for _, p := range pipelines {
		fmt.Fprintf(&b, `  - name: %s
    snapshot: never
    batch:
      interval: 50ms
    source:
%s    topics:
      prefix: %s
`, p.name, p.source, p.name)
	}
	return b.String()
}

// fleetReady is what a fleet instance's /readyz says.
type fleetReady struct {
	Ready bool `json:"ready"`
	Fleet *struct {
		Instance  string   `json:"instance"`
		Joined    bool     `json:"joined"`
		Pipelines []string `json:"pipelines"`
		Problem   string   `json:"problem"`
	} `json:"fleet"`
	Pipelines []struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
		Phase string `json:"phase"`
	} `json:"pipelines"`
}

func (d *daemon) fleetReady() (fleetReady, error) {
	var r fleetReady
	resp, err := http.Get("http://" + d.http + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r, err
}

// waitFleet waits until every pipeline runs, ready, on exactly one of the live instances (and
// /readyz lists on each instance exactly the pipelines its fleet view names). It returns the
// owner of each pipeline.
func waitFleet(t *testing.T, live map[string]*daemon, names []string, timeout time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		owner := map[string]string{}
		ok := true
		var why []string
		for inst, d := range live {
			r, err := d.fleetReady()
			if err != nil || r.Fleet == nil {
				ok = false
				why = append(why, fmt.Sprintf("%s: %v", inst, err))
				continue
			}
			var listed []string
			for _, p := range r.Pipelines {
				listed = append(listed, p.Name)
				if !p.Ready {
					ok = false
					why = append(why, fmt.Sprintf("%s: %s %s", inst, p.Name, p.Phase))
				}
			}
			slices.Sort(listed)
			if !slices.Equal(listed, r.Fleet.Pipelines) || !r.Fleet.Joined {
				ok = false
				why = append(why, fmt.Sprintf("%s: lists %v, fleet %v joined %v %s", inst, listed, r.Fleet.Pipelines, r.Fleet.Joined, r.Fleet.Problem))
			}
			for _, p := range r.Fleet.Pipelines {
				if o, dup := owner[p]; dup {
					ok = false
					why = append(why, fmt.Sprintf("%s on %s and %s", p, o, inst))
				}
				owner[p] = inst
			}
		}
		if ok && len(owner) == len(names) {
			return owner
		}
		last = fmt.Sprintf("owners %v; %s", owner, strings.Join(why, "; "))
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the fleet did not settle within %s: %s", timeout, last)
	return nil
}

// seriesOf returns the sorted pipeline labels of a metric's series on the daemon's /metrics
// (only those whose value is value, unless value is "").
func (d *daemon) seriesOf(name, value string) []string {
	d.t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		d.t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		if value != "" && !strings.HasSuffix(line, " "+value) {
			continue
		}
		_, rest, ok := strings.Cut(line, `pipeline="`)
		if p, _, ok2 := strings.Cut(rest, `"`); ok && ok2 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func countOwned(owner map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range owner {
		c[o]++
	}
	return c
}

// TestFleetTakeoverExactlyOnce: three instances of one configuration share four PostgreSQL
// and two MariaDB pipelines under a light write load. SIGKILL of the instance running most:
// its pipelines resume on the others within the session timeout plus start time. A fourth
// instance joins: the pipelines spread over every instance. A rolling restart (SIGTERM, start
// again, one at a time) follows. Every change of every pipeline is in its topic exactly once.
func TestFleetTakeoverExactlyOnce(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 8*time.Minute)
	const npg, nmy = 4, 2
	group := uniqueName("fleet")
	var pipes []fleetPipeline
	var names, topics []string
	var writers []func() error
	var changes []func() []kvChange
	seed := loggedSeed(t, "writers")
	for i := range npg {
		name := fmt.Sprintf("%sp%d", group, i)
		dsn := newDatabase(t, ctx, s, "cdcd_"+name)
		db := pgConnect(t, ctx, dsn)
		if _, err := db.Exec(ctx, kvDDL); err != nil {
			t.Fatal(err)
		}
		pipes = append(pipes, pgFleetPipeline(name, dsn))
		names, topics = append(names, name), append(topics, name+".public.kv")
		w := &kvWriter{}
		writers = append(writers, func() error { return w.run(ctx, t, db, 4000, 10, 80, 200, seed+uint64(i)) })
		changes = append(changes, func() []kvChange { return w.changes })
	}
	for i := range nmy {
		name := fmt.Sprintf("%sm%d", group, i)
		_, _, dbName, dsn, conn := mysqlSetup(t, 8*time.Minute, "cdcd_fleetmy",
			`CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)`)
		pipes = append(pipes, mysqlFleetPipeline(name, dsn, dbName))
		names, topics = append(names, name), append(topics, name+"."+dbName+".kv")
		w := &mysqlKVWriter{}
		writers = append(writers, func() error { return w.run(ctx, conn, 4000, 10, 80, 200, seed+100+uint64(i)) })
		changes = append(changes, func() []kvChange { return w.changes })
	}
	yaml := fleetYAML(s, group, pipes)
	live := map[string]*daemon{}
	start := func(inst string) *daemon {
		// SIGTERM at the end, so no open transaction is left in the shared offsets topic.
		d := startMySQLDaemon(t, strings.ReplaceAll(yaml, "INSTANCE", inst))
		live[inst] = d
		return d
	}
	for _, inst := range []string{"i1", "i2", "i3"} {
		start(inst)
	}
	owner := waitFleet(t, live, names, 2*time.Minute)
	t.Logf("three instances: %v", countOwned(owner))

	werr := make(chan error, len(writers))
	for _, w := range writers {
		go func() { werr <- w() }()
	}
	time.Sleep(5 * time.Second) // the load flows before the first fault

	// SIGKILL the instance with the most pipelines.
	victim := ""
	for inst, c := range countOwned(owner) {
		if victim == "" || c > countOwned(owner)[victim] {
			victim = inst
		}
	}
	var moved []string
	for p, o := range owner {
		if o == victim {
			moved = append(moved, p)
		}
	}
	t.Logf("SIGKILL %s, which runs %v", victim, moved)
	t0 := time.Now()
	live[victim].stop(syscall.SIGKILL)
	delete(live, victim)
	owner = waitFleet(t, live, names, time.Minute)
	takeover := time.Since(t0)
	t.Logf("SIGKILL %s: its pipelines resumed elsewhere after %s: %v", victim, takeover.Round(100*time.Millisecond), countOwned(owner))
	if takeover > 6*time.Second+30*time.Second {
		t.Errorf("takeover took %s; want within the session timeout (6s) plus start time", takeover)
	}

	// A fourth instance: the pipelines spread over the three live ones.
	start("i4")
	// The join is two rebalances (cooperative): the first hands i4 nothing while the others
	// drain what moves, the second hands it those.
	spread := func(owner map[string]string) bool {
		for inst := range live {
			if countOwned(owner)[inst] != 2 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		owner = waitFleet(t, live, names, time.Minute)
		if spread(owner) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after i4 joined the pipelines are not spread: %v", countOwned(owner))
		}
	}
	t.Logf("i4 joined: %v", countOwned(owner))
	// Metrics say which instance runs what; a pipeline that moved away leaves no gauge behind.
	for inst, d := range live {
		var own []string
		for p, o := range owner {
			if o == inst {
				own = append(own, p)
			}
		}
		slices.Sort(own)
		if got := d.seriesOf("cdcd_fleet_pipeline_running", "1"); !slices.Equal(got, own) {
			t.Errorf("%s: cdcd_fleet_pipeline_running is 1 for %v; it runs %v", inst, got, own)
		}
		if got := d.seriesOf("cdcd_pipeline_ready", ""); !slices.Equal(got, own) {
			t.Errorf("%s: cdcd_pipeline_ready has series for %v; it runs %v", inst, got, own)
		}
	}

	// Rolling restart of every live instance.
	for _, inst := range slices.Sorted(func(yield func(string) bool) {
		for k := range live {
			if !yield(k) {
				return
			}
		}
	}) {
		d := live[inst]
		if took := d.stop(syscall.SIGTERM); took > 10*time.Second {
			t.Errorf("%s took %s to stop on SIGTERM", inst, took)
		}
		d.restart()
		owner = waitFleet(t, live, names, time.Minute)
	}
	t.Logf("rolling restart done: %v", countOwned(owner))

	for range writers {
		if err := <-werr; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	for i, topic := range topics {
		want := changes[i]()
		c, recs := readKV(t, s, topic, len(want), time.Minute)
		verifyKV(t, c, recs, want)
		t.Logf("%s: %d changes exactly once", names[i], len(want))
	}
	if t.Failed() {
		return
	}
	for _, d := range live {
		if strings.Contains(d.Logs(), "panic") {
			t.Errorf("a panic in the logs:\n%s", d.Logs())
		}
	}
}
