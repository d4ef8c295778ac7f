package mysql

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Recorded shapes (MariaDB 10.11, SHOW BINLOG EVENTS) of an XA transaction:
//
//	Gtid       XA START X'6131',X'',1 GTID 0-7-3   (flag FL_PREPARED_XA)
//	Write_rows ...
//	Query      XA END X'6131',X'',1
//	XA_prepare XA PREPARE X'6131',X'',1
//	...
//	Gtid       GTID 0-7-4                          (flag FL_COMPLETED_XA)
//	Query      XA COMMIT X'6131',X'',1             (or XA ROLLBACK)
//
// MySQL 8 logs the same groups, with a Query "XA START X'6131',X'',1" after the GTID instead
// of the flag, and an XA_prepare whose one_phase byte is set for XA COMMIT ... ONE PHASE.

const mariaFlCompletedXA = 0x80

func mariaXAGTIDEv(end uint32, seq uint64, flags byte) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: hdr(replication.MARIADB_GTID_EVENT, end, 46),
		Event: &replication.MariadbGTIDEvent{GTID: gomysql.MariadbGTID{DomainID: 0, ServerID: 1, SequenceNumber: seq}, Flags: flags}}
}

func queryEv(end uint32, q string) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, end, 80),
		Event: &replication.QueryEvent{Schema: []byte("db"), Query: []byte(q)}}
}

func xaPrepareEv(end uint32, onePhase bool) *replication.BinlogEvent {
	body := []byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', '1'}
	if onePhase {
		body[0] = 1
	}
	return &replication.BinlogEvent{Header: hdr(replication.XA_PREPARE_LOG_EVENT, end, 38), Event: &replication.GenericEvent{Data: body}}
}

func describeItems(items []change.Item) []string {
	var out []string
	for _, it := range items {
		if it.Commit != nil {
			out = append(out, "commit@"+it.Commit.Pos.String())
		} else {
			out = append(out, it.Event.Op.String()+"@"+it.Event.Pos.String())
		}
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStreamXA: a prepared XA branch is published at its XA COMMIT (with the commit's
// position), never at XA PREPARE, and not at all when rolled back; while it is prepared, every
// later transaction resumes from the branch's start, so a restart reads the branch again.
// (The XA PREPARE group used to be taken for an open transaction: its rows went out at once,
// and the next GTID failed "starts a transaction while ... open" after every restart.)
func TestStreamXA(t *testing.T) {
	for _, flavor := range []string{gomysql.MariaDBFlavor, gomysql.MySQLFlavor} {
		t.Run(flavor, func(t *testing.T) {
			st, out := testStream(t)
			start := func(end uint32, seq uint64, xid string) []*replication.BinlogEvent {
				xa := xid != ""
				if flavor == gomysql.MariaDBFlavor {
					var fl byte
					if xa {
						fl = mariaFlPreparedXA
					}
					return []*replication.BinlogEvent{mariaXAGTIDEv(end, seq, fl)}
				}
				evs := []*replication.BinlogEvent{mariaGTIDEv(end, 0, 1, seq)} // the GTID kind does not matter here
				if xa {
					evs = append(evs, queryEv(end+20, "XA START "+xid))
				}
				return evs
			}
			var evs []*replication.BinlogEvent
			// 1000: branch a1 prepared
			evs = append(evs, start(1000, 11, "X'6131',X'',1")...)
			evs = append(evs, rowsEv(replication.WRITE_ROWS_EVENTv1, 1100, []any{int32(1), "xa"}),
				queryEv(1180, "XA END X'6131',X'',1"), xaPrepareEv(1220, false))
			// 1300: a plain transaction
			evs = append(evs, start(1300, 12, "")...)
			evs = append(evs, rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "plain"}), xidEv(1431))
			// 1500: branch b2 prepared, 1700: rolled back
			evs = append(evs, start(1500, 13, "X'6232',X'',1")...)
			evs = append(evs, rowsEv(replication.WRITE_ROWS_EVENTv1, 1600, []any{int32(3), "rolled back"}),
				queryEv(1650, "XA END X'6232',X'',1"), xaPrepareEv(1690, false))
			evs = append(evs, mariaXAGTIDEv(1750, 14, mariaFlCompletedXA), queryEv(1800, "XA ROLLBACK X'6232',X'',1"))
			// 1900: a1 committed
			evs = append(evs, mariaXAGTIDEv(1950, 15, mariaFlCompletedXA), queryEv(2000, "XA COMMIT X'6131',X'',1"))
			// 2100: a plain transaction after it
			evs = append(evs, start(2100, 16, "")...)
			evs = append(evs, rowsEv(replication.WRITE_ROWS_EVENTv1, 2200, []any{int32(4), "after"}), xidEv(2231))
			feed(t, st, evs...)
			items := drain(st, out)
			got := describeItems(items)
			// Starts: the plain transaction at 1300 minus its GTID's size, a1 at its commit
			// group (1950-46=1904), the plain transaction after it at 2100 minus its GTID's size.
			want := []string{"c@3/4E6#46", "commit@3/4E6#4294967295", "c@3/770#16", "commit@3/770#4294967295", "c@3/806#46", "commit@3/806#4294967295"}
			gtidSize := uint32(46)
			if flavor == gomysql.MySQLFlavor {
				want = []string{"c@3/4EA#42", "commit@3/4EA#4294967295", "c@3/770#16", "commit@3/770#4294967295", "c@3/80A#42", "commit@3/80A#4294967295"}
				gtidSize = 42
			}
			if !sameStrings(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if v := items[2].Event.After[1].Str; v != "xa" {
				t.Errorf("the XA COMMIT published %q, want the prepared branch's row", v)
			}
			// While a1 was prepared, the plain transaction resumes from a1's start (1000-size),
			// so a restart reads the prepared rows again; after its commit, from its own start.
			prepStart := 1000 - gtidSize
			for i, wantPos := range map[int]uint32{0: prepStart, 2: prepStart, 4: 2100 - gtidSize} {
				tok, err := ParseToken(items[i].Event.Pos.Resume)
				if err != nil || tok.Pos != wantPos {
					t.Errorf("item %d resumes at %+v (%v), want offset %d", i, tok, err, wantPos)
				}
			}
		})
	}
}

// TestStreamXAOnePhase: MySQL's XA COMMIT ... ONE PHASE is an XA_prepare with one_phase set:
// a commit.
func TestStreamXAOnePhase(t *testing.T) {
	st, out := testStream(t)
	feed(t, st, mariaGTIDEv(1000, 0, 1, 11), queryEv(1020, "XA START X'6131',X'',1"),
		rowsEv(replication.WRITE_ROWS_EVENTv1, 1100, []any{int32(1), "one"}),
		queryEv(1180, "XA END X'6131',X'',1"), xaPrepareEv(1220, true),
		mariaGTIDEv(1300, 0, 1, 12), rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "b"}), xidEv(1431))
	got := describeItems(drain(st, out))
	if want := []string{"c@3/3BE#224", "commit@3/3BE#4294967295", "c@3/4EA#42", "commit@3/4EA#4294967295"}; !sameStrings(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
