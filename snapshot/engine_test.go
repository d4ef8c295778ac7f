package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// fakeDB is a table of int keys 1..n; its snapshots see transactions below visibleBelow.
type fakeDB struct {
	mu           sync.Mutex
	keys         []int
	visibleBelow uint64
	reads        [][2]int // (lo, hi] of every chunk read (0 / -1: open)
	restAfter    int      // Read stops after this many rows (0: never)
	watermarks   chan string
	widen        func(k int) []change.Value // a row's values (default: the key alone)
}

type fakeWorker struct{ db *fakeDB }

func (w fakeWorker) Describe(context.Context, *Task) (bool, int64, error) {
	return false, int64(len(w.db.keys)), nil
}
func (w fakeWorker) Prepare(context.Context, *Task) error { return nil }
func (w fakeWorker) Close()                               {}

func keyBound(b []string) int {
	if b == nil {
		return 0
	}
	n, _ := strconv.Atoi(b[0])
	return n
}

func (w fakeWorker) Plan(_ context.Context, t *Task, rows int) ([]string, bool, error) {
	lo := keyBound(t.Next)
	var in []int
	for _, k := range w.db.keys {
		if k > lo {
			in = append(in, k)
		}
	}
	if len(in) <= rows {
		return nil, true, nil
	}
	return []string{strconv.Itoa(in[rows-1])}, false, nil
}

func (w fakeWorker) Read(_ context.Context, t *Task, c Chunk, _ int64) (*Read, error) {
	w.db.mu.Lock()
	defer w.db.mu.Unlock()
	lo, hi := keyBound(c.Lo), keyBound(c.Hi)
	if c.Hi == nil {
		hi = -1
	}
	w.db.reads = append(w.db.reads, [2]int{lo, hi})
	vis := w.db.visibleBelow
	rd := &Read{Visible: func(tx uint64) bool { return tx < vis }, Horizon: vis}
	for _, k := range w.db.keys {
		if k > lo && (hi < 0 || k <= hi) {
			vals := []change.Value{{Int: int64(k)}}
			if w.db.widen != nil {
				vals = w.db.widen(k)
			}
			rd.Rows = append(rd.Rows, Row{Key: KeyOf(vals, []int{0}), Vals: vals})
			if w.db.restAfter > 0 && len(rd.Rows) == w.db.restAfter {
				rd.Rest = []string{strconv.Itoa(k)}
				break
			}
		}
	}
	return rd, nil
}

func (w fakeWorker) Watermark(_ context.Context, token string) error {
	w.db.watermarks <- token
	return nil
}

func newFakeDB(n int) *fakeDB {
	db := &fakeDB{visibleBelow: 100, watermarks: make(chan string, 64)}
	for k := 1; k <= n; k++ {
		db.keys = append(db.keys, k)
	}
	return db
}

