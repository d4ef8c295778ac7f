package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// Unit tests of the stream state machine: pgoutput messages built as bytes go through
// stream.handle, and the Items it emits are checked. No server is involved; built-in types
// need no catalog, and the primary key of REPLICA IDENTITY FULL tables comes from a stub.

const (
	oidInt4 = 23
	oidText = 25
)

// pgmsg builds pgoutput messages.
type pgmsg struct{ b []byte }

func msg(typ byte) *pgmsg            { return &pgmsg{b: []byte{typ}} }
func (m *pgmsg) u8(v byte) *pgmsg    { m.b = append(m.b, v); return m }
func (m *pgmsg) u16(v uint16) *pgmsg { m.b = binary.BigEndian.AppendUint16(m.b, v); return m }
func (m *pgmsg) u32(v uint32) *pgmsg { m.b = binary.BigEndian.AppendUint32(m.b, v); return m }
func (m *pgmsg) u64(v uint64) *pgmsg { m.b = binary.BigEndian.AppendUint64(m.b, v); return m }
func (m *pgmsg) str(s string) *pgmsg { m.b = append(append(m.b, s...), 0); return m }
func (m *pgmsg) xid(streamed uint32) *pgmsg {
	if streamed != 0 {
		m.u32(streamed)
	}
	return m
}

// col is a tuple column: nil is NULL, toast is an unchanged TOAST value, else text.
type col = *string

var toast = new(string)

func v(s string) col { return &s }

func (m *pgmsg) tuple(cols ...col) *pgmsg {
	m.u16(uint16(len(cols)))
	for _, c := range cols {
		switch {
		case c == nil:
			m.u8('n')
		case c == toast:
			m.u8('u')
		default:
			m.u8('t').u32(uint32(len(*c)))
			m.b = append(m.b, *c...)
		}
	}
	return m
}

type relCol struct {
	name string
	typ  uint32
	key  bool
}

