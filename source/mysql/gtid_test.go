package mysql

import (
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

func mariaGTIDEv(end uint32, domain, server uint32, seq uint64) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: hdr(replication.MARIADB_GTID_EVENT, end, 42),
		Event: &replication.MariadbGTIDEvent{GTID: gomysql.MariadbGTID{DomainID: domain, ServerID: server, SequenceNumber: seq}}}
}

// TestMariaDBGTIDsOnePerDomain: a MariaDB domain written by two server_ids (a session that
// ran SET SESSION server_id=77) is one entry in the resume state, the last GTID of the domain.
// The state used to keep one entry per (domain, server_id), "0-1-10,0-77-11", which MariaDB
// refuses in @slave_connect_state ("duplicate domain"), so every later resume failed and was
// retried forever.
func TestMariaDBGTIDsOnePerDomain(t *testing.T) {
	st, out := testStream(t)
	feed(t, st,
		mariaGTIDEv(1042, 0, 77, 11), rowsEv(replication.WRITE_ROWS_EVENTv1, 1200, []any{int32(1), "a"}), xidEv(1231),
		mariaGTIDEv(1273, 0, 1, 12), rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "b"}), xidEv(1431),
		mariaGTIDEv(1473, 1, 5, 3), rowsEv(replication.WRITE_ROWS_EVENTv1, 1600, []any{int32(3), "c"}), xidEv(1631),
		mariaGTIDEv(1673, 0, 77, 13), rowsEv(replication.WRITE_ROWS_EVENTv1, 1800, []any{int32(4), "d"}), xidEv(1831),
	)
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
	want := []string{"0-1-10", "0-77-11", "0-1-12", "0-1-12,1-5-3"}
	if len(got) != len(want) {
		t.Fatalf("resume GTID sets %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("resume GTID sets %q, want %q", got, want)
		}
	}
}

// TestResumeGTIDsNormalized: a committed state written before the fix, with two entries for a
// domain, resumes from the domain's highest sequence number; MySQL sets keep every UUID.
func TestResumeGTIDsNormalized(t *testing.T) {
	for _, c := range []struct{ flavor, in, want string }{
		{"mariadb", "0-1-100,0-77-101,1-5-3", "0-77-101,1-5-3"},
		{"mariadb", "0-77-101,0-1-100", "0-77-101"},
		{"mariadb", "", ""},
		{"mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
			"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
	} {
		gs, err := parseGTIDs(c.flavor, c.in)
		if err != nil {
			t.Fatalf("%s %q: %v", c.flavor, c.in, err)
		}
		if gs.String() != c.want {
			t.Errorf("%s %q: resumes from %q, want %q", c.flavor, c.in, gs.String(), c.want)
		}
	}
}

// TestMySQLGTIDSetKeepsEveryServer: on MySQL the resume state is a GTID set over every server
// UUID (what the server needs to send only the missing transactions).
func TestMySQLGTIDSetKeepsEveryServer(t *testing.T) {
	st, out := testStream(t)
	st.flavor = gomysql.MySQLFlavor
	gs, err := parseGTIDs(gomysql.MySQLFlavor, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10")
	if err != nil {
		t.Fatal(err)
	}
	st.gset = gs
	sidA := []byte{0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62}
	sidB := append([]byte{0x4e}, sidA[1:]...)
	gtid := func(end uint32, sid []byte, gno int64) *replication.BinlogEvent {
		return &replication.BinlogEvent{Header: hdr(replication.GTID_EVENT, end, 65), Event: &replication.GTIDEvent{SID: sid, GNO: gno}}
	}
	feed(t, st,
		gtid(1042, sidB, 1), rowsEv(replication.WRITE_ROWS_EVENTv1, 1200, []any{int32(1), "a"}), xidEv(1231),
		gtid(1273, sidA, 11), rowsEv(replication.WRITE_ROWS_EVENTv1, 1400, []any{int32(2), "b"}), xidEv(1431),
		gtid(1473, sidB, 2), rowsEv(replication.WRITE_ROWS_EVENTv1, 1600, []any{int32(3), "c"}), xidEv(1631),
	)
	items := drain(st, out)
	tok, err := ParseToken(items[len(items)-2].Event.Pos.Resume)
	if err != nil {
		t.Fatal(err)
	}
	if want := "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-11,4e11fa47-71ca-11e1-9e33-c80aa9429562:1"; tok.GTIDs != want {
		t.Fatalf("resume GTID set %q, want %q", tok.GTIDs, want)
	}
}
