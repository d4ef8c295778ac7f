package mysql

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/replication"
)

func TestDMLTables(t *testing.T) {
	for _, c := range []struct {
		q    string
		op   byte
		want string
	}{
		{"INSERT INTO t VALUES (1)", 'c', "db.t"},
		{"/*app*/ insert low_priority ignore into `db2`.`t` (a) select * from other", 'c', "db2.t"},
		{"REPLACE t SET a = 1", 'c', "db.t"},
		{"LOAD DATA LOCAL INFILE '/tmp/x INTO TABLE y' INTO TABLE t", 'c', "db.t"},
		{"UPDATE t SET v = 'a,b' WHERE id = 1", 'u', "db.t"},
		{"UPDATE IGNORE t AS x JOIN db3.u ON x.id = u.id, w SET x.v = 1", 'u', "db.t db3.u db.w"},
		{"DELETE FROM t WHERE id = 1", 'd', "db.t"},
		{"DELETE QUICK FROM t LIMIT 1", 'd', "db.t"},
		{"DELETE a FROM t a JOIN u b ON a.id = b.id", 'd', "db.a db.t db.u"},
		{"DELETE FROM a USING t AS a JOIN u", 'd', "db.a db.t db.u"},
		{"SELECT 1", 0, ""},
		{"CREATE TABLE t (id INT)", 0, ""},
	} {
		op, tables, ok := dmlTables(c.q, "db")
		if got := strings.Join(tables, " "); op != c.op || ok != (c.op != 0) || got != c.want {
			t.Errorf("%q: got %q %q %v, want %q %q", c.q, op, got, ok, c.op, c.want)
		}
	}
}

// TestStreamStatementOnCapturedTable: a statement-format change (a session with
// binlog_format STATEMENT or MIXED) of a captured table carries no rows; it becomes a poison
// record that names binlog_format and the fix, so on_error decides between stopping and a
// dead letter (counted and alerted on). Statements on other tables are ignored. Such
// changes used to be skipped without a word.
func TestStreamStatementOnCapturedTable(t *testing.T) {
	st, out := testStream(t)
	st.tables.byName["db.t"] = st.byID[7]
	begin := gtidEv(1042, 11) // MariaDB "BEGIN GTID": not standalone
	feed(t, st, begin,
		queryEv(1100, "UPDATE other SET v = 1"),
		queryEv(1200, "UPDATE t SET v = 'x' WHERE id > 5"),
		xidEv(1231))
	items := drain(st, out)
	if len(items) != 2 || items[1].Commit == nil {
		t.Fatalf("got %+v, want one poison event and the commit", items)
	}
	ev := items[0].Event
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), "binlog_format") || !strings.Contains(ev.Err.Error(), "ROW") ||
		ev.Table == nil || ev.Table.Name != "t" || ev.Op != change.OpUpdate {
		t.Fatalf("got %+v (err %v), want a poison update of db.t naming binlog_format=ROW", ev, ev.Err)
	}
}

// TestStreamRollbackToSavepoint: ROLLBACK TO SAVEPOINT inside a transaction does not end it
// (it used to be taken for the transaction's ROLLBACK, splitting it in two).
func TestStreamRollbackToSavepoint(t *testing.T) {
	st, out := testStream(t)
	feed(t, st, gtidEv(1042, 11),
		rowsEv(replication.WRITE_ROWS_EVENTv1, 1100, []any{int32(1), "a"}),
		queryEv(1150, "SAVEPOINT `s1`"),
		queryEv(1200, "ROLLBACK TO `s1`"),
		rowsEv(replication.WRITE_ROWS_EVENTv1, 1300, []any{int32(2), "b"}),
		xidEv(1331))
	got := describeItems(drain(st, out))
	if want := []string{"c@3/3E8#0", "c@3/3E8#200", "commit@3/3E8#4294967295"}; !sameStrings(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
