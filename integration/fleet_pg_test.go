package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// fleetYAML is one configuration for every instance of a fleet: Postgres pipelines named
// names over the databases dsns (a kv table each); INSTANCE is replaced per instance.
func fleetYAML(s stack, group string, names, dsns []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `kafka:
  brokers: [%q]
  topic_partitions: 1
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
	for i, n := range names {
		fmt.Fprintf(&b, `  - name: %s
    snapshot: never
    batch:
      interval: 50ms
    source:
      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [public.kv]
        heartbeat_interval: 1s
        status_interval: 1s
    topics:
      prefix: %s
`, n, dsns[i], n, n, n)
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

func countOwned(owner map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range owner {
		c[o]++
	}
	return c
}

// TestFleetPostgresTakeoverExactlyOnce: three instances of one configuration share four
// Postgres pipelines under a light write load. SIGKILL of the instance running most: its
// pipelines resume on the others within the session timeout plus start time. A fourth
// instance joins: the pipelines spread over every instance. A rolling restart (SIGTERM, start
// again, one at a time) follows. Every change of every pipeline is in its topic exactly once.
func TestFleetPostgresTakeoverExactlyOnce(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 8*time.Minute)
	const n = 4
	group := uniqueName("fleet")
	var names, dsns []string
	for i := range n {
		name := fmt.Sprintf("%sp%d", group, i)
		names = append(names, name)
		dsns = append(dsns, newDatabase(t, ctx, s, "cdcd_"+name))
	}
	dbs := make([]*pgx.Conn, n)
	for i := range n {
		dbs[i] = pgConnect(t, ctx, dsns[i])
		if _, err := dbs[i].Exec(ctx, kvDDL); err != nil {
			t.Fatal(err)
		}
	}
	yaml := fleetYAML(s, group, names, dsns)
	live := map[string]*daemon{}
	start := func(inst string) *daemon {
		d := startDaemon(t, strings.ReplaceAll(yaml, "INSTANCE", inst))
		live[inst] = d
		return d
	}
	for _, inst := range []string{"i1", "i2", "i3"} {
		start(inst)
	}
	owner := waitFleet(t, live, names, 2*time.Minute)
	t.Logf("three instances: %v", countOwned(owner))

	writers := make([]*kvWriter, n)
	werr := make(chan error, n)
	seed := loggedSeed(t, "writers")
	for i := range n {
		writers[i] = &kvWriter{}
		go func() { werr <- writers[i].run(ctx, t, dbs[i], 4000, 10, 80, 200, seed+uint64(i)) }()
	}
	time.Sleep(5 * time.Second) // the load flows before the first fault

	// SIGKILL the instance with the most pipelines.
	victim := ""
	for inst, c := range countOwned(owner) {
		if victim == "" || c > countOwned(owner)[victim] {
			victim = inst
		}
	}
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
	owner = waitFleet(t, live, names, time.Minute)
	for inst := range live {
		if c := countOwned(owner)[inst]; c < 1 || c > 2 {
			t.Errorf("after i4 joined, %s runs %d pipelines; want them spread (%v)", inst, c, countOwned(owner))
		}
	}
	t.Logf("i4 joined: %v", countOwned(owner))

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

	for range n {
		if err := <-werr; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	for i, name := range names {
		c, recs := readKV(t, s, name+".public.kv", len(writers[i].changes), time.Minute)
		verifyKV(t, c, recs, writers[i].changes)
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
