package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// testStream is a stream over a captured table t(id INT PRIMARY KEY, v VARCHAR) with table id
// 7, starting in binlog file mariadb-bin.000003.
func testStream(t *testing.T) (*stream, chan []change.Item) {
	t.Helper()
	src, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}, HeartbeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	specs := []ColumnSpec{{Name: "id", Type: gomysql.MYSQL_TYPE_LONG}, {Name: "v", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true, Collation: 45}}
	tbl := &change.Table{Database: "db", Schema: "db", Name: "t", KeyColumns: []int{0}, FullIdentity: true}
	for i := range specs {
		c, err := specs[i].Column()
		if err != nil {
			t.Fatal(err)
		}
		tbl.Columns = append(tbl.Columns, c)
	}
	tbl.Columns[0].Key = true
	out := make(chan []change.Item, 16)
	gs, _ := parseGTIDs("mariadb", "0-1-10")
	st := &stream{src: src, out: out, tables: src.tables, byID: map[uint64]*tableVersion{7: {table: tbl, specs: specs}},
		flavor: "mariadb", gset: gs, lastEmit: time.Now()}
	feed(t, st, &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.ROTATE_EVENT},
		Event: &replication.RotateEvent{NextLogName: []byte("mariadb-bin.000003"), Position: 4}})
	return st, out
}

func feed(t *testing.T, st *stream, evs ...*replication.BinlogEvent) {
	t.Helper()
	for _, ev := range evs {
		if err := st.handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func hdr(typ replication.EventType, end, size uint32) *replication.EventHeader {
	return &replication.EventHeader{EventType: typ, LogPos: end, EventSize: size, Timestamp: 1700000000}
}

func gtidEv(end uint32, seq uint64) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: hdr(replication.MARIADB_GTID_EVENT, end, 42),
		Event: &replication.MariadbGTIDEvent{GTID: gomysql.MariadbGTID{DomainID: 0, ServerID: 1, SequenceNumber: seq}}}
}

func rowsEv(typ replication.EventType, end uint32, rows ...[]any) *replication.BinlogEvent {
	re := &replication.RowsEvent{TableID: 7, Rows: rows}
	return &replication.BinlogEvent{Header: hdr(typ, end, 100), Event: re}
}

func xidEv(end uint32) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: hdr(replication.XID_EVENT, end, 31), Event: &replication.XIDEvent{}}
}

func drain(st *stream, out chan []change.Item) []change.Item {
	_ = st.flush(context.Background(), true)
	var items []change.Item
	for {
		select {
		case c := <-out:
			items = append(items, c...)
		default:
			return items
		}
	}
}

// TestStreamCommitsEachTransaction: every transaction with captured rows ends in its own
// Commit right after its events. (Commits of captured transactions used to be taken for
// transactions without captured rows and held back until a heartbeat, so Kafka transactions
// did not follow source transactions.)
func TestStreamCommitsEachTransaction(t *testing.T) {
	st, out := testStream(t)
	feed(t, st,
		gtidEv(1042, 11), rowsEv(replication.WRITE_ROWS_EVENTv1, 1200, []any{int32(1), "a"}, []any{int32(2), "b"}), xidEv(1231),
		gtidEv(1273, 12), rowsEv(replication.UPDATE_ROWS_EVENTv1, 1400, []any{int32(1), "a"}, []any{int32(1), "c"}), xidEv(1431),
	)
	items := drain(st, out)
	var kinds []string
	for _, it := range items {
		if it.Commit != nil {
			kinds = append(kinds, "commit@"+it.Commit.Pos.String())
		} else {
			kinds = append(kinds, it.Event.Op.String()+"@"+it.Event.Pos.String())
		}
	}
	// Indexes are offsets in the transaction (see stream.go): rows at 1100-1000, the commit
	// past the XID's end.
	want := []string{"c@3/3E8#100", "c@3/3E8#102", "commit@3/3E8#4294967295", "u@3/4CF#69", "commit@3/4CF#4294967295"}
	if len(kinds) != len(want) {
		t.Fatalf("got %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("got %v, want %v", kinds, want)
		}
	}
	tok, err := ParseToken(items[3].Event.Pos.Resume)
	if err != nil || tok.GTIDs != "0-1-11" || tok.Pos != 1231 || tok.File != "mariadb-bin.000003" {
		t.Fatalf("second transaction's resume token %+v (%v): want the GTID set and offset before it", tok, err)
	}
}

// TestStreamKeyChangeIsDeleteAndCreate: an update that changes the primary key is a delete of
// the old key and a create of the new one, at the row's two indexes.
func TestStreamKeyChangeIsDeleteAndCreate(t *testing.T) {
	st, out := testStream(t)
	feed(t, st, gtidEv(1042, 11), rowsEv(replication.UPDATE_ROWS_EVENTv1, 1200, []any{int32(1), "a"}, []any{int32(5), "a"}), xidEv(1231))
	items := drain(st, out)
	if len(items) != 3 || items[0].Event.Op != change.OpDelete || items[1].Event.Op != change.OpCreate ||
		items[0].Event.Pos.Index != 100 || items[1].Event.Pos.Index != 101 || items[2].Commit == nil || items[2].Commit.Pos.Index != commitIndex {
		t.Fatalf("got %+v", items)
	}
}

