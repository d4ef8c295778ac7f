package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestResolveConsistency: auto picks the binlog snapshot position on MariaDB and watermarks
// on MySQL; binlog_snapshot is refused on MySQL with the fix; watermarks works on both.
func TestResolveConsistency(t *testing.T) {
	cases := []struct {
		mode, flavor, want, err string
	}{
		{"", gomysql.MariaDBFlavor, ConsistencyBinlogSnapshot, ""},
		{ConsistencyAuto, gomysql.MariaDBFlavor, ConsistencyBinlogSnapshot, ""},
		{ConsistencyAuto, gomysql.MySQLFlavor, ConsistencyWatermarks, ""},
		{"", gomysql.MySQLFlavor, ConsistencyWatermarks, ""},
		{ConsistencyBinlogSnapshot, gomysql.MariaDBFlavor, ConsistencyBinlogSnapshot, ""},
		{ConsistencyBinlogSnapshot, gomysql.MySQLFlavor, "", "fix: set snapshot_consistency: watermarks"},
		{ConsistencyWatermarks, gomysql.MariaDBFlavor, ConsistencyWatermarks, ""},
		{ConsistencyWatermarks, gomysql.MySQLFlavor, ConsistencyWatermarks, ""},
		{"dblog", gomysql.MySQLFlavor, "", "use auto, binlog_snapshot or watermarks"},
	}
	for _, c := range cases {
		got, err := ResolveConsistency(c.mode, c.flavor)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q on %s: error %v, want one containing %q", c.mode, c.flavor, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q on %s = %q, %v; want %q", c.mode, c.flavor, got, err, c.want)
		}
	}
}

// TestSnapshotConsistencyChecks: watermarks mode needs binlog_order_commits=ON where the server
// has the variable (a failure when the pipeline snapshots at start, a warning when only
// requests would); MariaDB has none and passes; binlog_snapshot on MySQL fails with its fix.
func TestSnapshotConsistencyChecks(t *testing.T) {
	cases := []struct {
		name    string
		vars    map[string]string
		mariadb bool
		snap    SnapshotChecks
		want    checks.Status
		fix     string
	}{
		{"mysql on", map[string]string{"binlog_order_commits": "ON"}, false, SnapshotChecks{Snapshots: true}, checks.OK, ""},
		{"mysql off", map[string]string{"binlog_order_commits": "OFF"}, false, SnapshotChecks{Snapshots: true}, checks.Fail, "SET GLOBAL binlog_order_commits = ON"},
		{"mysql off, no snapshot at start", map[string]string{"binlog_order_commits": "OFF"}, false, SnapshotChecks{}, checks.Warn, "SET GLOBAL binlog_order_commits = ON"},
		{"mariadb auto", map[string]string{}, true, SnapshotChecks{Snapshots: true}, checks.OK, ""},
		{"mariadb watermarks", map[string]string{}, true, SnapshotChecks{Consistency: ConsistencyWatermarks, Snapshots: true}, checks.OK, ""},
		{"mysql binlog_snapshot", map[string]string{"binlog_order_commits": "ON"}, false, SnapshotChecks{Consistency: ConsistencyBinlogSnapshot}, checks.Fail, "snapshot_consistency: watermarks"},
	}
	for _, c := range cases {
		var rep checks.Report
		checkSnapshotConsistency(c.vars, c.mariadb, c.snap, rep.Scoped("p"))
		if len(rep.Results) != 1 {
			t.Fatalf("%s: %d results, want 1: %+v", c.name, len(rep.Results), rep.Results)
		}
		r := rep.Results[0]
		if r.Status != c.want || !strings.Contains(r.Fix, c.fix) {
			t.Errorf("%s: %v %q (fix %q), want %v with fix %q", c.name, r.Status, r.Detail, r.Fix, c.want, c.fix)
		}
	}
}

// TestLowMarkWait: a worker waiting for its low watermark gets the Tx the stream records for
// the token; a cancelled wait returns the context's error; tokens nobody waits for are
// ignored; no entry outlives its wait.
func TestLowMarkWait(t *testing.T) {
	l := newLowMarks()
	l.reached("nobody/low/1", 5) // another pipeline's or an earlier session's
	if l.len() != 0 {
		t.Fatalf("an unexpected token was kept: %d entries", l.len())
	}

	tok := newLowToken("p")
	ch := l.expect(tok)
	go func() {
		time.Sleep(10 * time.Millisecond)
		l.reached(tok, 42)
	}()
	tx, err := l.wait(context.Background(), tok, ch)
	if err != nil || tx != 42 {
		t.Fatalf("wait = %d, %v; want 42", tx, err)
	}

	// Reached before the worker waits (the stream is fast): the Tx is kept for it.
	tok = newLowToken("p")
	ch = l.expect(tok)
	l.reached(tok, 43)
	if tx, err := l.wait(context.Background(), tok, ch); err != nil || tx != 43 {
		t.Fatalf("wait after reached = %d, %v; want 43", tx, err)
	}

	// The session ends while the worker waits.
	tok = newLowToken("p")
	ch = l.expect(tok)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := l.wait(ctx, tok, ch); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait = %v, want context.Canceled", err)
	}
	l.reached(tok, 44) // the stream gets there later: nobody waits, nothing blocks

	// A row that could not be written.
	tok = newLowToken("p")
	l.expect(tok)
	l.forget(tok)
	if n := l.len(); n != 0 {
		t.Fatalf("%d entries left after every wait ended", n)
	}
}

// TestStreamRecordsLowWatermark: the stream hands a low watermark's Tx (its transaction's start
// in the binlog) to the waiter at the end of the transaction that wrote it, not before.
func TestStreamRecordsLowWatermark(t *testing.T) {
	st, _ := testStream(t)
	st.signalID, st.hasSignalID = 9, true
	tok := newLowToken("p")
	ch := st.src.lows.expect(tok)
	signal := &replication.RowsEvent{TableID: 9, Rows: [][]any{{"id1", signalKindLow, tok, nil}}}
	feed(t, st, gtidEv(1042, 11), &replication.BinlogEvent{Header: hdr(replication.WRITE_ROWS_EVENTv1, 1142, 100), Event: signal})
	select {
	case tx := <-ch:
		t.Fatalf("the low watermark was reached (Tx %d) before its transaction ended", tx)
	default:
	}
	feed(t, st, xidEv(1173))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := st.src.lows.wait(ctx, tok, ch)
	if err != nil {
		t.Fatal(err)
	}
	if want := txOf(3, 1000); tx != want {
		t.Fatalf("low watermark Tx = %d, want %d (the start of its transaction)", tx, want)
	}
	if n := st.src.lows.len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
