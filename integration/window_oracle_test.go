package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The oracle test's input table: every aggregate reads one of its columns.
const oracleDDL = `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, qty int, total numeric(10,2),
  buyer text NOT NULL, created_at timestamptz NOT NULL);
ALTER TABLE orders REPLICA IDENTITY FULL;`

// oracleAggYAML is the aggregate list of every job of the oracle test: every function, on
// an int column (qty), a numeric(10,2) column (total), a text column (buyer) and the
// timestamptz time column.
const oracleAggYAML = `    aggregates:
      - {name: n, fn: count}
      - {name: qty, fn: sum, field: after.qty}
      - {name: revenue, fn: sum, field: after.total}
      - {name: lo_total, fn: min, field: after.total}
      - {name: hi_total, fn: max, field: after.total}
      - {name: hi_qty, fn: max, field: after.qty}
      - {name: avg_qty, fn: avg, field: after.qty}
      - {name: avg_total, fn: avg, field: after.total}
      - {name: buyers, fn: count_distinct, field: after.buyer}
      - {name: lo_buyer, fn: min, field: after.buyer}
      - {name: first_buyer, fn: first, field: after.buyer}
      - {name: last_buyer, fn: last, field: after.buyer}
      - {name: earliest, fn: min, field: after.created_at}
`

// oracleFields are the result fields compared, beside the group and the window's start.
var oracleFields = []string{"window_end", "n", "qty", "revenue", "lo_total", "hi_total", "hi_qty", "avg_qty", "avg_total",
	"buyers", "lo_buyer", "first_buyer", "last_buyer", "earliest", "events"}

// oRow is one image of an orders row, as the test wrote it.
type oRow struct {
	id       int64
	customer int64
	qty      *int64   // nil: NULL
	total    *big.Rat // nil: NULL
	buyer    string
	at       int64 // created_at, µs since the epoch
}

// oChange is one change the test committed, in commit order (= the change topic's order:
// it has one partition).
type oChange struct {
	op            byte // c, u, d
	before, after *oRow
	phase         int
	offset        int64 // in the change topic, read back from it
}

// image is the row a change contributes in events mode: after, or before for a delete.
func (c *oChange) image() *oRow {
	if c.after != nil {
		return c.after
	}
	return c.before
}

// oItem is one row counted in a window, with its input position: first and last order by
// event time, then by input order (for a table-mode row: the change that wrote its current
// image).
type oItem struct {
	row *oRow
	seq int
}

// oracleJob is one configured window job and what the oracle expects of it.
type oracleJob struct {
	name, output, late string
	kind               string // tumbling, hopping, session, count
	table, updates     bool
	allOps             bool  // every op (c, u, d); else ops: [c] (table mode reads every op)
	size, adv, gap     int64 // µs
	events             int
	grace              int64 // µs

	want map[string]map[string]string // window key -> field -> canonical text
	// optional: table-mode windows every row of which was retracted again: the job may emit
	// them (with no rows: count 0, events 0, the other aggregates null or 0) or not.
	optional map[string]bool
	wantLate map[string]int // late record signature -> how many times
}

const oSec = int64(time.Second / time.Microsecond)

// oracleRun is one cdcd (a PostgreSQL pipeline on table orders and window jobs over its
// change topic) and the changes the test made.
type oracleRun struct {
	t       *testing.T
	s       stack
	ctx     context.Context
	db      *pgx.Conn
	d       *daemon
	name    string
	input   string // the change topic
	jobs    []*oracleJob
	out     *oracleOutputs
	changes []*oChange
	live    map[int64]*oRow
}

// oracleJobs are the jobs of the oracle test, named after the run: every window type in
// events mode (one with emit: updates), and table mode over tumbling and hopping windows.
func oracleJobs(name string) []*oracleJob {
	mk := func(suffix, kind string, mod func(j *oracleJob)) *oracleJob {
		j := &oracleJob{name: name + "_" + suffix, output: name + "." + suffix, kind: kind, grace: 10 * 60 * oSec}
		j.late = j.output + ".late"
		mod(j)
		return j
	}
	return []*oracleJob{
		mk("tumble", "tumbling", func(j *oracleJob) { j.size, j.adv, j.allOps = 60*oSec, 60*oSec, true }),
		mk("tumble_upd", "tumbling", func(j *oracleJob) { j.size, j.adv, j.allOps, j.updates = 60*oSec, 60*oSec, true, true }),
		mk("hop", "hopping", func(j *oracleJob) { j.size, j.adv, j.late = 90*oSec, 30*oSec, j.output+".too_late" }),
		mk("session", "session", func(j *oracleJob) { j.gap = 20 * oSec }),
		mk("count", "count", func(j *oracleJob) { j.events = 4 }),
		mk("table_tumble", "tumbling", func(j *oracleJob) { j.size, j.adv, j.table = 60*oSec, 60*oSec, true }),
		mk("table_hop", "hopping", func(j *oracleJob) { j.size, j.adv, j.table = 120*oSec, 60*oSec, true }),
	}
}

