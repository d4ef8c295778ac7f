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
// grace). Tumbling 1m windows with
// grace 10s: the late topic stays empty, and every window equals GROUP BY in SQL.
func TestWindowJobBacklogOverPartitions(t *testing.T) {
	name := uniqueName("winbk")
	s, ctx, dsn, db := setup(t, 4*time.Minute, name, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL,
  total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL)`)
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
		if _, err := db.Exec(ctx, `INSERT INTO orders SELECT i, i % 50, (i * 7919 % 100000) / 100.0,
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
    output: {topic: %s}
    idle_timeout: 1s
    instance_id: it-backlog
`, job, input, output))

	type agg struct {
		orders int64
		sum    *big.Rat
	}
	want := map[windowKey]agg{}
	rs, err := db.Query(ctx, `SELECT customer_id, (extract(epoch from date_trunc('minute', created_at)) * 1000)::bigint, count(*), sum(total)::text
  FROM orders GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var k windowKey
		var a agg
		var sum string
		if err := rs.Scan(&k.customer, &k.start, &a.orders, &sum); err != nil {
			t.Fatal(err)
		}
		a.sum, _ = new(big.Rat).SetString(sum)
		want[k] = a
	}
	rs.Close()

	out, lateC := newConsumer(t, s, output), newConsumer(t, s, output+".late")
	got := map[windowKey]agg{}
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
			got[k] = agg{asInt64(t, unwrap(v["orders"])), unwrap(v["revenue"]).(*big.Rat)}
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
		if !ok || g.orders != w.orders || g.sum.Cmp(w.sum) != 0 {
			if bad++; bad <= 5 {
				t.Errorf("window %v: got %+v (present %v), want %d orders, %s", k, g, ok, w.orders, w.sum.FloatString(2))
			}
		}
	}
	if len(got) != len(want) || bad > 0 {
		t.Errorf("%d windows emitted, %d in GROUP BY, %d differ", len(got), len(want), bad)
	}
	t.Logf("%d rows, %d windows, %d late", rows, len(got), len(late))
}