// relationMessage builds a Relation message; xid is non-zero inside a streamed transaction.
func relationMessage(xid, id uint32, schema, name string, identity byte, cols ...relCol) []byte {
	m := msg('R').xid(xid).u32(id).str(schema).str(name).u8(identity).u16(uint16(len(cols)))
	for _, c := range cols {
		var flags byte
		if c.key {
			flags = 1
		}
		m.u8(flags).str(c.name).u32(c.typ).u32(0xFFFFFFFF)
	}
	return m.b
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pgMicros(t time.Time) uint64 { return uint64(t.Sub(pgEpoch).Microseconds()) }

func beginMessage(finalLSN uint64, xid uint32) []byte {
	return msg('B').u64(finalLSN).u64(pgMicros(t0)).u32(xid).b
}

func commitMessage(commitLSN, endLSN uint64) []byte {
	return msg('C').u8(0).u64(commitLSN).u64(endLSN).u64(pgMicros(t0)).b
}

func insertMessage(xid, rel uint32, cols ...col) []byte {
	return msg('I').xid(xid).u32(rel).u8('N').tuple(cols...).b
}

// updateMessage: oldKind 0 sends no old tuple.
func updateMessage(xid, rel uint32, oldKind byte, old []col, cols ...col) []byte {
	m := msg('U').xid(xid).u32(rel)
	if oldKind != 0 {
		m.u8(oldKind).tuple(old...)
	}
	return m.u8('N').tuple(cols...).b
}

func deleteMessage(xid, rel uint32, oldKind byte, old ...col) []byte {
	return msg('D').xid(xid).u32(rel).u8(oldKind).tuple(old...).b
}

func truncateMessage(xid uint32, rels ...uint32) []byte {
	m := msg('T').xid(xid).u32(uint32(len(rels))).u8(0)
	for _, r := range rels {
		m.u32(r)
	}
	return m.b
}

func streamStart(xid uint32) []byte { return msg('S').u32(xid).u8(1).b }
func streamStop() []byte            { return msg('E').b }
func streamAbort(xid, sub uint32) []byte {
	return msg('A').u32(xid).u32(sub).b
}
func streamCommitMessage(xid uint32, commitLSN, endLSN uint64) []byte {
	return msg('c').u32(xid).u8(0).u64(commitLSN).u64(endLSN).u64(pgMicros(t0)).b
}

// testStream is a stream without a server; its chunk collects what it emits. Nothing receives
// from its out channel, so chunks are only handed over when full, which no test here reaches.
func testStream(t *testing.T, tables []string, pk map[uint32][]string, log *slog.Logger) *stream {
	t.Helper()
	src := New(Config{Pipeline: "p", Slot: "s", Tables: tables, SpillDir: t.TempDir(), TxMemoryLimit: 1 << 20, Log: log})
	rels := newRelations("db", tables, log)
	rels.primaryKey = func(_ context.Context, relid uint32) ([]string, error) {
		k, ok := pk[relid]
		if !ok {
			return nil, fmt.Errorf("no primary key stub for relation %d", relid)
		}
		return k, nil
	}
	st := &stream{src: src, out: make(chan []change.Item), rels: rels, bufs: newStreamBuffers(src.cfg.TxMemoryLimit, src.cfg.SpillDir)}
	st.chunk = change.GetChunk()
	t.Cleanup(st.bufs.closeAll)
	return st
}

func (st *stream) feed(t *testing.T, msgs ...[]byte) {
	t.Helper()
	for _, m := range msgs {
		if err := st.handle(context.Background(), m, false); err != nil {
			t.Fatalf("handling %q: %v", m[0], err)
		}
	}
}

// summary renders emitted items as "op table idx [before] [after]" and "commit idx".
func summary(items []change.Item) []string {
	var out []string
	for _, it := range items {
		if c := it.Commit; c != nil {
			out = append(out, fmt.Sprintf("commit %X#%d ack %X", c.Pos.Tx, c.Pos.Index, c.AckPosition))
			continue
		}
		ev := it.Event
		s := fmt.Sprintf("%s %s %X#%d", ev.Op, ev.Table.Name, ev.Pos.Tx, ev.Pos.Index)
		if ev.Before != nil {
			s += " before=" + values(ev.Before)
		}
		if ev.After != nil {
			s += " after=" + values(ev.After)
		}
		out = append(out, s)
	}
	return out
}

func values(vs []change.Value) string {
	var parts []string
	for _, v := range vs {
		switch v.State {
		case change.Null:
			parts = append(parts, "NULL")
		case change.Unchanged:
			parts = append(parts, "UNCHANGED")
		case change.Absent:
			parts = append(parts, "-")
		case change.Present:
			if v.Str != "" {
				parts = append(parts, v.Str)
			} else {
				parts = append(parts, fmt.Sprint(v.Int))
			}
		default:
			parts = append(parts, fmt.Sprintf("state%d", v.State))
		}
	}
	return "(" + strings.Join(parts, ",") + ")"
}

func wantItems(t *testing.T, st *stream, want ...string) {
	t.Helper()
	got := summary(st.chunk)
	if !slices.Equal(got, want) {
		t.Fatalf("emitted:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var (
	colID  = relCol{"id", oidInt4, true}
	colBig = relCol{"big", oidText, false}
	colN   = relCol{"n", oidInt4, false}
)

// An update under REPLICA IDENTITY FULL carries the complete old row: an unchanged TOAST value
// is taken from it. Under DEFAULT it is marked Unchanged — never NULL.
func TestStreamToastFill(t *testing.T) {
	st := testStream(t, []string{"public.full", "public.dflt"}, map[uint32][]string{1: {"id"}}, nil)
	st.feed(t,
		beginMessage(0x100, 7),
		relationMessage(0, 1, "public", "full", 'f', relCol{"id", oidInt4, true}, relCol{"big", oidText, true}),
		relationMessage(0, 2, "public", "dflt", 'd', colID, colBig),
		updateMessage(0, 1, 'O', []col{v("1"), v("large")}, v("1"), toast),
		updateMessage(0, 2, 0, nil, v("1"), toast),
		commitMessage(0x100, 0x110),
	)
	wantItems(t, st,
		"u full 100#0 before=(1,large) after=(1,large)",
		"u dflt 100#2 after=(1,UNCHANGED)",
		"commit 100#4 ack 110")
}

// A primary-key change is a delete of the old key followed by a create of the new one, at the
// two indexes the row change owns.
func TestStreamKeyChange(t *testing.T) {
	st := testStream(t, []string{"public.k"}, nil, nil)
	st.feed(t,
		beginMessage(0x200, 8),
		relationMessage(0, 3, "public", "k", 'd', colID, colN),
		updateMessage(0, 3, 'K', []col{v("1"), nil}, v("2"), v("5")),
		updateMessage(0, 3, 0, nil, v("2"), v("6")),
		commitMessage(0x200, 0x210),
	)
	wantItems(t, st,
		"d k 200#0 before=(1,-)",
		"c k 200#1 after=(2,5)",
		"u k 200#2 after=(2,6)",
		"commit 200#4 ack 210")
}

// A streamed transaction is buffered and emitted at its stream commit, in order, with its
// Relation messages applied as it saw them; the changes of an aborted subtransaction are
// never emitted (nor counted in the index).
func TestStreamStreamedCommitAndSubAbort(t *testing.T) {
	const xid, sub = 20, 21
	st := testStream(t, []string{"public.s"}, nil, nil)
	st.feed(t,
		streamStart(xid),
		relationMessage(xid, 4, "public", "s", 'd', colID, colN),
		insertMessage(xid, 4, v("1"), v("10")),
		insertMessage(sub, 4, v("2"), v("20")),
		streamStop(),
		// a small transaction commits while the big one is open
		beginMessage(0x300, 30),
		relationMessage(0, 4, "public", "s", 'd', colID, colN),
		insertMessage(0, 4, v("9"), v("90")),
		commitMessage(0x300, 0x310),
		streamStart(xid),
		insertMessage(xid, 4, v("3"), v("30")),
		streamStop(),
		streamAbort(xid, sub),
	)
	wantItems(t, st, "c s 300#0 after=(9,90)", "commit 300#2 ack 310")
	if len(st.bufs.byXid) != 1 {
		t.Fatal("the streamed transaction is not buffered")
	}
	st.feed(t, streamCommitMessage(xid, 0x400, 0x410))
	wantItems(t, st,
		"c s 300#0 after=(9,90)", "commit 300#2 ack 310",
		"c s 400#0 after=(1,10)",
		"c s 400#2 after=(3,30)",
		"commit 400#4 ack 410")
	if len(st.bufs.byXid) != 0 {
		t.Fatal("the committed streamed transaction is still buffered")
	}
}

// An aborted streamed transaction emits nothing and leaves nothing buffered.
func TestStreamStreamedAbort(t *testing.T) {
	const xid = 40
	st := testStream(t, []string{"public.s"}, nil, nil)
	st.feed(t,
		streamStart(xid),
		relationMessage(xid, 4, "public", "s", 'd', colID, colN),
		insertMessage(xid, 4, v("1"), v("10")),
		streamStop(),
		streamAbort(xid, xid),
	)
	wantItems(t, st)
	if len(st.bufs.byXid) != 0 {
		t.Fatal("the aborted transaction is still buffered")
	}
}

// The in-transaction index depends on the WAL only: every row change the server sends counts,
// captured or not, so changing the captured tables between a partial publish and its replay
// does not shift the indexes of the events that remain captured.
func TestStreamIndexStableAcrossCapturedTables(t *testing.T) {
	tx := [][]byte{
		beginMessage(0x500, 50),
		relationMessage(0, 5, "public", "a", 'd', colID, colN),
		relationMessage(0, 6, "public", "b", 'd', colID, colN),
		insertMessage(0, 5, v("1"), v("1")),
		insertMessage(0, 6, v("1"), v("1")),
		updateMessage(0, 6, 'K', []col{v("1"), nil}, v("2"), v("1")), // a key change in b
		truncateMessage(0, 6),
		insertMessage(0, 5, v("2"), v("2")),
		commitMessage(0x500, 0x510),
	}
	indexes := func(tables ...string) map[string]uint32 {
		st := testStream(t, tables, nil, nil)
		st.feed(t, tx...)
		out := map[string]uint32{}
		for _, it := range st.chunk {
			if it.Commit != nil {
				out["commit"] = it.Commit.Pos.Index
			} else if it.Event.Table.Name == "a" {
				out[values(it.Event.After)] = it.Event.Pos.Index
			}
		}
		return out
	}
	both, onlyA := indexes("public.a", "public.b"), indexes("public.a")
	if len(both) != 3 || fmt.Sprint(both) != fmt.Sprint(onlyA) {
		t.Fatalf("indexes of public.a's events differ with public.b captured (%v) and not (%v)", both, onlyA)
	}
}

// A table's shape comes from the Relation message alone: key columns are those it flags,
// every other column is nullable; under REPLICA IDENTITY FULL the key is the primary key,
// read once per relation id and kept (a later catalog change is only warned about).
func TestStreamShapeFromRelationMessage(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	pk := map[uint32][]string{8: {"id"}}
	st := testStream(t, []string{"public.d", "public.f"}, pk, log)
	st.feed(t,
		relationMessage(0, 7, "public", "d", 'd', colID, colN),
		relationMessage(0, 8, "public", "f", 'f', relCol{"id", oidInt4, true}, relCol{"n", oidInt4, true}),
	)
	shape := func(id uint32) string {
		tb := st.rels.byID[id].table
		var parts []string
		for _, c := range tb.Columns {
			parts = append(parts, fmt.Sprintf("%s key=%v null=%v", c.Name, c.Key, c.Nullable))
		}
		return fmt.Sprintf("v%d %v [%s]", tb.Version, tb.KeyColumns, strings.Join(parts, "; "))
	}
	if got, want := shape(7), "v1 [0] [id key=true null=false; n key=false null=true]"; got != want {
		t.Fatalf("DEFAULT table: %s, want %s", got, want)
	}
	if got, want := shape(8), "v1 [0] [id key=true null=false; n key=false null=true]"; got != want {
		t.Fatalf("FULL table: %s, want %s", got, want)
	}
	// The catalog's key changes; a new Relation message (a column added) keeps the key.
	pk[8] = []string{"n"}
	st.feed(t, relationMessage(0, 8, "public", "f", 'f', relCol{"id", oidInt4, true}, relCol{"n", oidInt4, true}, relCol{"m", oidInt4, true}))
	if got, want := shape(8), "v2 [0] [id key=true null=false; n key=false null=true; m key=false null=true]"; got != want {
		t.Fatalf("FULL table after DDL: %s, want %s", got, want)
	}
	if !strings.Contains(logs.String(), "primary key of a REPLICA IDENTITY FULL table changed") {
		t.Fatalf("no warning about the changed key:\n%s", logs.String())
	}
	// The same Relation message again keeps the same *Table (the encoder's caches stay warm).
	before := st.rels.byID[7].table
	st.feed(t, relationMessage(0, 7, "public", "d", 'd', colID, colN))
	if st.rels.byID[7].table != before {
		t.Fatal("an unchanged Relation message made a new table version")
	}
}

// The status update confirms only what the pipeline acknowledged: never the walsender's sent
// position directly, idle or not, and never going back.
func TestStreamStatusLSN(t *testing.T) {
	st := testStream(t, []string{"public.a"}, nil, nil)
	st.src.acked.Store(0x50)
	st.sentLSN = 0x80
	if got := st.statusLSN(); got != 0x50 {
		t.Fatalf("idle at session start: status %X, want the acknowledged 50, not the sent position", got)
	}
	st.feed(t, beginMessage(0x600, 60), relationMessage(0, 5, "public", "a", 'd', colID, colN), insertMessage(0, 5, v("1"), v("1")))
	st.sentLSN = 0x700
	if got := st.statusLSN(); got != 0x50 {
		t.Fatalf("inside a transaction: status %X, want 50", got)
	}
	st.feed(t, commitMessage(0x600, 0x610))
	st.chunk = st.chunk[:0] // handed to the pipeline
	if got := st.statusLSN(); got != 0x50 {
		t.Fatalf("commit not yet acknowledged: status %X, want 50", got)
	}
	st.src.Ack(0x610)
	if got := st.statusLSN(); got != 0x610 {
		t.Fatalf("commit acknowledged: status %X, want 610", got)
	}
	st.reported = 0x700
	if got := st.statusLSN(); got != 0x700 {
		t.Fatalf("status %X went back from the reported 700", got)
	}
}

// Regression: an idle stream confirmed the walsender's sent position straight to the slot, a
// position no offsets record held, so after a restart the slot was ahead of Kafka and the
// pipeline refused to go on (a false gap). Now an idle stream emits a Commit without events
// at the sent position S, once per S, positioned between the transactions before and after;
// the status update confirms S only once the pipeline acknowledged it.
func TestStreamIdleCommit(t *testing.T) {
	ctx := context.Background()
	st := testStream(t, []string{"public.a"}, nil, nil)
	// keepalive answers at once when the pipeline acknowledged more than was reported; the
	// test has no server, so it calls keepalive only with nothing new to report.
	st.src.acked.Store(0x50)
	st.reported = 0x50
	handOver := func() { st.chunk = st.chunk[:0] }
	nextInterval := func() time.Time { return st.idleAt.Add(st.src.cfg.StatusInterval) }

	if err := st.keepalive(ctx, 0x80, false); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st, "commit 7F#0 ack 80")
	if c := st.chunk[0].Commit; c.Time.IsZero() {
		t.Fatal("the idle Commit has no time")
	}
	if got := st.statusLSN(); got != 0x50 {
		t.Fatalf("idle Commit not yet acknowledged: status %X, want 50", got)
	}
	// The same S again, before and after the hand-over, even when the server asks for a
	// reply or the status interval passed: nothing more.
	if err := st.keepalive(ctx, 0x80, false); err != nil {
		t.Fatal(err)
	}
	handOver()
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	// A new S while the idle Commit is unacknowledged: the stream is not idle.
	st.sentLSN = 0x90
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	st.src.Ack(0x80)
	if got := st.statusLSN(); got != 0x80 {
		t.Fatalf("idle Commit acknowledged: status %X, want 80", got)
	}
	// Acknowledged and a new S: within the status interval only if the server asks for a
	// reply (a fast shutdown waits for it).
	if err := st.idleCommit(ctx, st.idleAt, false); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	if err := st.idleCommit(ctx, st.idleAt, true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st, "commit 8F#0 ack 90")
	handOver()
	st.src.Ack(0x90)

	// Not while a transaction is open, nor before its Commit is acknowledged; then after it.
	st.reported = 0x90
	st.feed(t, beginMessage(0x600, 60), relationMessage(0, 5, "public", "a", 'd', colID, colN), insertMessage(0, 5, v("1"), v("1")))
	if err := st.keepalive(ctx, 0x5F0, false); err != nil {
		t.Fatal(err)
	}
	st.feed(t, commitMessage(0x600, 0x610))
	handOver()
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	st.src.Ack(0x610)
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil { // 5F0 is behind 610
		t.Fatal(err)
	}
	wantItems(t, st)
	st.sentLSN = 0x700
	if err := st.idleCommit(ctx, nextInterval(), false); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st, "commit 6FF#0 ack 700")
	handOver()
	st.src.Ack(0x700)

	// A streamed transaction is buffered: not idle.
	st.feed(t, streamStart(70), insertMessage(70, 5, v("2"), v("2")), streamStop())
	st.sentLSN = 0x800
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	st.feed(t, streamAbort(70, 70))

	// Never at or before the resume position: a transaction published in part comes again.
	st.resumeTx = 0x900
	st.sentLSN = 0x901
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st)
	st.sentLSN = 0x902
	if err := st.idleCommit(ctx, nextInterval(), true); err != nil {
		t.Fatal(err)
	}
	wantItems(t, st, "commit 901#0 ack 902")
}

