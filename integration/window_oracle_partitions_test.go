package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The partitioned oracle's jobs: every one computes these aggregates, and the oracle compares
// them (and window_end and events) field by field with GROUP BY in SQL over the table.
const poAggYAML = `    aggregates:
      - {name: n, fn: count}
      - {name: qty, fn: sum, field: after.qty}
      - {name: revenue, fn: sum, field: after.total}
      - {name: lo, fn: min, field: after.total}
      - {name: hi, fn: max, field: after.total}
      - {name: buyers, fn: count_distinct, field: after.buyer}
      - {name: first_buyer, fn: first, field: after.buyer}
      - {name: last_buyer, fn: last, field: after.buyer}
`

var poFields = []string{"window_end", "n", "qty", "revenue", "lo", "hi", "buyers", "first_buyer", "last_buyer", "events"}

// poAggSQL computes poFields (after window_end) over the rows of a group, as text ("null" for
// NULL), as the docs define them: count counts rows, the others skip NULLs and are NULL over
// no value, first and last go by event time (distinct here: no ties).
const poAggSQL = `count(*)::text, coalesce(sum(qty)::text, 'null'), coalesce(sum(total)::text, 'null'),
  coalesce(min(total)::text, 'null'), coalesce(max(total)::text, 'null'), count(DISTINCT buyer)::text,
  (array_agg(buyer ORDER BY ms))[1], (array_agg(buyer ORDER BY ms DESC))[1], count(*)::text`

// poJob is one window job of the partitioned oracle and the SQL that computes its windows:
// customer, window_start (ms), window_end (ms), then poAggSQL's columns.
type poJob struct {
	suffix, window, sql, reason string
	missed                      func(ms int64) [][2]int64
}

func poJobs() []poJob {
	const rows = `WITH r AS (SELECT customer_id AS c, (extract(epoch FROM created_at) * 1000)::bigint AS ms, qty, total, buyer
  FROM orders WHERE phase = 'on')`
	return []poJob{
		{suffix: "tumble", window: "{type: tumbling, size: 1m, grace: 10s}", reason: "window closed",
			sql:    rows + ` SELECT c, ms / 60000 * 60000, ms / 60000 * 60000 + 60000, ` + poAggSQL + ` FROM r GROUP BY 1, 2`,
			missed: func(ms int64) [][2]int64 { s := ms / 60000 * 60000; return [][2]int64{{s, s + 60000}} }},
		{suffix: "hop", window: "{type: hopping, size: 90s, advance: 30s, grace: 10s}", reason: "window closed",
			sql: rows + ` SELECT c, (ms / 30000 - k) * 30000, (ms / 30000 - k) * 30000 + 90000, ` + poAggSQL +
				` FROM r, generate_series(0, 2) k GROUP BY 1, 2`,
			missed: func(ms int64) [][2]int64 {
				var w [][2]int64
				for k := int64(2); k >= 0; k-- {
					s := (ms/30000 - k) * 30000
					w = append(w, [2]int64{s, s + 90000})
				}
				return w
			}},
		// A session goes on while the next event of its customer is at most gap (3 s) after
		// the last; it reports its first and last event time.
		{suffix: "session", window: "{type: session, gap: 3s, grace: 10s}", reason: "session closed",
			sql: rows + `, b AS (SELECT *, CASE WHEN ms - lag(ms) OVER w <= 3000 THEN 0 ELSE 1 END AS brk FROM r WINDOW w AS (PARTITION BY c ORDER BY ms)),
  s AS (SELECT *, sum(brk) OVER (PARTITION BY c ORDER BY ms) AS sid FROM b)
  SELECT c, min(ms), max(ms), ` + poAggSQL + ` FROM s GROUP BY c, sid`,
			missed: func(ms int64) [][2]int64 { return [][2]int64{{ms, ms}} }},
	}
}

// poRow is one row the test inserts.
type poRow struct {
	id, customer, ms int64
	qty              *int32
	total            *string
	buyer, phase     string
}

