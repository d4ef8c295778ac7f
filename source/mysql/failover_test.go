package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestStartPointAfterFailover: a committed position taken on another server resumes by GTID
// alone, after the committed transaction when it was published whole; without GTIDs it
// stops with the fix. (The position's file and offset used to be taken as this server's.)
func TestStartPointAfterFailover(t *testing.T) {
	src, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}})
	if err != nil {
		t.Fatal(err)
	}
	old := Token{Flavor: "mariadb", File: "mariadb-bin.000050", Pos: 1000, Server: "7", GTID: "0-7-101", GTIDs: "0-7-100,1-7-5"}
	whole := change.Resume{Committed: true, Pos: change.Position{Tx: txOf(50, 1000), Index: commitIndex, Resume: old.String()}}
	tok, failover, err := src.startPoint(context.Background(), nil, "mariadb", "8", whole)
	if err != nil || !failover || tok.GTIDs != "0-7-101,1-7-5" {
		t.Fatalf("whole transaction on server 7, now 8: %+v failover=%v %v; want a failover resuming after 0-7-101", tok, failover, err)
	}
	split := whole
	split.Pos.Index = 40
	if tok, failover, err = src.startPoint(context.Background(), nil, "mariadb", "8", split); err != nil || !failover || tok.GTIDs != "0-7-100,1-7-5" {
		t.Fatalf("split transaction: %+v failover=%v %v; want a failover resuming before it", tok, failover, err)
	}
	if _, failover, err = src.startPoint(context.Background(), nil, "mariadb", "7", whole); err != nil || failover {
		t.Fatalf("same server: failover=%v %v", failover, err)
	}
	noGTIDs := Token{Flavor: "mysql", File: "binlog.000050", Pos: 1000, Server: "3e11fa47-71ca-11e1-9e33-c80aa9429562"}
	_, _, err = src.startPoint(context.Background(), nil, "mysql", "4e11fa47-71ca-11e1-9e33-c80aa9429562",
		change.Resume{Committed: true, Pos: change.Position{Tx: txOf(50, 1000), Index: commitIndex, Resume: noGTIDs.String()}})
	var fe *FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "gtid_mode=ON") || !strings.Contains(err.Error(), "point the DSN back") {
		t.Fatalf("server change without GTIDs: %v; want a fatal error with the fix", err)
	}
}

// TestStreamFailoverShift: after a failover, the new server's positions follow the old
// server's committed one although its binlog coordinates are lower, and stay the same when
// the session restarts on the new server (the shift is in the token). They used to be
// compared as they were, and every change whose coordinates sorted before the old server's
// committed ones was dropped as already published.
func TestStreamFailoverShift(t *testing.T) {
	floor := txOf(50, 1000)
	run := func(rebase bool, shift uint64) []change.Item {
		st, out := testStream(t)
		st.server = "8"
		if rebase {
			st.rebase, st.floor = true, floor
		} else {
			st.shift = shift
		}
		feed(t, st,
			mariaGTIDEv(1042, 0, 8, 102), rowsEv(replication.WRITE_ROWS_EVENTv1, 1200, []any{int32(1), "a"}), xidEv(1231),
			mariaGTIDEv(1273, 0, 8, 103), rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "b"}), xidEv(1431))
		return drain(st, out)
	}
	items := run(true, 0)
	if len(items) != 4 {
		t.Fatalf("got %d items", len(items))
	}
	prev := change.Position{Tx: floor, Index: commitIndex}
	for _, it := range items {
		p := it.Event.Pos
		if it.Commit != nil {
			p = it.Commit.Pos
		}
		if p.Compare(prev) <= 0 {
			t.Fatalf("position %v after %v: the pipeline would drop it", p, prev)
		}
		prev = p
	}
	tok, err := ParseToken(items[2].Event.Pos.Resume)
	if err != nil || tok.Server != "8" || tok.Shift == 0 || tok.GTID != "0-8-103" {
		t.Fatalf("token %+v (%v): want server 8, the shift and the transaction's GTID", tok, err)
	}
	if raw := items[1].Commit.AckPosition; raw != txOf(3, 1000) {
		t.Errorf("AckPosition %x, want the server's own coordinates %x (binlog metrics)", raw, txOf(3, 1000))
	}
	again := run(false, tok.Shift)
	for i := range items {
		if items[i].Commit == nil && items[i].Event.Pos != again[i].Event.Pos {
			t.Fatalf("restart on the new server: %v, first session %v", again[i].Event.Pos, items[i].Event.Pos)
		}
	}
}

// TestStreamGTIDsTurnedOn: a MySQL session resuming a position taken before GTIDs were turned
// on reads its binlog file from the start and takes the GTID state from the file's
// PREVIOUS_GTIDS event, so the tokens it writes hold the server's whole GTID state (a state
// of only the GTIDs the session read would ask the server for every older transaction again,
// or for purged ones, at the next resume). Constructed events: MySQL is not installable here.
func TestStreamGTIDsTurnedOn(t *testing.T) {
	st, out := testStream(t)
	st.flavor, st.gset, st.rebuildGTIDs = "mysql", nil, true
	sid := []byte{0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62}
	gtid := func(end uint32, sid []byte, gno int64) *replication.BinlogEvent {
		return &replication.BinlogEvent{Header: hdr(replication.GTID_EVENT, end, 65), Event: &replication.GTIDEvent{SID: sid, GNO: gno}}
	}
	feed(t, st,
		&replication.BinlogEvent{Header: hdr(replication.PREVIOUS_GTIDS_EVENT, 200, 71),
			Event: &replication.PreviousGTIDsEvent{GTIDSets: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10"}},
		gtid(1065, make([]byte, 16), 0), rowsEv(replication.WRITE_ROWS_EVENTv1, 1200, []any{int32(1), "anonymous"}), xidEv(1231),
		gtid(1296, sid, 11), rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "b"}), xidEv(1431),
		gtid(1496, sid, 12), rowsEv(replication.WRITE_ROWS_EVENTv1, 1600, []any{int32(3), "c"}), xidEv(1631))
	var got []string
	for _, it := range drain(st, out) {
		if it.Commit == nil {
			tok, err := ParseToken(it.Event.Pos.Resume)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tok.GTIDs)
		}
	}
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562:"
	if want := []string{u + "1-10", u + "1-10", u + "1-11"}; !sameStrings(got, want) {
		t.Fatalf("resume GTID states %q, want %q", got, want)
	}
}
