package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const ordersDDL = `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, total numeric(10,2))`

// windowKey is one result window: a customer and the window's start (ms).
type windowKey struct {
	customer int64
	start    int64
}

type windowAgg struct {
	orders int64
	sum    *big.Rat
	events int64
}

// A pipeline and a tumbling window job in one cdcd, on the real stack: orders are inserted
// over several seconds and the daemon is SIGKILLed once in the middle and restarted. Every
// window result read read_committed equals a batch aggregation of the changes the test reads
// from the change topic (grouped by their own source.ts_ms), exactly (decimal sums included);
// no window is emitted twice; every change is either in its window's result or, if it came
// too late for it, once in the late topic.
func TestWindowJobEndToEnd(t *testing.T) {
	name := uniqueName("win")
	s, ctx, dsn, db := setup(t, 5*time.Minute, name, ordersDDL)
	job := name + "_per_customer"
	input := name + ".public.orders"
	output := name + ".orders_per_customer_2s"
	const size, grace = 2000, 1000 // ms
	yaml := pipelineYAML(s, name, dsn, []string{"public.orders"}, "") + fmt.Sprintf(`windows:
  - name: %s
    input:
      topics: [%s]
      ops: [c]
    group_by: [after.customer_id]
    window: {type: tumbling, size: 2s, grace: 1s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
    output: {topic: %s}
    idle_timeout: 1s
    instance_id: it-a
`, job, input, output)
	d := startDaemon(t, yaml)

	rng := rand.New(rand.NewPCG(loggedSeed(t, "orders"), 3))
	insert := func(id int) {
		t.Helper()
		cents := rng.Int64N(100000)
		if _, err := db.Exec(ctx, `INSERT INTO orders VALUES ($1, $2, $3)`, id, rng.IntN(4), big.NewRat(cents, 100).FloatString(2)); err != nil {
			t.Fatal(err)
		}
	}
	// The job waits for its input's first schema, so the first change makes the daemon ready.
	waitPipelineStreaming(t, d, name)
	insert(0)
	d.waitReady(90 * time.Second)
	if _, body := readyz(t, d); !strings.Contains(body, `"name":"window:`+job+`"`) || !strings.Contains(body, `"phase":"running"`) {
		t.Errorf("/readyz lacks the running job window:%s: %s", job, body)
	}
	const total = 160
	for id := 1; id < total; id++ {
		insert(id)
		if id == total/2 {
			d.stop(syscall.SIGKILL)
			t.Logf("cdcd SIGKILLed after %d orders; restarting", id+1)
			d.restart()
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.waitReady(3 * time.Minute) // a killed member leaves the group only when its session times out

	// The changes, as the job read them: their event time is their source.ts_ms.
	changes := newConsumer(t, s, input)
	type change struct {
		id, customer, tsMs int64
		total              *big.Rat
		origin             string
	}
	byOrigin := map[string]change{}
	var all []change
	for _, r := range changes.read(t, total, 2*time.Minute, time.Second) {
		if r.Value == nil {
			continue
		}
		v := changes.decode(t, r.Value)
		after := unwrapAll(unwrap(v["after"]).(map[string]any))
		src := unwrap(v["source"]).(map[string]any)
		c := change{id: asInt64(t, after["id"]), customer: asInt64(t, after["customer_id"]), tsMs: asInt64(t, src["ts_ms"]),
			total: after["total"].(*big.Rat), origin: fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)}
		byOrigin[c.origin] = c
		all = append(all, c)
	}
	if len(all) != total {
		t.Fatalf("the change topic holds %d creates, want %d", len(all), total)
	}

	// Every window closes by event time or, once the input is idle for 1s, by the wall
	// clock; after the kill, the job resumes once the dead member's group session expired.
	// Read results and late records until every change is accounted for, then a while longer
	// (a window emitted twice would show up then).
	out, lateC := newConsumer(t, s, output), newConsumer(t, s, output+".late")
	got := map[windowKey]windowAgg{}
	late := map[string]int{}
	var lateRecs []lateRecord
	covered := 0
	poll := func(d time.Duration) {
		for _, r := range out.read(t, 1, d, 0) {
			v := out.decode(t, r.Value)
			start := unwrap(v["window_start"]).(time.Time).UnixMilli()
			k := windowKey{asInt64(t, unwrap(v["customer_id"])), start}
			if end := unwrap(v["window_end"]).(time.Time).UnixMilli(); end != start+size {
				t.Errorf("window %v ends at %d, want %d", k, end, start+size)
			}
			if _, dup := got[k]; dup {
				t.Errorf("window %v emitted twice", k)
			}
			g := windowAgg{orders: asInt64(t, unwrap(v["orders"])), sum: unwrap(v["revenue"]).(*big.Rat), events: asInt64(t, unwrap(v["events"]))}
			got[k] = g
			covered += int(g.events)
		}
		for _, l := range lateRecords(t, lateC.read(t, 1, d, 0)) {
			lateRecs = append(lateRecs, l)
			late[l.origin]++
			covered++
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for covered < total && time.Now().Before(deadline) {
		poll(time.Second)
	}
	poll(3 * time.Second)
	if covered != total {
		t.Errorf("results and late records account for %d changes, want %d", covered, total)
	}
	for origin, n := range late {
		if _, ok := byOrigin[origin]; !ok {
			t.Errorf("late record from %s, which is not a change the test read", origin)
		}
		if n > 1 {
			t.Errorf("the change at %s is in the late topic %d times", origin, n)
		}
	}
	want := map[windowKey]*windowAgg{}
	for _, c := range all {
		if late[c.origin] > 0 {
			continue
		}
		k := windowKey{c.customer, c.tsMs / size * size}
		a := want[k]
		if a == nil {
			a = &windowAgg{sum: new(big.Rat)}
			want[k] = a
		}
		a.orders++
		a.events++
		a.sum.Add(a.sum, c.total)
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("window %v (customer %d at %s) missing: want %d orders, revenue %s", k, k.customer, time.UnixMilli(k.start).UTC().Format(time.RFC3339Nano), w.orders, w.sum.FloatString(2))
		case g.orders != w.orders || g.events != w.events || g.sum.Cmp(w.sum) != 0:
			t.Errorf("window %v: got %d orders (%d events), revenue %s; want %d, revenue %s", k, g.orders, g.events, g.sum.FloatString(2), w.orders, w.sum.FloatString(2))
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("window %v is not in the batch aggregation", k)
		}
	}
	t.Logf("%d changes, %d windows, %d late changes", len(all), len(got), len(lateRecs))
	if n := d.metric("cdcd_window_records_in_total"); n <= 0 {
		t.Errorf("cdcd_window_records_in_total = %v after the run", n)
	}
	if n := d.metric("cdcd_window_job_ready"); n != 1 {
		t.Errorf("cdcd_window_job_ready = %v, want 1", n)
	}
	// Caught up, the measured lag drops to 0 (commit markers at the ends of the transactional
	// input and repartition partitions do not count), within two measurements (10 s each).
	lagDeadline := time.Now().Add(45 * time.Second)
	for {
		records, secs := d.metric("cdcd_window_consumer_lag_records"), d.metric("cdcd_window_consumer_lag_seconds")
		if records == 0 && secs == 0 {
			break
		}
		if time.Now().After(lagDeadline) {
			t.Errorf("caught up, the job still shows a lag of %v records, %v s", records, secs)
			break
		}
		time.Sleep(time.Second)
	}
	// SIGTERM drains the pipeline and the job within shutdown_timeout, and cdcd exits 0.
	took := d.stop(syscall.SIGTERM)
	t.Logf("SIGTERM: cdcd exited in %s (%v)", took.Round(time.Millisecond), d.err)
	if d.err != nil {
		t.Errorf("cdcd exited with %v after SIGTERM", d.err)
	}
	if t.Failed() {
		sort.Slice(all, func(i, j int) bool { return all[i].tsMs < all[j].tsMs })
		for _, c := range all {
			t.Logf("change %s id %d customer %d ts %d total %s late %d", c.origin, c.id, c.customer, c.tsMs, c.total.FloatString(2), late[c.origin])
		}
	}
}

// waitPipelineStreaming waits until pipeline name is ready in /readyz: its slot exists, so
// every change made from now on is captured.
func waitPipelineStreaming(t *testing.T, d *daemon, name string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var body []byte
		if resp, err := http.Get("http://" + d.http + "/readyz"); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if strings.Contains(string(body), `"name":"`+name+`","ready":true`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline not streaming: %s\n%s", body, d.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type lateRecord struct {
	origin string
	body   string
}

// lateRecords decodes records of a late topic: JSON, with the change's origin in a header.
func lateRecords(t *testing.T, recs []*kgo.Record) []lateRecord {
	t.Helper()
	var out []lateRecord
	for _, r := range recs {
		l := lateRecord{body: string(r.Value)}
		for _, h := range r.Headers {
			if h.Key == "cdcd.origin" {
				l.origin = string(h.Value)
			}
		}
		var body map[string]any
		if err := json.Unmarshal(r.Value, &body); err != nil || body["reason"] == nil {
			t.Errorf("late record is not JSON with a reason: %s", r.Value)
		}
		out = append(out, l)
	}
	return out
}

// asInt64 is an Avro int or long as decoded into an interface.
func asInt64(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	}
	t.Fatalf("%v (%T) is not an int or long", v, v)
	return 0
}
