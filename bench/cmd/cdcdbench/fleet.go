package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fleetInstances is how many cdcd instances scenario 8 runs.
const fleetInstances = 3

// fleetSessionTimeout is the fleet's session_timeout in scenario 8 (the brokers' minimum by
// default): a SIGKILLed instance's pipelines move after it.
const fleetSessionTimeout = 6 * time.Second

// fleet is scenario 8: -fleet-pipelines PostgreSQL pipelines (a database each) in fleet mode
// over three cdcd instances, under a steady load of -fleet-rate rows/s in all (single-row
// transactions spread evenly over the databases) for -fleet-duration: how the group spreads
// them, and what the instances use. Then SIGKILL of the instance running the most: the time
// until each of its pipelines streams again on another instance.
func (s *suite) fleet(ctx context.Context) {
	o := s.o
	n, rate := o.fleetPipelines, o.fleetRate
	sc := s.add(&scenarioResult{ID: "8", Kind: "fleet",
		Title: fmt.Sprintf("fleet: %d PostgreSQL pipelines over %d instances at %d rows/s, then SIGKILL of one", n, fleetInstances, rate)})
	sc.Debezium = &toolResult{Tool: "Debezium", Status: "not compared: a Kafka Connect cluster spreads connectors over its workers the same way"}
	fail := func(err error) { sc.CDCD = failed("cdcd fleet", err) }
	group := safeName(fmt.Sprintf("bench_%s_fleet", s.stamp))
	var names, dsns []string
	topics := []string{"_cdcd_fleet." + group}
	if !o.keep {
		s.cleanups = append(s.cleanups, func(ctx context.Context) { _ = deleteTopicsAndSubjects(ctx, o.kafka, o.registry, topics) })
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "kafka:\n  brokers: [%q]\n  topic_partitions: %d\nschema_registry:\n  url: %q\nhttp:\n  listen: \"HTTP_ADDR\"\nlog:\n  level: info\n  format: text\nshutdown_timeout: 10s\n"+
		"fleet:\n  enabled: true\n  group: %s\n  instance: INSTANCE\n  session_timeout: %s\n  heartbeat_interval: 1s\npipelines:\n",
		o.kafka, o.partitions, o.registry, group, fleetSessionTimeout)
	for i := range n {
		name := fmt.Sprintf("%s%d", group, i)
		db := "cdcdbench_" + name
		if err := createDatabase(ctx, o.pgDSN, db); err != nil {
			fail(err)
			return
		}
		if !o.keep {
			s.cleanups = append(s.cleanups, func(ctx context.Context) { _ = dropDatabase(ctx, o.pgDSN, db) })
		}
		dsn, err := dbDSN(o.pgDSN, db)
		if err != nil {
			fail(err)
			return
		}
		names, dsns = append(names, name), append(dsns, dsn)
		topics = append(topics, name+".public."+benchTable)
		fmt.Fprintf(&cfg, "  - name: %s\n    snapshot: never\n    source:\n      postgres:\n        dsn: %q\n        tables: [public.%s]\n        heartbeat_interval: 1s\n    topics:\n      prefix: %s\n",
			name, dsn, benchTable, name)
	}
	// The instances, each with its own HTTP port and log.
	ds := map[string]*daemon{}
	defer func() {
		for _, d := range ds {
			_, _ = d.stop(15 * time.Second)
		}
	}()
	for i := range fleetInstances {
		inst := fmt.Sprintf("i%d", i+1)
		addr, err := freeAddr()
		if err != nil {
			fail(err)
			return
		}
		path := filepath.Join(s.dir, group+"-"+inst+".yaml")
		text := strings.NewReplacer("HTTP_ADDR", addr, "INSTANCE", inst).Replace(cfg.String())
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			fail(err)
			return
		}
		d, err := startDaemon(o.cdcdBin, path, addr, filepath.Join(s.dir, group+"-"+inst+".log"), nil)
		if err != nil {
			fail(err)
			return
		}
		ds[inst] = d
	}
	owner, err := waitFleetOwners(ctx, ds, names, 3*time.Minute)
	if err != nil {
		fail(err)
		return
	}
	logf("fleet: %d pipelines spread %v; steady load %d rows/s for %s", n, perInstance(owner), rate, o.fleetDuration)

	watches := map[string]*procWatch{}
	for inst, d := range ds {
		watches[inst] = watchProc(d.pid(), false, "cdcd")
	}
	var written atomic.Int64
	var wg sync.WaitGroup
	wctx, stop := context.WithTimeout(ctx, o.fleetDuration)
	t0 := time.Now()
	for i, dsn := range dsns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := connect(wctx, dsn, nil)
			if err != nil {
				return
			}
			defer c.Close(context.Background())
			per := time.Duration(float64(time.Second) * float64(n) / float64(rate))
			next := time.Now()
			for id := int64(i) * 1_000_000_000; wctx.Err() == nil; id++ {
				if _, err := c.Exec(wctx, "INSERT INTO public."+benchTable+" VALUES ($1, $2, $3, clock_timestamp())", id, id%1000, payload(id)); err != nil {
					return
				}
				written.Add(1)
				next = next.Add(per)
				time.Sleep(time.Until(next))
			}
		}()
	}
	wg.Wait()
	stop()
	took := time.Since(t0)
	r := &toolResult{Tool: fmt.Sprintf("cdcd ×%d", fleetInstances), Rows: int(written.Load()), Took: took}
	var rss []string
	for _, inst := range slices.Sorted(func(yield func(string) bool) {
		for k := range watches {
			if !yield(k) {
				return
			}
		}
	}) {
		cpu, peak := watches[inst].finish()
		r.CPU += cpu
		r.PeakRSSKB = max(r.PeakRSSKB, peak)
		rss = append(rss, fmt.Sprintf("%s: %d pipelines, %.0f MiB, %.1f CPU s", inst, perInstance(owner)[inst], float64(peak)/1024, cpu))
	}
	r.Notes = append(r.Notes, "per instance at steady load: "+strings.Join(rss, "; "), "peak RSS: the largest instance's; CPU: all instances")

	// SIGKILL the instance that runs the most.
	victim := ""
	for inst, c := range perInstance(owner) {
		if victim == "" || c > perInstance(owner)[victim] {
			victim = inst
		}
	}
	moved := perInstance(owner)[victim]
	k0 := time.Now()
	ds[victim].kill()
	delete(ds, victim)
	owner, err = waitFleetOwners(ctx, ds, names, 2*time.Minute)
	if err != nil {
		r.Notes = append(r.Notes, "takeover after SIGKILL failed: "+err.Error())
	} else {
		takeover := time.Since(k0)
		r.Notes = append(r.Notes, fmt.Sprintf("SIGKILL of %s (%d pipelines): all streaming again on the others after %.1f s (session_timeout %s), then spread %v",
			victim, moved, takeover.Seconds(), fleetSessionTimeout, perInstance(owner)))
		sc.Notes = append(sc.Notes, fmt.Sprintf("takeover after SIGKILL: %.1f s for %d pipelines (session_timeout %s)", takeover.Seconds(), moved, fleetSessionTimeout))
	}
	sc.CDCD = r
	logResult(sc, r)
}

