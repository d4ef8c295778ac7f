package integration

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"
)

// A table-mode job over a table without REPLICA IDENTITY FULL, on the real stack: updates
// and deletes come without a before image, so they cannot be retracted. With on_error: dlq
// they go, as they were, to the job's dead-letter topic with the cause and the fix, and the
// job goes on: its window holds exactly the inserts. A second job over the same input with the
// default on_error: fail stops, failed in /readyz with the fix, while the first keeps running.
func TestWindowTableModeDeadLettersChangesWithoutBeforeImage(t *testing.T) {
	name := uniqueName("windlq")
	s, ctx, dsn, db := setup(t, 4*time.Minute, name,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, total numeric(10,2), created_at timestamptz)`)
	input := name + ".public.orders"
	job := func(jobName, extra string) string {
		return fmt.Sprintf(`  - name: %s
    input: {topics: [%s]}
    time: after.created_at
    group_by: [after.customer_id]
    window: {type: tumbling, size: 2s, grace: 1s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
    output: {topic: %s.%s}
    idle_timeout: 1s
    instance_id: it-a
%s`, jobName, input, name, jobName, extra)
	}
	yaml := pipelineYAML(s, name, dsn, []string{"public.orders"}, "") + "windows:\n" +
		job(name+"_dlq", "    mode: table\n    on_error: dlq\n") + job(name+"_fail", "    mode: table\n") + job(name+"_ev", "    on_error: dlq\n")
	d := startDaemon(t, yaml)
	waitPipelineStreaming(t, d, name)
	if _, err := db.Exec(ctx, `INSERT INTO orders VALUES (0, 9, 0.01, now() - interval '1 hour')`); err != nil {
		t.Fatal(err)
	}

	// Three orders of one customer in one transaction (one created_at: one window, a few
	// seconds ahead so that it closes by the wall clock only after they arrived), then an
	// update and a delete under the default replica identity.
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, total := range []string{"10.25", "0.50", "3.33"} {
		if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ($1, 1, $2, now() + interval '8 seconds')`, i+1, total); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE orders SET total = 99.99 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM orders WHERE id = 2`); err != nil {
		t.Fatal(err)
	}

	// The change topic's offsets of the update and the delete, to match the dead letters'.
	changes := newConsumer(t, s, input)
	unretractable := map[string]any{} // origin -> op
	for _, r := range changes.read(t, 7, time.Minute, time.Second) {
		if r.Value == nil {
			continue // the delete's tombstone
		}
		if op := changes.decode(t, r.Value)["op"]; op == "u" || op == "d" {
			unretractable[fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)] = op
		}
	}
	if len(unretractable) != 2 {
		t.Fatalf("want the update and the delete in %s, got %v", input, unretractable)
	}

	out := newConsumer(t, s, name+"."+name+"_dlq")
	var windows []map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for len(windows) < 2 && time.Now().Before(deadline) {
		for _, r := range out.read(t, 1, time.Second, 0) {
			windows = append(windows, out.decode(t, r.Value))
		}
	}
	for _, r := range out.read(t, 1, 3*time.Second, 0) { // a window emitted twice shows up now
		windows = append(windows, out.decode(t, r.Value))
	}
	var got []string
	for _, w := range windows {
		got = append(got, fmt.Sprintf("customer %d: %d orders, %s", asInt64(t, unwrap(w["customer_id"])), asInt64(t, unwrap(w["orders"])),
			unwrap(w["revenue"]).(*big.Rat).FloatString(2)))
	}
	sort.Strings(got)
	want := []string{"customer 1: 3 orders, 14.08", "customer 9: 1 orders, 0.01"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("windows %q, want %q", got, want)
	}

	letters := newConsumer(t, s, name+"."+name+"_dlq.dlq").read(t, 2, time.Minute, 2*time.Second)
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	for i, l := range letters {
		h := map[string]string{}
		for _, x := range l.Headers {
			h[x.Key] = string(x.Value)
		}
		want, ok := unretractable[h["cdcd.origin"]]
		if h["cdcd.error.class"] != "need_before_image" || !strings.Contains(h["cdcd.error.message"], "REPLICA IDENTITY FULL") ||
			!ok || h["cdcd.window.job"] != name+"_dlq" {
			t.Errorf("dead letter %d: headers %v; want class need_before_image, the fix, and the origin of the update or the delete %v", i, h, unretractable)
			continue
		}
		delete(unretractable, h["cdcd.origin"]) // each once
		if op := changes.decode(t, l.Value)["op"]; op != want {
			t.Errorf("dead letter %d holds op %v, want %v: the change as it was", i, op, want)
		}
	}

	// In events mode the update counts (its after image) and the delete, without the row it
	// deleted, is a dead letter naming the table and the fix.
	out = newConsumer(t, s, name+"."+name+"_ev")
	got = nil
	deadline = time.Now().Add(time.Minute)
	for len(got) < 2 && time.Now().Before(deadline) {
		for _, r := range out.read(t, 1, time.Second, 0) {
			w := out.decode(t, r.Value)
			got = append(got, fmt.Sprintf("customer %d: %d orders, %s", asInt64(t, unwrap(w["customer_id"])), asInt64(t, unwrap(w["orders"])),
				unwrap(w["revenue"]).(*big.Rat).FloatString(2)))
		}
	}
	sort.Strings(got)
	if want := []string{"customer 1: 4 orders, 114.07", "customer 9: 1 orders, 0.01"}; strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("events mode: windows %q, want %q", got, want)
	}
	letters = newConsumer(t, s, name+"."+name+"_ev.dlq").read(t, 1, time.Minute, 2*time.Second)
	if len(letters) != 1 {
		t.Fatalf("events mode: %d dead letters, want 1 (the delete)", len(letters))
	}
	if op := changes.decode(t, letters[0].Value)["op"]; op != "d" || headerOf(letters[0], "cdcd.error.class") != "need_before_image" ||
		!strings.Contains(headerOf(letters[0], "cdcd.error.message"), "ALTER TABLE public.orders REPLICA IDENTITY FULL") {
		t.Errorf("events mode: dead letter of op %v, class %q, message %q; want the delete, need_before_image and the fix", op,
			headerOf(letters[0], "cdcd.error.class"), headerOf(letters[0], "cdcd.error.message"))
	}

	if n := d.metric("cdcd_window_dead_letters_total"); n != 3 {
		t.Errorf("cdcd_window_dead_letters_total = %v, want 3 (2 in table mode, 1 in events mode)", n)
	}

	// The job with on_error: fail stopped on the update, with the fix; the other runs.
	deadline = time.Now().Add(time.Minute)
	for {
		_, body := readyz(t, d)
		failed := strings.Contains(body, `"name":"window:`+name+`_fail"`) && strings.Contains(body, `"phase":"failed"`) &&
			strings.Contains(body, "REPLICA IDENTITY FULL") && strings.Contains(body, "on_error: dlq")
		if failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the on_error: fail job did not stop with the fix: %s", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
