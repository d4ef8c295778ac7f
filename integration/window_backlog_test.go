package integration

import (
	"fmt"
	"math/big"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A backlog over four input partitions: 20,000 orders with created_at increasing over ten
// minutes, committed and written to the change topic while the job is not running; the job
// starts on a change topic with history (as on a first start, or after downtime longer than
// grace), and is SIGKILLed once mid-backlog. Tumbling 1m windows with grace 10s: the late
// topic stays empty, and every window equals GROUP BY in SQL, field by field (count, sum,
// min, max, count_distinct, first, last).
func TestWindowJobBacklogOverPartitions(t *testing.T) {
	name := uniqueName("winbk")
	s, ctx, dsn, db := setup(t, 4*time.Minute, name, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL,
  total numeric(10,2) NOT NULL, buyer text NOT NULL, created_at timestamptz NOT NULL)`)
	job := name + "_per_customer"
	input := name + ".public.orders"
	output := name + ".orders_per_customer_1m"
	pipeline := pipelineYAML(s, name, dsn, []string{"public.orders"}, "")
	if !strings.Contains(pipeline, "topic_partitions: 3\n") {
		t.Fatalf("the pipeline configuration no longer sets topic_partitions: 3; adapt the test:\n%s", pipeline)
	}
	pipeline = strings.Replace(pipeline, "topic_partitions: 3\n", "topic_partitions: 4\n", 1)

	// The pipeline alone writes the changes (in 20 transactions, in created_at order); then
	// cdcd stops, and starts again with the job.
	d := startDaemon(t, pipeline)
	waitPipelineStreaming(t, d, name)
	const rows = 20000
	for i := 0; i < rows; i += 1000 {
		if _, err := db.Exec(ctx, `INSERT INTO orders SELECT i, i % 50, (i * 7919 % 100000) / 100.0, 'b' || (i * 31 % 13),
  timestamptz '2026-03-01 10:00:00+00' + (i * interval '600 seconds') / $3 FROM generate_series($1::bigint, $2::bigint - 1) i`, i, i+1000, rows); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(newConsumer(t, s, input).read(t, rows, 2*time.Minute, 0)); n != rows {
		t.Fatalf("the change topic holds %d changes, want %d", n, rows)
	}
	d.stop(syscall.SIGTERM)
	d = startDaemon(t, pipeline+fmt.Sprintf(`windows:
  - name: %s
    input:
      topics: [%s]
    time: after.created_at
    group_by: [after.customer_id]
    window: {type: tumbling, size: 1m, grace: 10s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
      - {name: lo, fn: min, field: after.total}
      - {name: hi, fn: max, field: after.total}
      - {name: buyers, fn: count_distinct, field: after.buyer}
      - {name: first_buyer, fn: first, field: after.buyer}
      - {name: last_buyer, fn: last, field: after.buyer}
    output: {topic: %s}
    idle_timeout: 1s
    session_timeout: 6s
    instance_id: it-backlog
`, job, input, output))

	fields := []string{"orders", "revenue", "lo", "hi", "buyers", "first_buyer", "last_buyer"}
	want := map[windowKey]map[string]string{}
	rs, err := db.Query(ctx, `SELECT customer_id, (extract(epoch from date_trunc('minute', created_at)) * 1000)::bigint,
  count(*)::text, sum(total)::text, min(total)::text, max(total)::text, count(DISTINCT buyer)::text,
  (array_agg(buyer ORDER BY created_at))[1], (array_agg(buyer ORDER BY created_at DESC))[1]
  FROM orders GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var k windowKey
		v := make([]string, len(fields))
		dst := []any{&k.customer, &k.start}
		for i := range v {
			dst = append(dst, &v[i])
		}
		if err := rs.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		want[k] = map[string]string{}
		for i, f := range fields {
			want[k][f] = v[i]
		}
	}
	rs.Close()

	// Mid-backlog (the job has read input, and emitted few windows if any): SIGKILL, and
	// start again (restore, a rebalance once the dead member's session times out).
	for start := time.Now(); d.metric("cdcd_window_records_in_total") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			t.Fatalf("the job read no input in a minute\n%s", d.Logs())
		}
	}
	d.stop(syscall.SIGKILL)
	d.restart()
	out, lateC := newConsumer(t, s, output), newConsumer(t, s, output+".late")
	got := map[windowKey]map[string]string{}
	deadline := time.Now().Add(3 * time.Minute)
	for len(got) < len(want) && time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("cdcd exited: %v\n%s", d.err, d.Logs())
		default:
		}
		for _, r := range out.read(t, 1, time.Second, 0) {
			v := out.decode(t, r.Value)
			k := windowKey{asInt64(t, unwrap(v["customer_id"])), unwrap(v["window_start"]).(time.Time).UnixMilli()}
			if _, dup := got[k]; dup {
				t.Errorf("window %v emitted twice", k)
			}
			g := map[string]string{}
			for _, f := range fields {
				switch x := unwrap(v[f]).(type) {
				case *big.Rat:
					g[f] = x.FloatString(2)
				case string:
					g[f] = x
				default:
					g[f] = fmt.Sprint(asInt64(t, x))
				}
			}
			got[k] = g
		}
	}
	for _, r := range out.read(t, 1, 2*time.Second, 0) {
		t.Errorf("extra result after all windows: %s", r.Key)
	}
	late := lateRecords(t, lateC.read(t, 1, 2*time.Second, 0))
	if len(late) > 0 {
		t.Errorf("%d on-time changes went to the late topic; first: %s", len(late), late[0].body)
	}
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		for _, f := range fields {
			if !ok || g[f] != w[f] {
				if bad++; bad <= 5 {
					t.Errorf("window %v, %s: got %q (present %v), want %q", k, f, g[f], ok, w[f])
				}
			}
		}
	}
	if len(got) != len(want) || bad > 0 {
		t.Errorf("%d windows emitted, %d in GROUP BY, %d fields differ", len(got), len(want), bad)
	}
	t.Logf("%d rows, %d windows, %d late", rows, len(got), len(late))
}