// A transaction is handed over at its commit when the pipeline can take the chunk at once,
// without waiting chunkLinger for more to join it; while the pipeline is busy (the hand-off is
// full) the next transactions join the chunk instead, and the stream does not block.
func TestStreamHandsACommittedTransactionOverAtOnce(t *testing.T) {
	st := testStream(t, []string{"public.a"}, map[uint32][]string{1: {"id"}}, nil)
	out := make(chan []change.Item, 1)
	st.out = out
	st.feed(t,
		relationMessage(0, 1, "public", "a", 'd', colID, colN),
		beginMessage(0x100, 7), insertMessage(0, 1, v("1"), v("10")), commitMessage(0x100, 0x110))
	select {
	case got := <-out:
		if want := []string{"c a 100#0 after=(1,10)", "commit 100#2 ack 110"}; !slices.Equal(summary(got), want) {
			t.Fatalf("handed over %v, want %v", summary(got), want)
		}
	default:
		t.Fatalf("the committed transaction was not handed over; the chunk holds %v", summary(st.chunk))
	}
	if len(st.chunk) != 0 || st.pendingCommit {
		t.Fatalf("after the hand-over the chunk holds %v (pending %v)", summary(st.chunk), st.pendingCommit)
	}
	// The pipeline is busy: the hand-off holds a chunk nobody has taken yet.
	out <- []change.Item{}
	st.feed(t,
		beginMessage(0x200, 8), insertMessage(0, 1, v("2"), v("20")), commitMessage(0x200, 0x210),
		beginMessage(0x300, 9), insertMessage(0, 1, v("3"), v("30")), commitMessage(0x300, 0x310))
	wantItems(t, st, "c a 200#0 after=(2,20)", "commit 200#2 ack 210", "c a 300#0 after=(3,30)", "commit 300#2 ack 310")
	if !st.pendingCommit {
		t.Fatal("the chunk waiting for the busy pipeline is not marked pending: it would wait for more than chunkLinger")
	}
}