// TestWindowJobsMatchOracleOverPartitionsBacklogAndKills: a PostgreSQL pipeline writes the
// changes of table orders to a 4-partition topic (kafka.topic_partitions: 4); window jobs over
// it (tumbling, hopping and session windows, each with count, sums of an int and of a
// numeric, min, max, count_distinct, first, last) run in a second cdcd process. A backlog of
// 6,000 rows is committed, and in the change topic, before that process first starts; while
// it reads the backlog and live input goes on, it is SIGKILLed four times (static membership:
// it rejoins at once), once mid-backlog. Event times (created_at) increase in commit order, so
// in each input partition's own order no record is late: by the documented rule (stream time
// is the minimum over the input partitions of the largest event time read from each) the
// late topics must stay empty of them. Then rows an hour later in every input partition close
// every window (idle_timeout 0s: only event time closes windows), and rows with old event
// times are inserted, which are late for every job.
//
// Every emitted window must equal GROUP BY in SQL over the table (the on-time rows), field by
// field, each window exactly once and no other; each late row must be in each job's late
// topic exactly once, with its origin, reason, event time and missed windows, and nothing else.
func TestWindowJobsMatchOracleOverPartitionsBacklogAndKills(t *testing.T) {
	name := uniqueName("wop")
	s, ctx, dsn, db := setup(t, 4*time.Minute, name, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL,
  qty int, total numeric(10,2), buyer text NOT NULL, created_at timestamptz NOT NULL, phase text NOT NULL)`)
	input := name + ".public.orders"
	pipeline := pipelineYAML(s, name, dsn, []string{"public.orders"}, "")
	if !strings.Contains(pipeline, "topic_partitions: 3\n") {
		t.Fatalf("the pipeline configuration no longer sets topic_partitions: 3; adapt the test:\n%s", pipeline)
	}
	pipeline = strings.Replace(pipeline, "topic_partitions: 3\n", "topic_partitions: 4\n", 1)
	p := startDaemon(t, pipeline)
	waitPipelineStreaming(t, p, name)

	rng := rand.New(rand.NewPCG(loggedSeed(t, "partitioned window oracle"), 7))
	var rngMu sync.Mutex // the writer and the kill schedule share rng
	randN := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	buyers := []string{"ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"}
	base := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	var (
		nextID int64
		lastMs = base
	)
	// newRow: customers skewed (a few busy ones, several rare), event times strictly
	// increasing, mostly 1-40 ms apart, now and then 3.5-6 s (sessions end; always < grace).
	newRow := func(phase string) poRow {
		rngMu.Lock()
		defer rngMu.Unlock()
		nextID++
		u := rng.Float64()
		r := poRow{id: nextID, customer: int64(12 * u * u), buyer: buyers[rng.IntN(len(buyers))], phase: phase}
		if rng.IntN(200) == 0 {
			lastMs += 3500 + rng.Int64N(2500)
		} else {
			lastMs += 1 + rng.Int64N(40)
		}
		r.ms = lastMs
		if rng.IntN(10) > 0 {
			q := int32(rng.IntN(50) - 5)
			r.qty = &q
		}
		if rng.IntN(15) > 0 {
			tot := big.NewRat(rng.Int64N(500_000)-20_000, 100).FloatString(2)
			r.total = &tot
		}
		return r
	}
	insert := func(rows []poRow) error {
		var (
			ids, cs []int64
			qs      []*int32
			ts      []*string
			bs, ps  []string
			ats     []time.Time
		)
		for _, r := range rows {
			ids, cs, qs, ts = append(ids, r.id), append(cs, r.customer), append(qs, r.qty), append(ts, r.total)
			bs, ps, ats = append(bs, r.buyer), append(ps, r.phase), append(ats, time.UnixMilli(r.ms).UTC())
		}
		_, err := db.Exec(ctx, `INSERT INTO orders SELECT id, c, q, t::numeric, b, at, ph
  FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) AS u(id, c, q, t, b, at, ph)`,
			ids, cs, qs, ts, bs, ats, ps)
		return err
	}
	batch := func(n int, phase string) []poRow {
		rows := make([]poRow, n)
		for i := range rows {
			rows[i] = newRow(phase)
		}
		return rows
	}

	// The change topic, read as the test goes: each row's origin, and the partitions it holds.
	changes := newConsumer(t, s, input)
	origin := map[int64]string{}
	partOf := map[int64]int32{}
	readChanges := func(want int, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for len(origin) < want && time.Now().Before(deadline) {
			for _, r := range changes.read(t, 1, time.Second, 0) {
				if r.Value == nil {
					continue
				}
				after, _ := unwrap(changes.decode(t, r.Value)["after"]).(map[string]any)
				id := asInt64(t, unwrap(after["id"]))
				origin[id] = fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
				partOf[id] = r.Partition
			}
		}
		if len(origin) < want {
			t.Fatalf("the change topic holds %d changes after %s, want %d", len(origin), timeout, want)
		}
	}

	// The backlog, in the change topic before the jobs first start.
	const backlog = 6000
	for i := 0; i < backlog; i += 1000 {
		if err := insert(batch(1000, "on")); err != nil {
			t.Fatal(err)
		}
	}
	readChanges(backlog, time.Minute)

	var yaml strings.Builder
	fmt.Fprintf(&yaml, `kafka:
  brokers: [%q]
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
`, s.kafka[0], s.registry)
	jobs := poJobs()
	for _, j := range jobs {
		fmt.Fprintf(&yaml, `  - name: %s_%s
    input: {topics: [%s], ops: [c]}
    time: after.created_at
    group_by: [after.customer_id]
    window: %s
