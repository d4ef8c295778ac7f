package integration

import (
	"fmt"
	"testing"
	"time"
)

// A table-mode job counts rows, not changes: three orders, then an on-demand `cdcd snapshot`
// re-reads them (op r); the window's count stays 3.
func TestWindowTableModeSnapshotReadReplacesRows(t *testing.T) {
	name := uniqueName("wintab")
	s, ctx, dsn, db := setup(t, 3*time.Minute, name, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL,
  created_at timestamptz NOT NULL); ALTER TABLE orders REPLICA IDENTITY FULL`)
	job := name + "_rows"
	input := name + ".public.orders"
	output := name + ".rows_per_customer"
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.orders"}, "    snapshot: {mode: never, signal_key: "+testSignalKey+"}\n")+fmt.Sprintf(`windows:
  - name: %s
    input:
      topics: [%s]
    mode: table
    time: after.created_at
    group_by: [after.customer_id]
    window: {type: tumbling, size: 1h, grace: 1h}
    emit: updates
    aggregates:
      - {name: orders, fn: count}
    output: {topic: %s}
    idle_timeout: 0s
    instance_id: it-table
`, job, input, output))
	waitPipelineStreaming(t, d, name)
	if _, err := db.Exec(ctx, `INSERT INTO orders SELECT i, 1, timestamptz '2026-03-01 10:00:00+00' FROM generate_series(1, 3) i`); err != nil {
		t.Fatal(err)
	}
	out := newConsumer(t, s, output)
	last := func(wait time.Duration) (int64, int) {
		var n int64 = -1
		recs := out.read(t, 1, wait, 2*time.Second)
		for _, r := range recs {
			n = asInt64(t, unwrap(out.decode(t, r.Value)["orders"]))
		}
		return n, len(recs)
	}
	if n, _ := last(90 * time.Second); n != 3 {
		t.Fatalf("after 3 inserts the window counts %d orders, want 3", n)
	}
	t.Log(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.orders"))
	n, updates := last(60 * time.Second)
	if updates == 0 {
		t.Fatalf("no result after the snapshot re-read the rows\n%s", d.Logs())
	}
	if n != 3 {
		t.Errorf("after the snapshot re-read the 3 rows the window counts %d orders, want 3", n)
	}
}