// startOracle creates the database and table, starts cdcd with the pipeline and the jobs, and
// waits until the pipeline streams (its slot exists: every change from now on is captured).
func startOracle(t *testing.T, prefix string, jobs func(name string) []*oracleJob) *oracleRun {
	name := uniqueName(prefix)
	s, ctx, dsn, db := setup(t, 6*time.Minute, name, oracleDDL)
	r := &oracleRun{t: t, s: s, ctx: ctx, db: db, name: name, input: name + ".public.orders", jobs: jobs(name), live: map[int64]*oRow{}}
	var yaml strings.Builder
	yaml.WriteString("windows:\n")
	for _, j := range r.jobs {
		fmt.Fprintf(&yaml, "  - name: %s\n    input:\n      topics: [%s]\n", j.name, r.input)
		if !j.allOps && !j.table {
			yaml.WriteString("      ops: [c]\n")
		}
		yaml.WriteString("    time: after.created_at\n    group_by: [after.customer_id]\n")
		switch j.kind {
		case "tumbling":
			fmt.Fprintf(&yaml, "    window: {type: tumbling, size: %ds, grace: %ds}\n", j.size/oSec, j.grace/oSec)
		case "hopping":
			fmt.Fprintf(&yaml, "    window: {type: hopping, size: %ds, advance: %ds, grace: %ds}\n", j.size/oSec, j.adv/oSec, j.grace/oSec)
		case "session":
			fmt.Fprintf(&yaml, "    window: {type: session, gap: %ds, grace: %ds}\n", j.gap/oSec, j.grace/oSec)
		case "count":
			fmt.Fprintf(&yaml, "    window: {type: count, events: %d}\n", j.events)
		}
		if j.table {
			yaml.WriteString("    mode: table\n")
		}
		if j.updates {
			yaml.WriteString("    emit: updates\n")
		} else {
			yaml.WriteString("    emit: final\n")
		}
		yaml.WriteString(oracleAggYAML)
		fmt.Fprintf(&yaml, "    output: {topic: %s}\n", j.output)
		if j.late != j.output+".late" {
			fmt.Fprintf(&yaml, "    late: {topic: %s}\n", j.late)
		}
		yaml.WriteString("    idle_timeout: 0s\n    instance_id: it-oracle\n    partitions: 3\n")
	}
	// One partition for the change topic (kafka.topic_partitions applies to the topics cdcd
	// creates): the jobs read the changes in commit order, which makes count windows and
	// first/last ties deterministic.
	pipeline := pipelineYAML(s, name, dsn, []string{"public.orders"}, "")
	if !strings.Contains(pipeline, "topic_partitions: 3\n") {
		t.Fatalf("the pipeline configuration no longer sets topic_partitions: 3; adapt the test:\n%s", pipeline)
	}
	pipeline = strings.Replace(pipeline, "topic_partitions: 3\n", "topic_partitions: 1\n", 1)
	r.d = startDaemon(t, pipeline+yaml.String())
	// The jobs wait for their input's first schema, which the first change registers.
	waitPipelineStreaming(t, r.d, name)
	r.out = newOracleOutputs(t, s, r.jobs)
	return r
}

// write commits one change (each in its own transaction) and records it.
func (r *oracleRun) write(c *oChange) {
	r.t.Helper()
	var err error
	switch c.op {
	case 'c':
		a := c.after
		_, err = r.db.Exec(r.ctx, `INSERT INTO orders VALUES ($1, $2, $3, $4, $5, $6)`, a.id, a.customer, a.qty, oDecArg(a.total), a.buyer, time.UnixMicro(a.at).UTC())
		r.live[a.id] = a
	case 'u':
		a := c.after
		_, err = r.db.Exec(r.ctx, `UPDATE orders SET customer_id = $2, qty = $3, total = $4, buyer = $5, created_at = $6 WHERE id = $1`,
			a.id, a.customer, a.qty, oDecArg(a.total), a.buyer, time.UnixMicro(a.at).UTC())
		r.live[a.id] = a
	case 'd':
		_, err = r.db.Exec(r.ctx, `DELETE FROM orders WHERE id = $1`, c.before.id)
		delete(r.live, c.before.id)
	}
	if err != nil {
		r.t.Fatalf("writing change %d (%c): %v", len(r.changes), c.op, err)
	}
	r.changes = append(r.changes, c)
}

// wait polls the outputs until done reports nothing missing, or fails the test after timeout.
func (r *oracleRun) wait(what string, timeout time.Duration, done func() string) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.out.poll(r.t, time.Second)
		missing := done()
		if missing == "" {
			return
		}
		select {
		case <-r.d.exited:
			r.t.Fatalf("cdcd exited while waiting for %s: %v\n%s", what, r.d.err, r.d.Logs())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Errorf("timed out after %s waiting for %s: %s", timeout, what, missing)
			return
		}
	}
}

// closePhase1 inserts phase 2 (one row per customer an hour after base: every repartition
// partition holding a customer passes the end + grace of every phase-1 window), computes what
// phases 1 and 2 must produce, and waits for every phase-1 window in the outputs.
func (r *oracleRun) closePhase1(base int64, customers []int64, newRow func(customer, at int64) *oRow) {
	r.t.Helper()
	r.d.waitReady(2 * time.Minute)
	for _, c := range customers {
		r.write(&oChange{op: 'c', after: newRow(c, base+3600*oSec+c), phase: 2})
	}
	for _, j := range r.jobs {
		j.expect(r.changes, base+3600*oSec)
	}
	r.wait("the phase-1 windows", 3*time.Minute, func() string {
		for _, j := range r.jobs {
			if j.kind == "count" {
				continue // its windows close with their 4th event, phase 3 included
			}
			if m := r.out.missing(r.t, j); m != "" {
				return m
			}
		}
		return ""
	})
	if r.t.Failed() {
		r.out.report(r.t, r.jobs)
		r.t.FailNow()
	}
}