// perInstance counts the pipelines each instance runs.
func perInstance(owner map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range owner {
		c[o]++
	}
	return c
}

// waitFleetOwners polls the instances' /readyz until every pipeline runs, ready, on exactly
// one of them; it returns each pipeline's instance.
func waitFleetOwners(ctx context.Context, ds map[string]*daemon, names []string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		owner := map[string]string{}
		ok := true
		for inst, d := range ds {
			var body struct {
				Fleet *struct {
					Joined    bool     `json:"joined"`
					Pipelines []string `json:"pipelines"`
				} `json:"fleet"`
				Pipelines []struct {
					Name  string `json:"name"`
					Ready bool   `json:"ready"`
				} `json:"pipelines"`
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", d.httpURL+"/readyz", nil)
			resp, err := d.hc.Do(req)
			if err != nil {
				ok, last = false, err.Error()
				continue
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || body.Fleet == nil || !body.Fleet.Joined {
				ok, last = false, fmt.Sprintf("%s: not in the group", inst)
				continue
			}
			for _, p := range body.Pipelines {
				if !p.Ready || !slices.Contains(body.Fleet.Pipelines, p.Name) {
					ok, last = false, fmt.Sprintf("%s: %s not ready", inst, p.Name)
				}
			}
			for _, p := range body.Fleet.Pipelines {
				if o, dup := owner[p]; dup {
					ok, last = false, fmt.Sprintf("%s on %s and %s", p, o, inst)
				}
				owner[p] = inst
			}
		}
		if ok && len(owner) == len(names) {
			return owner, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("the fleet did not settle within %s: %s", timeout, last)
}