// TestStreamUncapturedTransactionsCommitOnHeartbeat: transactions without captured rows are
// not emitted one by one; the last one's end goes out on the server's heartbeat.
func TestStreamUncapturedTransactionsCommitOnHeartbeat(t *testing.T) {
	st, out := testStream(t)
	feed(t, st, gtidEv(1042, 11), xidEv(1100), gtidEv(1142, 12), xidEv(1200))
	if items := drain(st, out); len(items) != 0 {
		t.Fatalf("got %d items before the heartbeat, want none", len(items))
	}
	feed(t, st, &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.HEARTBEAT_EVENT}, Event: &replication.GenericEvent{}})
	items := drain(st, out)
	if len(items) != 1 || items[0].Commit == nil || items[0].Commit.Pos.Tx != txOf(3, 1100) {
		t.Fatalf("got %+v, want one Commit at the second transaction", items)
	}
}

// TestStreamTruncate: TRUNCATE TABLE of a captured table (a DDL transaction of its own) is a
// truncate event followed by its Commit.
func TestStreamTruncate(t *testing.T) {
	st, out := testStream(t)
	st.tables.byName["db.t"] = st.byID[7]
	mariaGTID := gtidEv(1042, 11)
	mariaGTID.Event.(*replication.MariadbGTIDEvent).Flags = replication.BINLOG_MARIADB_FL_STANDALONE
	feed(t, st, mariaGTID, &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, 1100, 58),
		Event: &replication.QueryEvent{Schema: []byte("db"), Query: []byte("truncate table `t`")}})
	items := drain(st, out)
	if len(items) != 2 || items[0].Event.Op != change.OpTruncate || items[0].Event.Table.Name != "t" || items[1].Commit == nil {
		t.Fatalf("got %+v", items)
	}
}

// TestStreamTruncateUnseenTable: a TRUNCATE of a captured table whose rows this process has
// not seen (right after a restart) is published with the table's shape from the catalog. It
// used to be logged and dropped, so consumers kept the truncated rows.
func TestStreamTruncateUnseenTable(t *testing.T) {
	st, out := testStream(t)
	cat := st.byID[7].table
	var asked string
	st.catalog = func(_ context.Context, db, name string) (*change.Table, error) {
		asked = db + "." + name
		return cat, nil
	}
	mariaGTID := gtidEv(1042, 11)
	mariaGTID.Event.(*replication.MariadbGTIDEvent).Flags = replication.BINLOG_MARIADB_FL_STANDALONE
	feed(t, st, mariaGTID, &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, 1100, 58),
		Event: &replication.QueryEvent{Schema: []byte("db"), Query: []byte("/* app: nightly reload */ TRUNCATE t")}})
	items := drain(st, out)
	if asked != "db.t" || len(items) != 2 || items[0].Event.Op != change.OpTruncate || items[0].Event.Table.Name != "t" || items[1].Commit == nil {
		t.Fatalf("catalog asked for %q; got %+v", asked, items)
	}
}

// TestParseTruncate: the statement is read past comments, quoting and a trailing semicolon.
// A leading comment (/*app*/ TRUNCATE ...) used to hide the statement.
func TestParseTruncate(t *testing.T) {
	for _, c := range []struct{ q, want string }{
		{"TRUNCATE t", "db.t"},
		{"truncate table `t`", "db.t"},
		{"TRUNCATE TABLE db2.t;", "db2.t"},
		{"/*app*/ TRUNCATE t", "db.t"},
		{"/* a */ /* b */\n\tTRUNCATE\nTABLE `d``b`.`t 1` -- trailing\n", "d`b.t 1"},
		{"-- who\nTRUNCATE TABLE t", "db.t"},
		{"# who\nTRUNCATE t /* x */ ;", "db.t"},
		{"TRUNCATE TABLE \"t\"", "db.t"},
		{"TRUNCATE TABLE t NOWAIT", "db.t"},
		{"TRUNCATE TABLE t WAIT 5", "db.t"},
		{"TRUNCATE `db` . `t`", "db.t"},
		{"TRUNCATE other", "db.other"},
		{"ALTER TABLE t ADD c INT", ""},
		{"/* TRUNCATE t */ DROP TABLE t", ""},
		{"TRUNCATE", ""},
		{"TRUNCATE TABLE", ""},
		{"TRUNCATE TABLE t, u", ""},
		{"TRUNCATETABLE t", ""},
		{"TRUNCATE TABLE `unterminated", ""},
	} {
		db, name, ok := parseTruncate(c.q, "db")
		got := ""
		if ok {
			got = db + "." + name
		}
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.q, got, c.want)
		}
	}
	if _, _, ok := parseTruncate("TRUNCATE t", ""); ok {
		t.Errorf("an unqualified table without a default database was taken")
	}
}