// finish reads the change topic (for the late records' origins), computes the late records
// and count windows, waits for them and for the emit: updates job's last updates, and compares
// everything read with the oracle.
func (r *oracleRun) finish(streamTime int64) {
	r.t.Helper()
	oReadChanges(r.t, r.s, r.input, r.changes)
	for _, j := range r.jobs {
		j.expectLate(r.changes, r.input)
		if j.kind == "count" {
			j.expect(r.changes, streamTime) // count windows close by count only
		}
	}
	r.wait("the late records, the count windows and the last updates", 3*time.Minute, func() string {
		for _, j := range r.jobs {
			if m := r.out.missing(r.t, j); m != "" {
				return m
			}
			if m := r.out.missingLate(r.t, j); m != "" {
				return m
			}
		}
		for _, j := range r.jobs {
			if m := r.out.unconverged(r.t, j, r.jobs); m != "" {
				return m
			}
		}
		return ""
	})
	// A while longer: a window emitted twice, a late record written twice or an update past
	// a window's close would show up now.
	r.out.poll(r.t, 3*time.Second)
	r.out.report(r.t, r.jobs)
}

// TestWindowJobsMatchOracleOnRealStack runs a PostgreSQL pipeline and seven window jobs in one
// cdcd on the real stack (Kafka, registry, PostgreSQL): tumbling, hopping, session and count
// windows in events mode, tumbling and hopping windows in table mode, and one tumbling job with
// emit: updates, each computing every aggregate function (count, sum of an int and of a
// numeric, min, max, avg, count_distinct, first, last). The input is known (the test writes it,
// with seeded random values) and laid out so that every result is determined:
//
//   - the change topic has one partition, so the jobs read the changes in commit order;
//   - phase 1 writes inserts, updates and deletes with created_at spread over 6 minutes of a
//     fixed past hour, out of order, with a grace of 10 minutes: no phase-1 record is late;
//   - phase 2 inserts one row per customer at base + 1 h: every repartition partition holding a
//     customer passes the end + grace of every phase-1 window, which all close (idle_timeout is
//     0s: only event time closes windows), and the phase-2 windows stay open;
//   - phase 3, once the phase-1 results are read, writes inserts, updates and deletes inside
//     the phase-1 range: each is late, for every job but the count job.
//
// The results read read_committed from the output topics must equal, field by field and
// exactly (decimal sums as exact decimals, averages as the correctly rounded double of the
// exact quotient), the test's batch computation over the known input; no window is emitted
// twice (emit: final) and no other window is emitted; the last update of every window of the
// emit: updates job equals the batch computation (and the final job's result); every late
// record is in the job's late topic exactly once, with its reason, origin and job headers, and
// nothing else is.
func TestWindowJobsMatchOracleOnRealStack(t *testing.T) {
	r := startOracle(t, "wor", oracleJobs)

	// The input, generated from a logged seed.
	rng := rand.New(rand.NewPCG(loggedSeed(t, "window oracle"), 21))
	base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
	const span = 6 * 60 * oSec // phase-1 and phase-3 event times: [base, base+span)
	buyers := []string{"ann", "bob", "cy", "dee", "eve", "fay", "gus"}
	used := map[int64]bool{}
	shared := map[int64]bool{} // event times given to more than one row
	freshTime := func() int64 {
		for {
			at := base + rng.Int64N(span)
			if !used[at] {
				used[at] = true
				return at
			}
		}
	}
	nextID := int64(0)
	newRow := func(customer, at int64) *oRow {
		nextID++
		r := &oRow{id: nextID, customer: customer, at: at, buyer: buyers[rng.IntN(len(buyers))]}
		if rng.IntN(8) > 0 {
			q := rng.Int64N(60) - 10
			r.qty = &q
		}
		if rng.IntN(12) > 0 {
			r.total = big.NewRat(rng.Int64N(2_000_000)-100_000, 100)
		}
		return r
	}
	var liveIDs []int64 // rows of phases 1 and 3 (deleted ones removed)
	insert := func(phase int, row *oRow) {
		r.write(&oChange{op: 'c', after: row, phase: phase})
		liveIDs = append(liveIDs, row.id)
	}
	pick := func() *oRow {
		return r.live[liveIDs[rng.IntN(len(liveIDs))]]
	}
	update := func(phase int) {
		old := pick()
		u := *old
		switch rng.IntN(4) {
		case 0: // moves in time
			u.at = freshTime()
		case 1: // moves to another customer, and in time
			u.customer = 1 + rng.Int64N(5)
			u.at = freshTime()
		}
		n := newRow(u.customer, u.at)
		if rng.IntN(2) == 0 {
			u.qty, u.total = n.qty, n.total
		} else {
			u.buyer, u.total = n.buyer, n.total
			if shared[u.at] {
				// Rows sharing an event time keep buyers of their own: two rows of one window
				// with equal time and value make first/last depend on which one table mode
				// keeps (TestWindowJobsMatchOracleTableModeTies covers that case).
				u.buyer = fmt.Sprintf("re%d", len(r.changes))
			}
		}
		r.write(&oChange{op: 'u', before: old, after: &u, phase: phase})
	}
	del := func(phase int) {
		old := pick()
		for i, id := range liveIDs {
			if id == old.id {
				liveIDs = append(liveIDs[:i], liveIDs[i+1:]...)
				break
			}
		}
		r.write(&oChange{op: 'd', before: old, phase: phase})
	}

	// Phase 1: 130 inserts, 30 updates, 12 deletes, interleaved, event times out of order.
	// About one insert in ten shares the event time of a live row of its customer (with a
	// buyer of its own): first and last must break the tie by input order. One more row, alone
	// in its windows (30 s past the others), is inserted and deleted again: in table mode its
	// windows end up with no row.
	opList := []byte(strings.Repeat("c", 130) + strings.Repeat("u", 30) + strings.Repeat("d", 12))
	rng.Shuffle(len(opList)-10, func(i, j int) { opList[10+i], opList[10+j] = opList[10+j], opList[10+i] })
	ties := 0
	var ephemeral *oRow
	for i, op := range opList {
		switch i {
		case 20:
			ephemeral = newRow(1, base+span+30*oSec)
			r.write(&oChange{op: 'c', after: ephemeral, phase: 1})
		case 60:
			r.write(&oChange{op: 'd', before: ephemeral, phase: 1})
		}
		switch op {
		case 'c':
			if len(liveIDs) > 0 && rng.IntN(10) == 0 {
				p := pick()
				row := newRow(p.customer, p.at)
				row.buyer = fmt.Sprintf("tie%d", row.id)
				shared[p.at] = true
				insert(1, row)
				ties++
				continue
			}
			insert(1, newRow(1+rng.Int64N(5), freshTime()))
		case 'u':
			update(1)
		case 'd':
			del(1)
		}
	}
	phase1 := len(r.changes)
	r.closePhase1(base, []int64{1, 2, 3, 4, 5}, newRow)

	// Phase 3: late changes, inside the phase-1 range (every window they fall in closed).
	lateOps := []byte(strings.Repeat("c", 8) + strings.Repeat("u", 4) + strings.Repeat("d", 3))
	rng.Shuffle(len(lateOps), func(i, j int) { lateOps[i], lateOps[j] = lateOps[j], lateOps[i] })
	for _, op := range lateOps {
		switch op {
		case 'c':
			insert(3, newRow(1+rng.Int64N(5), freshTime()))
		case 'u':
			update(3)
		case 'd':
			del(3)
		}
	}
	t.Logf("%d changes: %d in phase 1 (%d ties on event time), 5 in phase 2, %d late in phase 3", len(r.changes), phase1, ties, len(r.changes)-phase1-5)
	r.finish(base + 3600*oSec)
}

