package mysql

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestStreamIndexIndependentOfTableList: a row change's index in its transaction does not
// depend on which other tables are captured, so a split transaction resumed after the table
// list changed drops exactly what was published. The index used to count the changes of
// captured tables only: capturing one more table shifted every later index of the
// transaction, and the resumed pipeline dropped rows it had never published.
func TestStreamIndexIndependentOfTableList(t *testing.T) {
	indexes := func(captureOther bool) []string {
		st, out := testStream(t)
		if captureOther {
			other := *st.byID[7]
			tbl := *other.table
			tbl.Name = "other"
			other.table = &tbl
			st.byID[8] = &other
		}
		otherRows := &replication.BinlogEvent{Header: hdr(replication.WRITE_ROWS_EVENTv1, 1200, 100),
			Event: &replication.RowsEvent{TableID: 8, Rows: [][]any{{int32(1), "x"}, {int32(2), "y"}, {int32(3), "z"}}}}
		feed(t, st, gtidEv(1042, 11),
			rowsEv(replication.WRITE_ROWS_EVENTv1, 1100, []any{int32(1), "a"}),
			otherRows,
			rowsEv(replication.UPDATE_ROWS_EVENTv1, 1300, []any{int32(1), "a"}, []any{int32(1), "b"}, []any{int32(2), "a"}, []any{int32(2), "b"}),
			xidEv(1331))
		var got []string
		for _, it := range drain(st, out) {
			if it.Commit != nil {
				got = append(got, "commit@"+it.Commit.Pos.String())
			} else if it.Event.Table.Name == "t" {
				got = append(got, it.Event.Op.String()+"@"+it.Event.Pos.String())
			}
		}
		return got
	}
	a, b := indexes(false), indexes(true)
	if !sameStrings(a, b) {
		t.Fatalf("indexes of db.t's changes with db.other not captured %v, captured %v: want the same", a, b)
	}
}

// TestStreamIndexesIncrease: indexes are byte offsets in the transaction, increasing through
// its events, snapshot-free Commit last, and a keyless table's rows take one index each.
func TestStreamIndexesIncrease(t *testing.T) {
	st, out := testStream(t)
	keyless := *st.byID[7]
	tbl := *keyless.table
	tbl.Name, tbl.KeyColumns = "nokey", nil
	keyless.table = &tbl
	st.byID[9] = &keyless
	many := make([][]any, 40) // more rows than the event has bytes left over
	for i := range many {
		many[i] = []any{int32(i), nil}
	}
	feed(t, st, gtidEv(1042, 11),
		rowsEv(replication.WRITE_ROWS_EVENTv1, 1100, []any{int32(1), "a"}, []any{int32(2), "b"}),
		&replication.BinlogEvent{Header: hdr(replication.WRITE_ROWS_EVENTv1, 1200, 100), Event: &replication.RowsEvent{TableID: 9, Rows: many}},
		&replication.BinlogEvent{Header: hdr(replication.WRITE_ROWS_EVENTv1, 1230, 30), Event: &replication.RowsEvent{TableID: 9, Rows: many}},
		xidEv(1261))
	var last change.Position
	n := 0
	for _, it := range drain(st, out) {
		p := it.Event.Pos
		if it.Commit != nil {
			p = it.Commit.Pos
		}
		if n > 0 && p.Compare(last) <= 0 {
			t.Fatalf("position %v after %v", p, last)
		}
		last, n = p, n+1
	}
	if n != 83 {
		t.Fatalf("got %d items, want 82 changes and a commit", n)
	}
	if last.Index < 1261-1000 {
		t.Errorf("commit index %d, want at least the transaction's length %d", last.Index, 1261-1000)
	}
}
