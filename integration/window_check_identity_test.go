package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// cdcd check warns, before the first update or delete stops a job, about a window job that
// needs before images over a PostgreSQL table without REPLICA IDENTITY FULL: a table-mode job
// (it retracts every update's and delete's before image), and an events-mode job that counts
// deletes by a row column. A table-mode job over a table with FULL passes; an events-mode job
// without deletes, or one that reads no row column (a count of changes by commit time), gets
// no such check. Each warning appears once.
func TestCheckWarnsWindowJobsWithoutFullReplicaIdentity(t *testing.T) {
	name := uniqueName("winri")
	s, _, dsn, _ := setup(t, 2*time.Minute, name, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, total numeric(10,2), created_at timestamptz);
CREATE TABLE items (id bigint PRIMARY KEY, qty int, created_at timestamptz);
ALTER TABLE items REPLICA IDENTITY FULL;`)
	orders, items := name+".public.orders", name+".public.items"
	job := func(job, input, body string) string {
		return fmt.Sprintf("  - name: %s\n    input: {topics: [%s]%s}\n    output: {topic: %s.%s}\n", job, input,
			map[bool]string{true: ", ops: [c]", false: ""}[strings.HasSuffix(job, "_ins")], name, job) + body
	}
	const tableBody = "    mode: table\n    time: after.created_at\n    window: {type: tumbling, size: 1m}\n    aggregates: [{name: n, fn: count}]\n"
	const groupBody = "    group_by: [after.customer_id]\n    window: {type: tumbling, size: 1m}\n    aggregates: [{name: n, fn: count}]\n"
	const countBody = "    window: {type: tumbling, size: 1m}\n    aggregates: [{name: n, fn: count}]\n"
	yaml := pipelineYAML(s, name, dsn, []string{"public.orders", "public.items"}, "") + "windows:\n" +
		job(name+"_tbl_default", orders, tableBody) + job(name+"_tbl_full", items, tableBody) +
		job(name+"_ev_del", orders, groupBody) + job(name+"_ev_ins", orders, groupBody) + job(name+"_ev_count", orders, countBody)
	out, _ := checkOutput(t, yaml) // the pipeline's slot does not exist yet: check fails on it
	line := func(job string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "window job "+name+"_"+job+": before images") {
				return l
			}
		}
		return ""
	}
	fixOf := func(job string) string {
		ls := strings.Split(out, "\n")
		for i, l := range ls {
			if strings.Contains(l, "window job "+name+"_"+job+": before images") && i+1 < len(ls) {
				return ls[i+1]
			}
		}
		return ""
	}
	for _, j := range []string{"tbl_default", "ev_del"} {
		if n := strings.Count(out, "window job "+name+"_"+j+": before images of public.orders"); n != 1 {
			t.Errorf("job %s: the before-images warning appears %d times, want once", j, n)
		}
		l := line(j)
		if !strings.HasPrefix(l, "warn") || !strings.Contains(l, "public.orders") || !strings.Contains(l, "REPLICA IDENTITY DEFAULT") {
			t.Errorf("job %s: want a warning naming public.orders and its REPLICA IDENTITY DEFAULT, got %q", j, l)
		}
		if f := fixOf(j); !strings.Contains(f, "ALTER TABLE public.orders REPLICA IDENTITY FULL") {
			t.Errorf("job %s: want the fix ALTER TABLE public.orders REPLICA IDENTITY FULL, got %q", j, f)
		}
	}
	if l := line("ev_del"); !strings.Contains(l, "delete") {
		t.Errorf("job ev_del: the warning does not say deletes need it: %q", l)
	}
	if l := line("tbl_full"); !strings.HasPrefix(l, "ok") || !strings.Contains(l, "FULL") {
		t.Errorf("job tbl_full: want ok (REPLICA IDENTITY FULL), got %q", l)
	}
	for _, j := range []string{"ev_ins", "ev_count"} {
		if l := line(j); l != "" {
			t.Errorf("job %s needs no before image, got %q", j, l)
		}
	}
	if t.Failed() {
		t.Logf("cdcd check:\n%s", out)
	} else {
		t.Logf("%s\n%s", line("tbl_default"), fixOf("tbl_default"))
		t.Logf("%s\n%s", line("ev_del"), fixOf("ev_del"))
	}
}

// Over a MySQL table, cdcd check reads the server's binlog_row_image for a job that needs
// before images: the stack's is FULL, so the check passes naming it. (A server with another
// setting would get a warning; the shared stack's global setting is not changed here.)
func TestCheckWindowJobOverMySQLReadsBinlogRowImage(t *testing.T) {
	s, _, db, dsn, _ := mysqlSetup(t, time.Minute, "winri", "CREATE TABLE orders (id bigint PRIMARY KEY, created_at datetime(6))")
	yaml := mysqlPipelineYAML(s, db, dsn, nextServerID(), []string{db + ".orders"}, "") + fmt.Sprintf(`windows:
  - name: %s_tbl
    input: {topics: [%s.%s.orders]}
    mode: table
    time: after.created_at
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: %s.tbl}
`, db, db, db, db)
	out, _ := checkOutput(t, yaml)
	var got string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "window job "+db+"_tbl: before images of "+db+".orders") {
			got = l
		}
	}
	if !strings.HasPrefix(got, "ok") || !strings.Contains(got, "binlog_row_image FULL") {
		t.Errorf("want ok naming binlog_row_image FULL, got %q\n%s", got, out)
	}
}