// TestWindowJobsMatchOracleTableModeTies: first and last in table mode when rows of one window
// share an event time, and two of them also their value. By the definition (earliest or latest
// event time, ties broken by input order) applied to the table, as events mode applies it to
// the same inserts:
//
//   - customer 1: rows x, y, x (inserted in that order) at one time: first x, last x;
//   - customer 2: the same, then the first x row is deleted: rows y, x: first y, last x.
//
// Table mode keeps the candidates of first and last in a multiset keyed by value and event
// time, whose entry keeps the input position of the row that created it: the second x row
// only counts the entry up, so the tie with y is broken by the first x row's position
// (customer 1: last y), and once that row is deleted by the position of a row no longer in
// the table (customer 2: first x, last y). Events mode gives first x, last x on the same
// inserts.
func TestWindowJobsMatchOracleTableModeTies(t *testing.T) {
	r := startOracle(t, "wot", func(name string) []*oracleJob {
		var jobs []*oracleJob
		for _, j := range oracleJobs(name) {
			if j.kind == "tumbling" && !j.updates {
				jobs = append(jobs, j) // events mode (all ops) and table mode
			}
		}
		return jobs
	})
	base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
	at := base + 10*oSec + 123456
	id := int64(0)
	row := func(customer, at int64, buyer string) *oRow {
		id++
		q := id
		return &oRow{id: id, customer: customer, at: at, buyer: buyer, qty: &q, total: big.NewRat(100*id+7, 100)}
	}
	for _, c := range []int64{1, 2} {
		first := row(c, at, "x")
		r.write(&oChange{op: 'c', after: first, phase: 1})
		r.write(&oChange{op: 'c', after: row(c, at, "y"), phase: 1})
		r.write(&oChange{op: 'c', after: row(c, at, "x"), phase: 1})
		if c == 2 {
			r.write(&oChange{op: 'd', before: first, phase: 1})
		}
	}
	r.closePhase1(base, []int64{1, 2}, func(customer, at int64) *oRow { return row(customer, at, "z") })
	r.finish(base + 3600*oSec)
}

// oDecArg is a numeric parameter: its exact decimal text, or NULL.
func oDecArg(r *big.Rat) any {
	if r == nil {
		return nil
	}
	return r.FloatString(2)
}

// oWindowsOf returns the [start, end) of the tumbling or hopping windows containing at: the
// multiples of adv in (at-size, at].
func oWindowsOf(at, size, adv int64) [][2]int64 {
	var out [][2]int64
	last := oFloorDiv(at, adv) * adv
	for start := last - size + adv; start <= last; start += adv {
		out = append(out, [2]int64{start, start + size})
	}
	return out
}

func oFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// oKey names a time window by its group and its start (as results carry it: in ms).
func oKey(customer, startUs int64) string {
	return fmt.Sprintf("customer %d @ %s", customer, time.UnixMilli(oFloorDiv(startUs, 1000)).UTC().Format("15:04:05.000"))
}

func oCountKey(customer, index int64) string {
	return fmt.Sprintf("customer %d #%d", customer, index)
}

// expect computes the results the job must have emitted for the changes given, all of which
// the job processes on time (phases 1 and 2); streamTime is the stream time every partition
// holding a customer reaches (the phase-2 rows'), so a window is closed, and must have been
// emitted once with emit final, when its end + grace (a session's last event + gap + grace)
// is at most streamTime. With emit: updates every window is expected, closed or not: its last
// update reflects every record in it.
func (j *oracleJob) expect(changes []*oChange, streamTime int64) {
	j.want = map[string]map[string]string{}
	j.optional = map[string]bool{}
	closed := func(end int64) bool { return j.updates || end+j.grace <= streamTime }
	timeWindows := func(items map[int64][]oItem) map[string][]oItem {
		byWin := map[string][]oItem{}
		bounds := map[string][2]int64{}
		for _, its := range items {
			for _, it := range its {
				for _, w := range oWindowsOf(it.row.at, j.size, j.adv) {
					k := oKey(it.row.customer, w[0])
					byWin[k] = append(byWin[k], it)
					bounds[k] = w
				}
			}
		}
		for k, its := range byWin {
			if closed(bounds[k][1]) {
				j.want[k] = oracleAggregate(its, bounds[k][0], bounds[k][1])
			}
		}
		return byWin
	}
	if j.table {
		// The table after the changes: each row with the position of the change that wrote its
		// current image. A window's result is the aggregate of the rows in it.
		rows := map[int64]oItem{}
		touched := map[string][2]int64{} // every window a row was ever added to
		for i, c := range changes {
			if c.after != nil {
				rows[c.after.id] = oItem{c.after, i}
				for _, w := range oWindowsOf(c.after.at, j.size, j.adv) {
					touched[oKey(c.after.customer, w[0])] = w
				}
			} else {
				delete(rows, c.before.id)
			}
		}
		byCustomer := map[int64][]oItem{}
		for _, it := range rows {
			byCustomer[it.row.customer] = append(byCustomer[it.row.customer], it)
		}
		byWin := timeWindows(byCustomer)
		for k, w := range touched {
			if _, ok := byWin[k]; !ok && closed(w[1]) {
				j.want[k] = oracleAggregate(nil, w[0], w[1])
				j.optional[k] = true
			}
		}
		return
	}
	// Events mode: each selected change once, its after image (a delete's before image).
	byCustomer := map[int64][]oItem{}
	for i, c := range changes {
		if c.op != 'c' && !j.allOps {
			continue
		}
		r := c.image()
		byCustomer[r.customer] = append(byCustomer[r.customer], oItem{r, i})
	}
	switch j.kind {
	case "tumbling", "hopping":
		timeWindows(byCustomer)
	case "session":
		// Sessions are the clusters of a customer's event times whose neighbours are at most
		// gap apart; they report [first event, last event].
		for _, its := range byCustomer {
			sort.SliceStable(its, func(a, b int) bool { return its[a].row.at < its[b].row.at })
			for from := 0; from < len(its); {
				to := from + 1
				for to < len(its) && its[to].row.at-its[to-1].row.at <= j.gap {
					to++
				}
				first, last := its[from].row.at, its[to-1].row.at
				if closed(last + j.gap) {
					j.want[oKey(its[from].row.customer, first)] = oracleAggregate(its[from:to], first, last)
				}
				from = to
			}
		}
	case "count":
		// Every events consecutive changes of a customer, in input order, form a window that
		// closes with its last one; it reports [earliest, latest event time].
		for customer, its := range byCustomer {
			for idx := 0; (idx+1)*j.events <= len(its); idx++ {
				w := its[idx*j.events : (idx+1)*j.events]
				lo, hi := w[0].row.at, w[0].row.at
				for _, it := range w {
					lo, hi = min(lo, it.row.at), max(hi, it.row.at)
				}
				j.want[oCountKey(customer, int64(idx))] = oracleAggregate(w, lo, hi)
			}
		}
	}
}

// expectLate lists the late records the job must write for the phase-3 changes: a record
// whose windows all closed is late once, with the reason "window closed" ("session closed"
// for a session window); in table mode an update's before image is a retraction ("retraction
// for a closed window") and its after image an addition, each late on its own; a delete's
// before image is a retraction. Count windows have no late records.
func (j *oracleJob) expectLate(changes []*oChange, input string) {
	j.wantLate = map[string]int{}
	add := func(c *oChange, r *oRow, reason string, retraction bool) {
		var missed [][2]int64
		if j.kind == "session" {
			missed = [][2]int64{{r.at, r.at}}
		} else {
			missed = oWindowsOf(r.at, j.size, j.adv)
		}
		j.wantLate[oLateSignature(fmt.Sprintf("%s[0]@%d", input, c.offset), j.name, reason, retraction, r.customer, oFloorDiv(r.at, 1000), missed)]++
	}
	for _, c := range changes {
		if c.phase != 3 || j.kind == "count" {
			continue
		}
		switch {
		case j.table:
			if c.before != nil {
				add(c, c.before, "retraction for a closed window", true)
			}
			if c.after != nil {
				add(c, c.after, "window closed", false)
			}
		case c.op == 'c' || j.allOps:
			reason := "window closed"
			if j.kind == "session" {
				reason = "session closed"
			}
			add(c, c.image(), reason, false)
		}
	}
}

