package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// faultOrders is the input table of the window fault test: its changes are encoded by cdcd's
// own encoder (the real registry), exactly as a pipeline would publish them.
var faultOrders = &change.Table{Database: "shop", Schema: "public", Name: "orders", Version: 1, KeyColumns: []int{0},
	Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
		{Name: "customer_id", Kind: change.KindInt32, Nullable: true, SourceType: "integer"},
		{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true, SourceType: "numeric(10,2)"},
	}}

// producedOrder is one input change as the test wrote it.
type producedOrder struct {
	customer int64
	cents    int64
	tsMs     int64
	origin   string // topic[partition]@offset
}

// Exactly once under faults, with real processes on the real stack: two `cdcd run` instances
// of one window job (static members of its group, 6 s session timeout) read a 6-partition
// input under continuous load while the test SIGKILLs one of them at random and restarts it,
// at least six times; then a third instance joins and one of the first two leaves (SIGTERM).
// At the end, every window's result read read_committed equals the test's own aggregation of
// what it produced (counts, exact decimal sums, maxima), no window is emitted twice (emit:
// final), and every input change is either in exactly one window result or once in the late
// topic: a kill, restart or rebalance loses nothing and counts nothing twice.
func TestWindowJobExactlyOnceUnderKillsAndRebalance(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 6*time.Minute)
	name := uniqueName("winf")
	input := name + ".public.orders"
	output := name + ".per_customer_2s"
	job := name + "_job"
	const size = 2000 // ms

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 6, 1, nil, input); err != nil || resp.Err != nil {
		t.Fatalf("creating %s: %v %v", input, err, resp.Err)
	}
	srcl, err := sr.NewClient(sr.URLs(s.registry))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: name, Connector: "postgresql", TopicPrefix: name,
		TopicOverrides: map[string]string{"public.orders": input}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(loggedSeed(t, "window faults"), 12))
	var rngMu sync.Mutex // the writer and the fault schedule share rng
	randN := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}

	// The writer: batches of orders every 50 ms, event time = now, until stopped. The
	// first change registers the input schema, which the job waits for.
	var (
		mu       sync.Mutex
		produced []producedOrder
	)
	write := func(id *int64, n int) error {
		var recs []*kgo.Record
		var orders []producedOrder
		var rec encode.Record
		for range n {
			*id++
			o := producedOrder{customer: int64(randN(8)), cents: int64(randN(100000)), tsMs: time.Now().UnixMilli()}
			ev := change.Event{Op: change.OpCreate, Table: faultOrders, Pos: change.Position{Tx: uint64(*id)}, CommitTime: time.UnixMilli(o.tsMs), TxID: "1",
				After: []change.Value{{State: change.Present, Int: *id}, {State: change.Present, Int: o.customer},
					{State: change.Present, Str: big.NewRat(o.cents, 100).FloatString(2)}}}
			if err := enc.Encode(ctx, &ev, &rec); err != nil {
				return fmt.Errorf("encoding order %d: %w", *id, err)
			}
			recs = append(recs, &kgo.Record{Topic: input, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value)})
			orders = append(orders, o)
		}
		rs := cl.ProduceSync(ctx, recs...)
		if err := rs.FirstErr(); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		// ProduceSync's results come in the order the produces completed, not as given.
		index := make(map[*kgo.Record]int, len(recs))
		for i, r := range recs {
			index[r] = i
		}
		for _, r := range rs {
			o := orders[index[r.Record]]
			o.origin = fmt.Sprintf("%s[%d]@%d", r.Record.Topic, r.Record.Partition, r.Record.Offset)
			produced = append(produced, o)
		}
		return nil
	}
	var nextID int64
	if err := write(&nextID, 1); err != nil {
		t.Fatal(err)
	}
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-wctx.Done():
				writerDone <- nil
				return
			case <-tk.C:
			}
			if err := write(&nextID, 10); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	t.Cleanup(stopWriter)

	instance := func(id string) *daemon {
		return startDaemon(t, fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_partitions: 3
  transaction_timeout: 20s
schema_registry:
  url: %q
http:
  listen: "HTTP_ADDR"
log:
  level: info
  format: text
shutdown_timeout: 10s
windows:
  - name: %s
    input:
      topics: [%s]
      ops: [c]
    group_by: [after.customer_id]
    window: {type: tumbling, size: 2s, grace: 5s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
      - {name: biggest, fn: max, field: after.total}
    output: {topic: %s}
    idle_timeout: 1s
    instance_id: %s
    static_membership: true
    session_timeout: 6s
`, s.kafka[0], s.registry, job, input, output, id))
	}
	a, b := instance("a"), instance("b")
	a.waitReady(90 * time.Second)
	b.waitReady(90 * time.Second)

	// Faults: SIGKILL one of the two at random and restart it after up to 2 s (the same
	// instance id: it fences its predecessor's transaction and rejoins as the same static
	// member), seven times.
	sleep := func(min, spread time.Duration) {
		time.Sleep(min + time.Duration(randN(int(spread/time.Millisecond)))*time.Millisecond)
	}
	for i := range 7 {
		sleep(2*time.Second, 4*time.Second)
		victim, which := a, "a"
		if randN(2) == 1 {
			victim, which = b, "b"
		}
		victim.stop(syscall.SIGKILL)
		t.Logf("fault %d: instance %s SIGKILLed", i+1, which)
		sleep(0, 2*time.Second)
		victim.restart()
	}
	// A rebalance: a third instance joins, then a first one leaves for good (its partitions
	// move once its static session times out).
	c := instance("c")
	sleep(4*time.Second, 2*time.Second)
	t.Logf("instance c joined; instance a leaves (SIGTERM)")
	if took := a.stop(syscall.SIGTERM); a.err != nil {
		t.Errorf("instance a exited with %v after SIGTERM (%s)", a.err, took)
	}
	sleep(8*time.Second, 2*time.Second)
	stopWriter()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	total := len(produced)
	mu.Unlock()
	t.Logf("%d orders written", total)

	// Read results and late records until every order is accounted for (idle_timeout closes
	// the last windows by the wall clock once the job caught up), then a while longer: a window
	// emitted twice would show up then.
	type agg struct {
		orders, events, biggest int64
		revenue                 *big.Rat
	}
	out, lateC := newConsumer(t, s, output), newConsumer(t, s, output+".late")
	got := map[windowKey]agg{}
	late := map[string]int{}
	covered := 0
	poll := func(d time.Duration) {
		for _, r := range out.read(t, 1, d, 0) {
			v := out.decode(t, r.Value)
			k := windowKey{asInt64(t, unwrap(v["customer_id"])), unwrap(v["window_start"]).(time.Time).UnixMilli()}
			if _, dup := got[k]; dup {
				t.Errorf("window %v emitted twice", k)
			}
			g := agg{orders: asInt64(t, unwrap(v["orders"])), events: asInt64(t, unwrap(v["events"])), revenue: unwrap(v["revenue"]).(*big.Rat)}
			biggest := unwrap(v["biggest"]).(*big.Rat)
			g.biggest = new(big.Int).Quo(new(big.Int).Mul(biggest.Num(), big.NewInt(100)), biggest.Denom()).Int64()
			got[k] = g
			covered += int(g.events)
		}
		for _, l := range lateRecords(t, lateC.read(t, 1, d, 0)) {
			late[l.origin]++
			covered++
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for covered < total && time.Now().Before(deadline) {
		poll(time.Second)
	}
	poll(3 * time.Second)
	if covered != total {
		t.Errorf("results and late records account for %d orders, want %d", covered, total)
	}

	byOrigin := map[string]bool{}
	want := map[windowKey]*agg{}
	lateN := 0
	for _, o := range produced {
		byOrigin[o.origin] = true
		if late[o.origin] > 0 {
			lateN++
			continue
		}
		k := windowKey{o.customer, o.tsMs / size * size}
		w := want[k]
		if w == nil {
			w = &agg{revenue: new(big.Rat), biggest: -1}
			want[k] = w
		}
		w.orders++
		w.events++
		w.revenue.Add(w.revenue, big.NewRat(o.cents, 100))
		w.biggest = max(w.biggest, o.cents)
	}
	for origin, n := range late {
		if !byOrigin[origin] {
			t.Errorf("late record from %s, which the test did not write", origin)
		}
		if n > 1 {
			t.Errorf("the order at %s is in the late topic %d times", origin, n)
		}
	}
	var keys []windowKey
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].start != keys[j].start {
			return keys[i].start < keys[j].start
		}
		return keys[i].customer < keys[j].customer
	})
	bad := 0
	for _, k := range keys {
		w, g := want[k], got[k]
		switch {
		case g.revenue == nil:
			t.Errorf("window %v missing: want %d orders, revenue %s", k, w.orders, w.revenue.FloatString(2))
		case g.orders != w.orders || g.events != w.events || g.revenue.Cmp(w.revenue) != 0 || g.biggest != w.biggest:
			t.Errorf("window %v: got %d orders (%d events), revenue %s, biggest %d; want %d, %s, %d",
				k, g.orders, g.events, g.revenue.FloatString(2), g.biggest, w.orders, w.revenue.FloatString(2), w.biggest)
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatalf("more than 20 windows differ")
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("window %v is not in the test's aggregation", k)
		}
	}
	t.Logf("%d orders, %d windows, %d late orders", total, len(got), lateN)
	for _, d := range []*daemon{b, c} {
		if body := d.Logs(); strings.Contains(body, "level=ERROR") {
			t.Logf("an instance logged errors:\n%s", body)
		}
	}
}
