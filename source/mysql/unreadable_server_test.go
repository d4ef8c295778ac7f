package mysql

import (
	"errors"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/snapshot"
)

// TestSnapshotUnreadableColumnIsPoison: a column the snapshot cannot decode (a big5 column
// here) used to fail the table's Describe with an error the pipeline retried forever (phase
// retrying, even with on_error: dlq). Its rows are now poison records naming the column and
// the fix, as the stream's changes of the table are (on_error decides: stop or dead-letter),
// with the other columns and the key decoded; the snapshot goes on.
func TestSnapshotUnreadableColumnIsPoison(t *testing.T) {
	ctx, src, _, db := serverDB(t, 2, 1<<20,
		"CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10) CHARACTER SET big5, n INT)",
		"INSERT INTO t VALUES (1, 'a', 10), (2, NULL, 20), (3, 'c', 30)")
	w, err := src.openSnapshotWorker(ctx, ConsistencyBinlogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	task := &snapshot.Task{Table: db + ".t"}
	if _, _, err := w.Describe(ctx, task); err != nil {
		t.Fatalf("Describe: %v (an error here is retried forever by the pipeline)", err)
	}
	rd, err := w.Read(ctx, task, snapshot.Chunk{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Rows) != 3 {
		t.Fatalf("want 3 rows, got %d", len(rd.Rows))
	}
	for i, r := range rd.Rows {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "column name") || !strings.Contains(r.Err.Error(), "fix:") {
			t.Errorf("row %d: want a poison record naming column name and the fix, got err %v", i, r.Err)
		}
		if r.Key == "" || r.Vals[0].State != change.Present || r.Vals[0].Int != int64(i+1) || r.Vals[2].Int != int64(10*(i+1)) {
			t.Errorf("row %d: the readable columns and the key must be decoded: %+v", i, r.Vals)
		}
	}
	if s := rd.Rows[0].Vals[1].State; s != change.Undecodable {
		t.Errorf("the unreadable value: want Undecodable, got state %v", s)
	}
	if s := rd.Rows[1].Vals[1].State; s != change.Null {
		t.Errorf("a NULL of the unreadable column: want Null, got state %v", s)
	}
}

// TestSnapshotUnreadableKeyIsFatal: a key column the snapshot cannot decode cannot chunk the
// table: the error is fatal for the pipeline (fails with the fix), never retried.
func TestSnapshotUnreadableKeyIsFatal(t *testing.T) {
	ctx, src, _, db := serverDB(t, 2, 1<<20,
		"CREATE TABLE t (k VARCHAR(10) CHARACTER SET big5 PRIMARY KEY, n INT)",
		"INSERT INTO t VALUES ('a', 1)")
	w, err := src.openSnapshotWorker(ctx, ConsistencyBinlogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _, err = w.Describe(ctx, &snapshot.Task{Table: db + ".t"})
	var f interface{ Fatal() bool }
	if err == nil || !errors.As(err, &f) || !f.Fatal() || !strings.Contains(err.Error(), "column k") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("want a fatal error naming key column k and the fix, got %v", err)
	}
}