func oLateSignature(origin, job, reason string, retraction bool, customer, eventMs int64, missedUs [][2]int64) string {
	var ms []string
	for _, m := range missedUs {
		ms = append(ms, fmt.Sprintf("[%d,%d)", oFloorDiv(m[0], 1000), oFloorDiv(m[1], 1000)))
	}
	return fmt.Sprintf("origin=%s job=%s reason=%q retraction=%v customer=%d event_time_ms=%d missed=%s",
		origin, job, reason, retraction, customer, eventMs, strings.Join(ms, ""))
}

// oracleAggregate is the batch computation of every aggregate over the rows of one window, as
// the README and package window define them: count counts rows; the other functions skip
// NULLs (SQL semantics) and are NULL over no value (count_distinct: 0); a sum of ints is a
// long, a sum of numerics an exact decimal; avg is the double nearest to the exact quotient;
// first and last are the values of the earliest and latest row by event time, ties broken by
// input order; events is the number of rows.
func oracleAggregate(items []oItem, start, end int64) map[string]string {
	var qty, nQty int64
	rev := new(big.Rat)
	nTotal := 0
	var loT, hiT *big.Rat
	var hiQ *int64
	distinct := map[string]bool{}
	var loBuyer *string
	var first, last *oItem
	var earliest *int64
	for i := range items {
		it := &items[i]
		r := it.row
		if r.qty != nil {
			qty += *r.qty
			nQty++
			if hiQ == nil || *r.qty > *hiQ {
				hiQ = r.qty
			}
		}
		if r.total != nil {
			rev.Add(rev, r.total)
			nTotal++
			if loT == nil || r.total.Cmp(loT) < 0 {
				loT = r.total
			}
			if hiT == nil || r.total.Cmp(hiT) > 0 {
				hiT = r.total
			}
		}
		distinct[r.buyer] = true
		if loBuyer == nil || r.buyer < *loBuyer {
			loBuyer = &r.buyer
		}
		if first == nil || r.at < first.row.at || r.at == first.row.at && it.seq < first.seq {
			first = it
		}
		if last == nil || r.at > last.row.at || r.at == last.row.at && it.seq > last.seq {
			last = it
		}
		if earliest == nil || r.at < *earliest {
			earliest = &r.at
		}
	}
	m := map[string]string{
		"window_start": oMillis(start),
		"window_end":   oMillis(end),
		"n":            strconv.Itoa(len(items)),
		"events":       strconv.Itoa(len(items)),
		"buyers":       strconv.Itoa(len(distinct)),
		"qty":          "null", "avg_qty": "null", "hi_qty": "null",
		"revenue": "null", "avg_total": "null", "lo_total": "null", "hi_total": "null",
		"lo_buyer": "null", "first_buyer": "null", "last_buyer": "null", "earliest": "null",
	}
	if nQty > 0 {
		m["qty"] = strconv.FormatInt(qty, 10)
		m["hi_qty"] = strconv.FormatInt(*hiQ, 10)
		f, _ := big.NewRat(qty, nQty).Float64()
		m["avg_qty"] = oDouble(f)
	}
	if nTotal > 0 {
		m["revenue"] = oDecimal(rev)
		m["lo_total"] = oDecimal(loT)
		m["hi_total"] = oDecimal(hiT)
		f, _ := new(big.Rat).Quo(rev, big.NewRat(int64(nTotal), 1)).Float64()
		m["avg_total"] = oDouble(f)
	}
	if len(items) > 0 {
		m["lo_buyer"] = strconv.Quote(*loBuyer)
		m["first_buyer"] = strconv.Quote(first.row.buyer)
		m["last_buyer"] = strconv.Quote(last.row.buyer)
		m["earliest"] = oMicros(*earliest)
	}
	return m
}

func oMillis(us int64) string {
	return time.UnixMilli(oFloorDiv(us, 1000)).UTC().Format(time.RFC3339Nano)
}

func oMicros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