func startEngine(t *testing.T, db *fakeDB, cfg Config, committed bool, prev []byte) *Engine {
	t.Helper()
	if cfg.Pipeline == "" {
		cfg.Pipeline = "p"
	}
	if len(cfg.Tables) == 0 {
		cfg.Tables = []string{"public.t"}
	}
	e, err := New(cfg, committed, prev, func(context.Context) (Worker, error) { return fakeWorker{db}, nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func take(t *testing.T, e *Engine, db *fakeDB) *Merged {
	t.Helper()
	select {
	case tok := <-db.watermarks:
		m := e.Take(tok)
		if m == nil {
			t.Fatalf("Take(%s) = nil", tok)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no watermark")
	}
	return nil
}

func rowKeys(rows []Row) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.Vals[0].Int)
	}
	return out
}

// A chunk row whose key the stream changed by a transaction the chunk's snapshot did not see
// is dropped (the stream's change is newer); a change the snapshot saw keeps the row.
func TestTakeDropsRowsNewerInTheStream(t *testing.T) {
	db := newFakeDB(10)
	e := startEngine(t, db, Config{Mode: Initial, ChunkRows: 100}, false, nil)
	k := e.Tracked("public.t")
	if k == nil {
		t.Fatal("a table under snapshot is not tracked from the start")
	}
	key := func(n int64) string { return KeyOf([]change.Value{{Int: n}}, []int{0}) }
	k.Touch(key(3), 150, true)  // not visible to the chunk's snapshot: newer than the row
	k.Touch(key(4), 50, false)  // visible, published without its whole row: the row completes it
	k.Touch(key(5), 60, true)   // visible and published whole: the row would only repeat it
	k.Touch(key(6), 160, false) // not visible
	m := take(t, e, db)
	if got := rowKeys(m.Rows); !slices.Equal(got, []int64{1, 2, 4, 7, 8, 9, 10}) || m.Dropped != 3 {
		t.Fatalf("rows %v (dropped %d), want every key but 3, 5 and 6", got, m.Dropped)
	}
	if !m.Last {
		t.Fatal("the only chunk is not the last")
	}
	st, err := ParseState(m.State)
	if err != nil || len(st.Queue) != 0 || !slices.Equal(st.Done, []string{"public.t"}) {
		t.Fatalf("state after the last chunk: %+v (%v)", st, err)
	}
	if e.Tracked("public.t") != nil {
		t.Fatal("still tracking a table whose snapshot finished")
	}
}

// A truncate the snapshot did not see drops the whole chunk.
func TestTakeDropsChunkAfterUnseenTruncate(t *testing.T) {
	db := newFakeDB(5)
	e := startEngine(t, db, Config{Mode: Initial, ChunkRows: 100}, false, nil)
	e.Tracked("public.t").Truncate(120)
	if m := take(t, e, db); len(m.Rows) != 0 {
		t.Fatalf("rows after a truncate the snapshot did not see: %v", rowKeys(m.Rows))
	}
}

// A restart from the state committed with a chunk reads only what was not published.
func TestResumeReadsOnlyUnpublishedChunks(t *testing.T) {
	db := newFakeDB(20)
	e := startEngine(t, db, Config{Mode: Initial, ChunkRows: 4, Parallelism: 1}, false, nil)
	var published []int64
	var state []byte
	for i := 0; i < 2; i++ {
		m := take(t, e, db)
		published = append(published, rowKeys(m.Rows)...)
		state = m.State
	}
	// A new session from that state (the first engine's later chunks never committed).
	db2 := newFakeDB(20)
	e2 := startEngine(t, db2, Config{Mode: Initial, ChunkRows: 4, Parallelism: 2}, true, state)
	seen := map[int64]bool{}
	for _, k := range published {
		seen[k] = true
	}
	for {
		m := take(t, e2, db2)
		for _, k := range rowKeys(m.Rows) {
			if seen[k] {
				t.Fatalf("key %d was read again after its chunk was published", k)
			}
			seen[k] = true
		}
		if m.Last {
			break
		}
	}
	if len(seen) != 20 {
		t.Fatalf("after the resumed snapshot %d of 20 keys were read", len(seen))
	}
}

// A read that stops early (chunk_max_bytes) publishes what it read, and the rest of its range
// is read as a new chunk.
func TestEarlyStopRequeuesTheRest(t *testing.T) {
	db := newFakeDB(10)
	db.restAfter = 3
	e := startEngine(t, db, Config{Mode: Initial, ChunkRows: 100}, false, nil)
	var all []int64
	for {
		m := take(t, e, db)
		if len(m.Rows) > 3 {
			t.Fatalf("a chunk of %d rows; reads stop after 3", len(m.Rows))
		}
		all = append(all, rowKeys(m.Rows)...)
		if m.Last {
			break
		}
	}
	if !slices.Equal(all, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("keys %v", all)
	}
}

// Changes are forgotten only once every snapshot in use sees them.
func TestPruneKeepsWhatASnapshotInUseMisses(t *testing.T) {
	e, err := New(Config{Pipeline: "p", Mode: Initial, Tables: []string{"public.t"}}, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := e.Tracked("public.t")
	k.Touch("a", 100, false)
	k.Touch("b", 300, false)
	e.horizon, e.hasHoriz = 500, true
	e.inflight["x"] = bound{h: 150, known: true} // a chunk whose snapshot's xmin is 150
	e.prune()
	if _, ok := k.m["a"]; ok {
		t.Fatal("a change every snapshot sees was kept")
	}
	if _, ok := k.m["b"]; !ok {
		t.Fatal("a change the in-flight snapshot may miss was forgotten")
	}
	e.inflight["y"] = bound{} // a chunk about to take its snapshot, horizon unknown
	e.prune()
	delete(e.inflight, "x")
	e.prune()
	if _, ok := k.m["b"]; !ok {
		t.Fatal("pruned while a snapshot's horizon was unknown")
	}
}

// Requests delivered twice (a restart replays the log) are queued once.
func TestRequestOnce(t *testing.T) {
	e, err := New(Config{Pipeline: "p", Mode: Never, Tables: []string{"public.t"}}, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Request("public.x", "", "r1"); err == nil {
		t.Fatal("a request for a table the pipeline does not capture was accepted")
	}
	for i := 0; i < 2; i++ {
		if err := e.Request("public.t", "k < 10", "r1"); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := ParseState(e.StateIfDirty())
	if len(st.Queue) != 1 || st.Queue[0].Where != "k < 10" || st.Queue[0].Reason != "requested" {
		t.Fatalf("queue %+v", st.Queue)
	}
	if e.Tracked("public.t") == nil {
		t.Fatal("a requested table is not tracked before its snapshot starts")
	}
	if e.StateIfDirty() != nil {
		t.Fatal("state handed out twice without a change")
	}
}

func TestPlanModes(t *testing.T) {
	now := time.Now()
	tables := []string{"public.a", "public.b"}
	queued := func(s *State) []string {
		var out []string
		for _, t := range s.Queue {
			out = append(out, t.Table+":"+t.Reason)
		}
		return out
	}
	for _, c := range []struct {
		name      string
		mode      Mode
		committed bool
		prev      *State
		want      []string
	}{
		{"initial, new pipeline", Initial, false, nil, []string{"public.a:initial", "public.b:initial"}},
		{"when_needed, new pipeline", WhenNeeded, false, nil, []string{"public.a:initial", "public.b:initial"}},
		{"never", Never, false, nil, nil},
		{"initial, existing pipeline without state", Initial, true, nil, nil},
		{"when_needed, existing pipeline without state", WhenNeeded, true, nil, nil},
		{"when_needed, b added", WhenNeeded, true, &State{Captured: []string{"public.a"}}, []string{"public.b:added"}},
		{"initial, b added", Initial, true, &State{Captured: []string{"public.a"}}, nil},
		{"unfinished work of a dropped table", Initial, true, &State{Captured: []string{"public.a", "public.c"},
			Queue: []*Task{{ID: 1, Table: "public.c"}, {ID: 2, Table: "public.a", Reason: "initial"}}}, []string{"public.a:initial"}},
	} {
		s := Plan(c.mode, tables, c.committed, c.prev, now)
		if got := queued(s); !slices.Equal(got, c.want) {
			t.Errorf("%s: queued %v, want %v", c.name, got, c.want)
		}
		if !slices.Equal(s.Captured, tables) {
			t.Errorf("%s: captured %v", c.name, s.Captured)
		}
	}
}

func TestKeyOfDistinguishesValues(t *testing.T) {
	a := KeyOf([]change.Value{{Str: "ab"}, {Str: "c"}}, []int{0, 1})
	b := KeyOf([]change.Value{{Str: "a"}, {Str: "bc"}}, []int{0, 1})
	c := KeyOf([]change.Value{{State: change.Null}}, []int{0})
	d := KeyOf([]change.Value{{}}, []int{0})
	if a == b || c == d {
		t.Fatal("different keys share an identity")
	}
	if KeyOf([]change.Value{{Int: 7}, {Str: "x"}}, []int{0}) != KeyOf([]change.Value{{Int: 7}}, []int{0}) {
		t.Fatal("identity depends on non-key columns")
	}
}

// A requested snapshot whose condition the database refuses ends; the pipeline goes on.
func TestInvalidConditionEndsTheRequestOnly(t *testing.T) {
	e, err := New(Config{Pipeline: "p", Mode: Never, Tables: []string{"public.t"}}, true, nil,
		func(context.Context) (Worker, error) { return badWorker{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Request("public.t", "nonsense(", "r1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.Running() {
		if time.Now().After(deadline) {
			t.Fatal("the refused request is still queued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the engine failed: %v", err)
	}
}

type badWorker struct{ fakeWorker }

func (badWorker) Describe(context.Context, *Task) (bool, int64, error) { return false, 1, nil }
func (badWorker) Prepare(context.Context, *Task) error                 { return nil }
func (badWorker) Plan(context.Context, *Task, int) ([]string, bool, error) {
	return nil, false, fmt.Errorf("%w: syntax error", ErrInvalidCondition)
}

// A change the chunk's snapshot did not see that left a column unchanged (PostgreSQL: a
// TOASTed value sent as "unchanged") did not publish that column: the chunk row is not
// dropped but completed into the stream's newer row, its unchanged columns filled from the
// chunk. Where the stream itself published the column earlier (a change that carried it, seen
// or not), that value fills it; a key change's create or a delete never takes the chunk's.
func TestTakeCompletesRowsTheStreamLeftIncomplete(t *testing.T) {
	db := newFakeDB(6)
	tbl := &change.Table{Schema: "public", Name: "t", KeyColumns: []int{0},
		Columns: []change.Column{{Name: "k"}, {Name: "v"}, {Name: "body"}}}
	i := func(n int64) change.Value { return change.Value{State: change.Present, Int: n} }
	s := func(v string) change.Value { return change.Value{State: change.Present, Str: v} }
	u := change.Value{State: change.Unchanged}
	// The chunk's rows are (k) only: widen them to (k, v, body) as the table holds them.
	db.widen = func(k int) []change.Value { return []change.Value{i(int64(k)), i(0), s(fmt.Sprint("body", k))} }
	e := startEngine(t, db, Config{Mode: Initial, ChunkRows: 100}, false, nil)
	// 1: an update the snapshot did not see, body unchanged: completed from the chunk.
	e.Changed(tbl, nil, []change.Value{i(1), i(11), u}, 150)
	// 2: seen by the snapshot, body unchanged: the chunk row is newer than nothing, kept as read.
	e.Changed(tbl, nil, []change.Value{i(2), i(22), u}, 50)
	// 3: not seen: body set (published), then another update leaving it alone: completed from
	// the stream's own value, not the chunk's older one.
	e.Changed(tbl, nil, []change.Value{i(3), i(31), s("new3")}, 150)
	e.Changed(tbl, nil, []change.Value{i(3), i(33), u}, 151)
	// 4: a key change moved a row to 4 (after 4 was deleted): its unchanged body is the moved
	// row's, not 4's old one: dropped, as the stream's change is newer.
	e.Changed(tbl, []change.Value{i(4), change.Value{State: change.Absent}, change.Value{State: change.Absent}}, nil, 140)
	e.Changed(tbl, []change.Value{i(9), change.Value{State: change.Absent}, change.Value{State: change.Absent}}, []change.Value{i(4), i(44), u}, 150)
	// 5: deleted after the snapshot: dropped.
	e.Changed(tbl, []change.Value{i(5), change.Value{State: change.Absent}, change.Value{State: change.Absent}}, nil, 150)
	m := take(t, e, db)
	got := map[int64]string{}
	for _, r := range m.Rows {
		got[r.Vals[0].Int] = fmt.Sprintf("%d/%v:%s", r.Vals[1].Int, r.Vals[2].State, r.Vals[2].Str)
	}
	want := map[int64]string{
		1: fmt.Sprintf("11/%v:body1", change.Present),
		2: fmt.Sprintf("0/%v:body2", change.Present),
		3: fmt.Sprintf("33/%v:new3", change.Present),
		6: fmt.Sprintf("0/%v:body6", change.Present),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || m.Dropped != 2 {
		t.Fatalf("rows %v (dropped %d), want %v (dropped 2)", got, m.Dropped, want)
	}
}

// stuckWorker plans the same bound again and again (a bound that does not round-trip), or
// reads chunks that stop early at their lower bound.
type stuckWorker struct {
	fakeWorker
	readStuck bool
}

func (w stuckWorker) Plan(_ context.Context, t *Task, _ int) ([]string, bool, error) {
	if w.readStuck {
		return nil, true, nil
	}
	return []string{"1"}, false, nil
}

func (w stuckWorker) Read(ctx context.Context, t *Task, c Chunk, n int64) (*Read, error) {
	rd, err := w.fakeWorker.Read(ctx, t, c, n)
	if w.readStuck && err == nil && c.Lo != nil {
		rd.Rest = c.Lo
	} else if w.readStuck && err == nil {
		rd.Rest = []string{"1"}
	}
	return rd, err
}

// A chunk that makes no progress (its bound repeats the previous one) is a fatal error naming
// the table and the bound, never a loop.
func TestChunkWithoutProgressIsAnError(t *testing.T) {
	for _, readStuck := range []bool{false, true} {
		db := newFakeDB(10)
		e, err := New(Config{Pipeline: "p", Tables: []string{"public.t"}, Mode: Initial, ChunkRows: 2}, false, nil,
			func(context.Context) (Worker, error) { return stuckWorker{fakeWorker{db}, readStuck}, nil })
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for tok := range db.watermarks {
				e.Take(tok)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = e.Run(ctx)
		cancel()
		var f interface{ Fatal() bool }
		if err == nil || !errors.As(err, &f) || !f.Fatal() || !strings.Contains(err.Error(), "public.t") || !strings.Contains(err.Error(), "no progress") {
			t.Fatalf("read stuck %v: Run = %v, want a fatal error that names the table and says it made no progress", readStuck, err)
		}
	}
}

// keylessWorker describes every table as keyless (read by page ranges).
type keylessWorker struct{ fakeWorker }

func (w keylessWorker) Describe(context.Context, *Task) (bool, int64, error) { return true, 10, nil }

// A table without a key cannot be snapshotted exactly under writes: it is refused (a fatal
// error that says what can happen and the fix) unless the configuration accepts it by name;
// an on-demand request for it is dropped with the same warning, and the pipeline goes on.
func TestKeylessSnapshotNeedsAcceptance(t *testing.T) {
	run := func(cfg Config, request bool) (error, *Engine, *fakeDB) {
		db := newFakeDB(10)
		cfg.Pipeline, cfg.Tables = "p", []string{"public.t"}
		e, err := New(cfg, request, nil, func(context.Context) (Worker, error) { return keylessWorker{fakeWorker{db}}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if request {
			if err := e.Request("public.t", "", "r1"); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		go func() {
			for tok := range db.watermarks {
				e.Take(tok)
			}
		}()
		return e.Run(ctx), e, db
	}
	err, _, _ := run(Config{Mode: Initial}, false)
	var f interface{ Fatal() bool }
	if err == nil || !errors.As(err, &f) || !f.Fatal() || !strings.Contains(err.Error(), "public.t") ||
		!strings.Contains(err.Error(), "accept_inexact_keyless") || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("an unaccepted keyless table: Run = %v, want a fatal error naming the table, what can happen and the fix", err)
	}
	if err, e, _ := run(Config{Mode: Never}, true); err != nil || e.Running() {
		t.Fatalf("an unaccepted keyless request: Run = %v, still queued %v; want it dropped and the pipeline going on", err, e.Running())
	}
	if err, e, _ := run(Config{Mode: Initial, KeylessAccepted: []string{"public.t"}}, false); err != nil || e.Running() {
		t.Fatalf("an accepted keyless table: Run = %v, still queued %v; want it snapshotted", err, e.Running())
	}
}

// goneWorker reports the table missing for its first gone calls of Plan or Read (a table
// renamed away and back, or dropped and recreated, while its snapshot runs).
type goneWorker struct {
	fakeWorker
	gone *int
}

func (w goneWorker) missing() bool {
	w.db.mu.Lock()
	defer w.db.mu.Unlock()
	if *w.gone > 0 {
		*w.gone--
		return true
	}
	return false
}

func (w goneWorker) Plan(ctx context.Context, t *Task, rows int) ([]string, bool, error) {
	if w.missing() {
		return nil, false, fmt.Errorf("%s: %w", t.Table, ErrTableGone)
	}
	return w.fakeWorker.Plan(ctx, t, rows)
}

func (w goneWorker) Read(ctx context.Context, t *Task, c Chunk, n int64) (*Read, error) {
	if w.missing() {
		return nil, fmt.Errorf("%s: %w", t.Table, ErrTableGone)
	}
	return w.fakeWorker.Read(ctx, t, c, n)
}

// TestTableGoneForAMomentResumes: a table the database says does not exist for a moment
// (renamed away and back, dropped and recreated) used to end its snapshot for good at once
// ("snapshot abandoned"): the rest of the table was never read. The engine now looks again
// for TableGoneGrace before it gives up, and the snapshot reads every row.
func TestTableGoneForAMomentResumes(t *testing.T) {
	db := newFakeDB(10)
	gone := 3
	e, err := New(Config{Pipeline: "p", Tables: []string{"public.t"}, ChunkRows: 4, TableGoneGrace: 20 * time.Second}, false, nil,
		func(context.Context) (Worker, error) { return goneWorker{fakeWorker{db}, &gone}, nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()
	var keys []int64
	for len(keys) < 10 {
		select {
		case tok := <-db.watermarks:
			if m := e.Take(tok); m != nil {
				keys = append(keys, rowKeys(m.Rows)...)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("the snapshot stopped after %d rows (running: %v)", len(keys), e.Running())
		}
	}
	if e.Running() {
		t.Errorf("the snapshot did not finish")
	}
}

// TestTableGoneForGoodIsAbandoned: a table that stays missing for TableGoneGrace ends its
// snapshot (logged), and the engine goes on. The warnings that the table is missing and that
// its snapshot is abandoned say what the operator does about it (they named no fix before).
func TestTableGoneForGoodIsAbandoned(t *testing.T) {
	db := newFakeDB(10)
	gone := 1 << 30
	var logs bytes.Buffer // written by the engine's workers, read once Run returned
	e, err := New(Config{Pipeline: "p", Tables: []string{"public.t"}, TableGoneGrace: 300 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, false, nil,
		func(context.Context) (Worker, error) { return goneWorker{fakeWorker{db}, &gone}, nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.Running() {
		if time.Now().After(deadline) {
			t.Fatal("the snapshot of a table gone for good is still queued")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the engine failed: %v", err)
	}
	for _, msg := range []string{"the table does not exist", "snapshot abandoned"} {
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		if !strings.Contains(line, "fix:") || !strings.Contains(line, "pipeline's tables") || !strings.Contains(line, "cdcd snapshot") {
			t.Errorf("the warning %q names no fix (remove the table from the pipeline's tables, or request its snapshot again): %q", msg, line)
		}
	}
}