%s    output: {topic: %s.%s}
    idle_timeout: 0s
    instance_id: it-po
    static_membership: true
    session_timeout: 6s
`, name, j.suffix, input, j.window, poAggYAML, name, j.suffix)
	}
	d := startDaemon(t, yaml.String())

	// Live input from now on (batches of 10 rows every 100 ms, each in one transaction), while
	// cdcd with the jobs is SIGKILLed: first mid-backlog, then three times more.
	stopWriter := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopWriter:
				writerDone <- nil
				return
			case <-tk.C:
			}
			if err := insert(batch(10, "on")); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	defer func() {
		select {
		case <-stopWriter:
		default:
			close(stopWriter)
		}
	}()
	for start := time.Now(); poMetric(d, "cdcd_window_records_in_total") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			t.Fatalf("the jobs read no input in a minute\n%s", d.Logs())
		}
		select {
		case <-d.exited:
			t.Fatalf("cdcd exited: %v\n%s", d.err, d.Logs())
		default:
		}
	}
	for i := range 4 {
		if i > 0 {
			time.Sleep(3*time.Second + time.Duration(randN(3000))*time.Millisecond)
		}
		in := poMetric(d, "cdcd_window_records_in_total")
		d.stop(syscall.SIGKILL)
		down := time.Duration(randN(1500)) * time.Millisecond
		t.Logf("kill %d: SIGKILLed after %.0f records in since its start; down for %s", i+1, in, down)
		time.Sleep(down)
		d.restart()
	}
	time.Sleep(3 * time.Second)
	close(stopWriter)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	liveEnd := lastMs

	// Rows an hour later, until every input partition holds one: stream time passes the end
	// and grace of every window before them in every repartition partition.
	closeAt := lastMs + 3600_000
	var closers []poRow
	for parts := map[int32]bool{}; len(parts) < 4; {
		b := batch(8, "closer")
		for i := range b {
			b[i].ms = closeAt + int64(len(closers)+i)
		}
		if err := insert(b); err != nil {
			t.Fatal(err)
		}
		closers = append(closers, b...)
		readChanges(int(nextID), time.Minute)
		for _, r := range closers {
			parts[partOf[r.id]] = true
		}
	}
	live := int(nextID) - backlog - len(closers)

	// What GROUP BY in SQL says, job by job.
	want := make([]map[windowKey]map[string]string, len(jobs))
	nWant := 0
	for i, j := range jobs {
		want[i] = poQuery(t, db, j.sql)
		nWant += len(want[i])
	}

	outTopics := map[string]int{}
	var topics []string
	for i, j := range jobs {
		outTopics[name+"."+j.suffix] = i
		outTopics[name+"."+j.suffix+".late"] = i
		topics = append(topics, name+"."+j.suffix, name+"."+j.suffix+".late")
	}
	out := newConsumer(t, s, topics...)
	got := make([]map[windowKey][]map[string]string, len(jobs))
	late := make([][]poLate, len(jobs))
	for i := range got {
		got[i] = map[windowKey][]map[string]string{}
	}
	nGot := 0
	poll := func(d time.Duration) {
		for _, r := range out.read(t, 1, d, 0) {
			i := outTopics[r.Topic]
			if strings.HasSuffix(r.Topic, ".late") {
				late[i] = append(late[i], poParseLate(t, r.Value, headerOf(r, "cdcd.origin"), headerOf(r, "cdcd.window.reason")))
				continue
			}
			v := out.decode(t, r.Value)
			k := windowKey{asInt64(t, oUnwrap(v["customer_id"])), poText(t, v["window_start"]).(int64)}
			g := map[string]string{}
			for _, f := range poFields {
				g[f] = fmt.Sprint(poText(t, v[f]))
			}
			got[i][k] = append(got[i][k], g)
			nGot++
		}
	}
	for deadline := time.Now().Add(90 * time.Second); nGot < nWant && time.Now().Before(deadline); {
		select {
		case <-d.exited:
			t.Fatalf("cdcd exited: %v\n%s", d.err, d.Logs())
		default:
		}
		poll(time.Second)
	}

	// Rows with old event times, within the range of the closed windows: late for every job.
	lateRows := make([]poRow, 20)
	for i := range lateRows {
		lateRows[i] = newRow("late")
		lateRows[i].ms = base + rng.Int64N(liveEnd-base)
	}
	if err := insert(lateRows); err != nil {
		t.Fatal(err)
	}
	readChanges(int(nextID), time.Minute)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		n := 0
		for i := range late {
			n += len(late[i])
		}
		if n >= len(jobs)*len(lateRows) {
			break
		}
		poll(time.Second)
	}
	poll(3 * time.Second) // a window emitted twice, or an extra late record, would show now

	for i, j := range jobs {
		job := name + "_" + j.suffix
		bad := 0
		fail := func(format string, a ...any) {
			t.Helper()
			if bad++; bad <= 8 {
				t.Errorf("job %s: "+format, append([]any{job}, a...)...)
			}
		}
		keys := make([]windowKey, 0, len(want[i]))
		for k := range want[i] {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool {
			return keys[a].start < keys[b].start || keys[a].start == keys[b].start && keys[a].customer < keys[b].customer
		})
		for _, k := range keys {
			w, rs := want[i][k], got[i][k]
			switch {
			case len(rs) == 0:
				fail("window %v missing; GROUP BY has %v", k, w)
			case len(rs) > 1:
				fail("window %v emitted %d times: %v", k, len(rs), rs)
			default:
				for _, f := range poFields {
					if rs[0][f] != w[f] {
						fail("window %v, %s: got %s, GROUP BY has %s", k, f, rs[0][f], w[f])
					}
				}
			}
		}
		for k, rs := range got[i] {
			if _, ok := want[i][k]; !ok {
				fail("window %v emitted but not in GROUP BY (or not closed): %v", k, rs)
			}
		}
		wantLate := map[string]int{}
		for _, r := range lateRows {
			wantLate[poLateSig(job, origin[r.id], j.reason, r.customer, r.ms, j.missed(r.ms))]++
		}
		gotLate := map[string]int{}
		for _, l := range late[i] {
			if l.job != job {
				fail("a late record of job %q in its late topic", l.job)
			}
			gotLate[poLateSig(l.job, l.origin, l.reason, l.customer, l.ms, l.missed)]++
		}
		for sig, n := range wantLate {
			if gotLate[sig] != n {
				fail("late record %s: %d times in the late topic, want %d", sig, gotLate[sig], n)
			}
		}
		for sig, n := range gotLate {
			if wantLate[sig] == 0 {
				fail("a record late by no rule (%d times) in the late topic: %s", n, sig)
			}
		}
		if bad > 8 {
			t.Errorf("job %s: %d differences in all", job, bad)
		}
		t.Logf("job %s: %d windows in GROUP BY, %d emitted, %d late records (%d late rows)", job, len(want[i]), len(got[i]), len(late[i]), len(lateRows))
	}
	t.Logf("%d backlog rows, %d live rows, %d closers, %d late rows", backlog, live, len(closers), len(lateRows))
}

// poQuery runs a job's oracle SQL: customer, window_start, window_end, then the aggregates.
func poQuery(t *testing.T, db *pgx.Conn, sql string) map[windowKey]map[string]string {
	t.Helper()
	rs, err := db.Query(testCtx(t, time.Minute), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rs.Close()
	want := map[windowKey]map[string]string{}
	for rs.Next() {
		var k windowKey
		var end int64
		v := make([]string, len(poFields)-1)
		dst := []any{&k.customer, &k.start, &end}
		for i := range v {
			dst = append(dst, &v[i])
		}
		if err := rs.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		w := map[string]string{"window_end": strconv.FormatInt(end, 10)}
		for i, f := range poFields[1:] {
			w[f] = v[i]
		}
		want[k] = w
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// poText is a decoded result field as the oracle's SQL writes it: ms for times, exact
// decimals with two places, "null".
func poText(t *testing.T, v any) any {
	t.Helper()
	switch x := oUnwrap(v).(type) {
	case nil:
		return "null"
	case time.Time:
		return x.UnixMilli()
	case *big.Rat:
		return x.FloatString(2)
	case string:
		return x
	case int, int32, int64:
		return strconv.FormatInt(asInt64(t, x), 10)
	}
	t.Fatalf("a result field %v (%T)", v, v)
	return nil
}

type poLate struct {
	job, origin, reason string
	customer, ms        int64
	missed              [][2]int64
}

func poParseLate(t *testing.T, value []byte, origin, reason string) poLate {
	t.Helper()
	var body struct {
		Job      string         `json:"job"`
		Reason   string         `json:"reason"`
		Retract  bool           `json:"retraction"`
		Group    map[string]any `json:"group"`
		EventMs  *int64         `json:"event_time_ms"`
		MissedJS []struct {
			Start int64 `json:"start_ms"`
			End   int64 `json:"end_ms"`
		} `json:"missed_windows"`
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("a late record that is not JSON: %s", value)
	}
	l := poLate{job: body.Job, origin: origin, reason: body.Reason, customer: -1, ms: -1}
	if reason != body.Reason {
		t.Errorf("a late record with header cdcd.window.reason %q and reason %q in its body", reason, body.Reason)
	}
	if body.Retract {
		l.reason += " (retraction)"
	}
	if c, err := strconv.ParseInt(strings.Trim(fmt.Sprint(body.Group["after.customer_id"]), `"`), 10, 64); err == nil {
		l.customer = c
	}
	if body.EventMs != nil {
		l.ms = *body.EventMs
	}
	for _, m := range body.MissedJS {
		l.missed = append(l.missed, [2]int64{m.Start, m.End})
	}
	return l
}

func poLateSig(job, origin, reason string, customer, ms int64, missed [][2]int64) string {
	m := append([][2]int64(nil), missed...)
	sort.Slice(m, func(a, b int) bool { return m[a][0] < m[b][0] })
	return fmt.Sprintf("job=%s origin=%s reason=%q customer=%d event_time_ms=%d missed=%v", job, origin, reason, customer, ms, m)
}

// poMetric is d.metric, or 0 while cdcd does not answer on /metrics yet (it just started).
func poMetric(d *daemon, name string) float64 {
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return d.metric(name)
}