func oDouble(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// oDecimal is an exact decimal's text: with two places when it has at most two, else as the
// exact fraction (a result with more places than the column's scale is wrong, and shows).
func oDecimal(r *big.Rat) string {
	if new(big.Rat).Mul(r, big.NewRat(100, 1)).IsInt() {
		return r.FloatString(2)
	}
	return r.RatString()
}

// oText is the canonical text of a decoded result field.
func oText(v any) string {
	switch x := oUnwrap(v).(type) {
	case nil:
		return "null"
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return oDouble(x)
	case *big.Rat:
		return oDecimal(x)
	case string:
		return strconv.Quote(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

// oReadChanges reads the change topic and checks that it holds exactly the test's changes in
// commit order, in one partition; it sets each change's offset.
func oReadChanges(t *testing.T, s stack, topic string, changes []*oChange) {
	t.Helper()
	adm := kadmClient(t, s)
	td, err := adm.ListTopics(testCtx(t, 30*time.Second), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describing %s: %v %v", topic, err, td[topic].Err)
	}
	if n := len(td[topic].Partitions); n != 1 {
		t.Fatalf("%s has %d partitions; the test needs 1 (kafka.topic_partitions: 1) so that the jobs read the changes in commit order", topic, n)
	}
	c := newConsumer(t, s, topic)
	var data []*kgo.Record
	deadline := time.Now().Add(2 * time.Minute)
	for len(data) < len(changes) && time.Now().Before(deadline) {
		for _, r := range c.read(t, 1, time.Second, 0) {
			if r.Value != nil {
				data = append(data, r)
			}
		}
	}
	if len(data) != len(changes) {
		t.Fatalf("%s holds %d changes, the test made %d", topic, len(data), len(changes))
	}
	for i, r := range data {
		v := c.decode(t, r.Value)
		op, _ := unwrap(v["op"]).(string)
		ch := changes[i]
		img := ch.image()
		side := "after"
		if ch.after == nil {
			side = "before"
		}
		got := int64(-1)
		if row, ok := unwrap(v[side]).(map[string]any); ok {
			got = asInt64(t, unwrap(row["id"]))
		}
		if op != string(ch.op) || got != img.id {
			t.Fatalf("%s[%d]@%d is op %q of row %d; the test's change %d is op %c of row %d", topic, r.Partition, r.Offset, op, got, i, ch.op, img.id)
		}
		ch.offset = r.Offset
	}
}

// oracleOutputs reads every job's output and late topic read_committed.
type oracleOutputs struct {
	c          *consumer
	lateTopics map[string]bool
	results    map[string][]*kgo.Record // by topic
	late       map[string][]*kgo.Record
	decoded    map[*kgo.Record]map[string]any
}

func newOracleOutputs(t *testing.T, s stack, jobs []*oracleJob) *oracleOutputs {
	var topics []string
	lateTopics := map[string]bool{}
	for _, j := range jobs {
		topics = append(topics, j.output, j.late)
		lateTopics[j.late] = true
	}
	return &oracleOutputs{c: newConsumer(t, s, topics...), lateTopics: lateTopics, results: map[string][]*kgo.Record{},
		late: map[string][]*kgo.Record{}, decoded: map[*kgo.Record]map[string]any{}}
}

func (o *oracleOutputs) poll(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, r := range o.c.read(t, 1, time.Until(deadline), 0) {
			if o.lateTopics[r.Topic] {
				o.late[r.Topic] = append(o.late[r.Topic], r)
			} else {
				o.results[r.Topic] = append(o.results[r.Topic], r)
			}
		}
	}
}

// got returns the job's results by window key, every one in the order read.
func (o *oracleOutputs) got(t *testing.T, j *oracleJob) map[string][]map[string]string {
	t.Helper()
	out := map[string][]map[string]string{}
	for _, r := range o.results[j.output] {
		v := o.decoded[r]
		if v == nil {
			v = o.c.decode(t, r.Value)
			o.decoded[r] = v
		}
		customer := asInt64(t, oUnwrap(v["customer_id"]))
		start, ok := oUnwrap(v["window_start"]).(time.Time)
		if !ok {
			t.Fatalf("%s: window_start is %T", j.output, v["window_start"])
		}
		k := oKey(customer, start.UnixMicro())
		if j.kind == "count" {
			k = oCountKey(customer, asInt64(t, oUnwrap(v["window_index"])))
		}
		fields := map[string]string{"window_start": oText(v["window_start"])}
		for _, f := range oracleFields {
			if _, ok := v[f]; !ok {
				t.Fatalf("%s: a result without field %s: %v", j.output, f, v)
			}
			fields[f] = oText(v[f])
		}
		out[k] = append(out[k], fields)
	}
	return out
}

func oUnwrap(v any) any {
	for {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for _, inner := range m {
			v = inner
		}
	}
}

// missing says what the job has not emitted yet: "" once every expected window has a result,
// or as soon as a window the oracle does not expect shows up (the job is wrong; report says
// how). Values are compared by report (and, for an emit: updates job, awaited by unconverged).
func (o *oracleOutputs) missing(t *testing.T, j *oracleJob) string {
	got := o.got(t, j)
	n := 0
	var example string
	for k := range got {
		if _, ok := j.want[k]; !ok {
			return ""
		}
	}
	for k := range j.want {
		if j.optional[k] || len(got[k]) > 0 {
			continue
		}
		n++
		example = k
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("job %s: %d of %d windows without a result yet, e.g. %s", j.name, n, len(j.want), example)
}

// unconverged says which window of an emit: updates job has a last update that differs from
// the oracle yet; "" for the other jobs, and once the results of an emit: final job over the
// same windows already differ from the oracle (the job is wrong; waiting would not help, and
// report says how).
func (o *oracleOutputs) unconverged(t *testing.T, j *oracleJob, jobs []*oracleJob) string {
	if !j.updates {
		return ""
	}
	for _, f := range jobs {
		if f.kind != j.kind || f.table != j.table || f.updates || f.size != j.size || f.adv != j.adv || f.allOps != j.allOps {
			continue
		}
		for k, rs := range o.got(t, f) {
			if w, ok := f.want[k]; !ok || len(rs) != 1 || oDiffFields(rs[0], w) != "" {
				return ""
			}
		}
	}
	got := o.got(t, j)
	for k, w := range j.want {
		if rs := got[k]; len(rs) > 0 && oDiffFields(rs[len(rs)-1], w) != "" {
			return fmt.Sprintf("job %s: the last update of window %s is not the expected result yet: %s", j.name, k, oDiffFields(rs[len(rs)-1], w))
		}
	}
	return ""
}

func (o *oracleOutputs) lateSigs(t *testing.T, j *oracleJob) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range o.late[j.late] {
		var body struct {
			Job        string            `json:"job"`
			Reason     string            `json:"reason"`
			Retraction bool              `json:"retraction"`
			Group      map[string]string `json:"group"`
			EventMs    *int64            `json:"event_time_ms"`
			Missed     []struct {
				Start int64 `json:"start_ms"`
				End   int64 `json:"end_ms"`
			} `json:"missed_windows"`
		}
		if err := json.Unmarshal(r.Value, &body); err != nil {
			t.Errorf("%s: a late record that is not JSON: %s", j.late, r.Value)
			continue
		}
		if h := headerOf(r, "cdcd.window.reason"); h != body.Reason {
			t.Errorf("%s: header cdcd.window.reason %q, body reason %q", j.late, h, body.Reason)
		}
		if h := headerOf(r, "cdcd.window.job"); h != j.name || body.Job != j.name {
			t.Errorf("%s: header cdcd.window.job %q, body job %q, want %q", j.late, h, body.Job, j.name)
		}
		customer, err := strconv.ParseInt(body.Group["after.customer_id"], 10, 64)
		if err != nil {
			t.Errorf("%s: group %v has no after.customer_id", j.late, body.Group)
		}
		ev := int64(-1)
		if body.EventMs != nil {
			ev = *body.EventMs
		}
		var missed [][2]int64
		for _, m := range body.Missed {
			missed = append(missed, [2]int64{m.Start * 1000, m.End * 1000})
		}
		got[oLateSignature(headerOf(r, "cdcd.origin"), j.name, body.Reason, body.Retraction, customer, ev, missed)]++
	}
	return got
}

// missingLate says how many late records the job has yet to write ("" once as many as
// expected are read; report compares them one by one).
func (o *oracleOutputs) missingLate(t *testing.T, j *oracleJob) string {
	want := 0
	for _, n := range j.wantLate {
		want += n
	}
	if got := len(o.late[j.late]); got < want {
		return fmt.Sprintf("job %s: %d of %d late records read", j.name, got, want)
	}
	return ""
}

func oDiffFields(got, want map[string]string) string {
	var d []string
	for _, f := range append([]string{"window_start"}, oracleFields...) {
		if got[f] != want[f] {
			d = append(d, fmt.Sprintf("%s: got %s, want %s", f, got[f], want[f]))
		}
	}
	return strings.Join(d, "; ")
}

// report compares everything read with the oracle, window by window and field by field.
func (o *oracleOutputs) report(t *testing.T, jobs []*oracleJob) {
	t.Helper()
	var finalTumble map[string][]map[string]string
	for _, j := range jobs {
		if j.kind == "tumbling" && !j.table && !j.updates {
			finalTumble = o.got(t, j)
		}
	}
	for _, j := range jobs {
		got := o.got(t, j)
		keys := make([]string, 0, len(j.want))
		for k := range j.want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		bad := 0
		fail := func(format string, a ...any) {
			t.Helper()
			if bad++; bad <= 15 {
				t.Errorf("job %s: "+format, append([]any{j.name}, a...)...)
			}
		}
		for _, k := range keys {
			rs, w := got[k], j.want[k]
			switch {
			case len(rs) == 0 && j.optional[k]:
			case len(rs) == 0:
				fail("window %s missing; want %v", k, w)
			case !j.updates && len(rs) > 1:
				fail("window %s emitted %d times: %v", k, len(rs), rs)
			default:
				if diff := oDiffFields(rs[len(rs)-1], w); diff != "" {
					fail("window %s: %s", k, diff)
				}
			}
			if j.updates && len(rs) > 0 {
				if f := finalTumble[k]; len(f) == 1 {
					if diff := oDiffFields(rs[len(rs)-1], f[0]); diff != "" {
						fail("window %s: the last update differs from the emit: final job's result: %s", k, diff)
					}
				}
			}
		}
		for k, rs := range got {
			if _, ok := j.want[k]; !ok {
				fail("window %s emitted but not closed (or not existing) in the oracle: %v", k, rs)
			}
		}
		lateGot := o.lateSigs(t, j)
		for sig, n := range j.wantLate {
			if lateGot[sig] != n {
				fail("late record %s: in the late topic %d times, want %d", sig, lateGot[sig], n)
			}
		}
		for sig, n := range lateGot {
			if _, ok := j.wantLate[sig]; !ok {
				fail("unexpected late record (%d times) %s", n, sig)
			}
		}
		nOpt := 0
		for k := range j.optional {
			if len(got[k]) > 0 {
				nOpt++
			}
		}
		if len(keys) > 0 {
			t.Logf("job %s: window %s: %v", j.name, keys[0], j.want[keys[0]])
		}
		t.Logf("job %s: %d windows expected (%d emptied by retractions, %d of them emitted), %d read, %d late records",
			j.name, len(j.want), len(j.optional), nOpt, len(got), len(o.late[j.late]))
	}
}
