package mysql

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/replication"
)

// rowsEvSkipping is a rows event whose images lack columns, as go-mysql decodes a session's
// binlog_row_image=MINIMAL or NOBLOB: full-length rows with the unsent columns nil, listed in
// SkippedColumns per image.
func rowsEvSkipping(typ replication.EventType, end uint32, rows [][]any, skipped [][]int) *replication.BinlogEvent {
	re := &replication.RowsEvent{TableID: 7, Rows: rows, SkippedColumns: skipped}
	return &replication.BinlogEvent{Header: hdr(typ, end, 100), Event: re}
}

// TestStreamPartialRowImage: a row image without some columns (a session with
// binlog_row_image MINIMAL or NOBLOB; the global FULL does not bind sessions) never becomes
// NULL values. An update's after image takes unsent columns from its before image where that
// has them; a column neither image has makes the change a poison record naming the cause and
// the fix; unsent old values are Absent (the record's before is then null). Those columns
// used to be published as NULL.
func TestStreamPartialRowImage(t *testing.T) {
	st, out := testStream(t)
	feed(t, st,
		gtidEv(1042, 11),
		// MINIMAL insert of (1, DEFAULT): v not sent
		rowsEvSkipping(replication.WRITE_ROWS_EVENTv1, 1100, [][]any{{int32(1), nil}}, [][]int{{1}}),
		// MINIMAL update SET v='x' WHERE id=1: before has the key only, after v only
		rowsEvSkipping(replication.UPDATE_ROWS_EVENTv1, 1200, [][]any{{int32(1), nil}, {nil, "x"}}, [][]int{{1}, {0}}),
		// MINIMAL update SET id=2: after lacks v, which no image has
		rowsEvSkipping(replication.UPDATE_ROWS_EVENTv1, 1300, [][]any{{int32(1), nil}, {int32(2), nil}}, [][]int{{1}, {1}}),
		// MINIMAL delete: before has the key only
		rowsEvSkipping(replication.DELETE_ROWS_EVENTv1, 1400, [][]any{{int32(2), nil}}, [][]int{{1}}),
		// FULL rows (SkippedColumns empty per image)
		rowsEvSkipping(replication.WRITE_ROWS_EVENTv1, 1500, [][]any{{int32(3), nil}}, [][]int{{}}),
		xidEv(1531))
	var evs []change.Event
	for _, it := range drain(st, out) {
		if it.Commit == nil {
			evs = append(evs, it.Event)
		}
	}
	if len(evs) != 6 {
		t.Fatalf("got %d events, want 6 (create, update, delete+create for the key change, delete, create)", len(evs))
	}
	poison := func(ev change.Event) bool {
		return ev.Err != nil && strings.Contains(ev.Err.Error(), "binlog_row_image") && strings.Contains(ev.Err.Error(), "FULL")
	}
	// insert without v: poison, v Absent (never NULL)
	if !poison(evs[0]) || evs[0].After[1].State != change.Absent {
		t.Errorf("MINIMAL insert: err %v, v %+v; want a poison record naming binlog_row_image, v Absent", evs[0].Err, evs[0].After[1])
	}
	// update SET v: after gets the key from before; complete, so not poison; before lacks v
	if evs[1].Err != nil || evs[1].After[0].Int != 1 || evs[1].After[1].Str != "x" || evs[1].Before[1].State != change.Absent {
		t.Errorf("MINIMAL update of v: err %v, after %+v, before %+v; want after (1,'x') complete and before's v Absent", evs[1].Err, evs[1].After, evs[1].Before)
	}
	// update SET id=2: v is in neither image: poison
	if !poison(evs[2]) && !poison(evs[3]) {
		t.Errorf("MINIMAL key update: errs %v / %v; want a poison record", evs[2].Err, evs[3].Err)
	}
	// delete: before's v Absent, not poison (the record's before is null, its key is whole)
	last := evs[4]
	if last.Op != change.OpDelete || last.Err != nil || last.Before[1].State != change.Absent || last.Before[0].Int != 2 {
		t.Errorf("MINIMAL delete: %+v; want a delete with key 2 and v Absent", last)
	}
	if evs[5].Err != nil || evs[5].After[1].State != change.Null {
		t.Errorf("FULL insert with NULL v: %+v", evs[5])
	}
}
