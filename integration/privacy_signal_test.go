package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testSignalKey is the snapshot.signal_key of the tests that request snapshots (the stack's
// superuser logs in without a password, so no key is derived from it).
const testSignalKey = "test-signal-key-0123456789abcdef"

// TestPrivacySignalsOnlyFromOperators: a role without privileges emits the snapshot request
// every role could forge before (a cdcd_signal logical message), and one with a made-up
// signature: neither starts a snapshot, both are counted and logged. `cdcd snapshot` from the
// configuration's holder does start one; a condition outside the grammar (SQL to run as cdcd)
// is refused by the CLI.
func TestPrivacySignalsOnlyFromOperators(t *testing.T) {
	name := uniqueName("privsig")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_sig", `CREATE TABLE t (k int PRIMARY KEY, v text NOT NULL);
		INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`)
	role := "intruder_" + name
	if _, err := db.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), s.pgDSN); err == nil {
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.t"}, "    snapshot: {mode: never, signal_key: "+testSignalKey+"}\n"))
	d.waitReady(90 * time.Second)

	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	intruder, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close(context.Background())
	for _, msg := range []string{
		fmt.Sprintf(`{"pipeline":%q,"table":"public.t","where":"k < 10","id":"forged1"}`, name),
		fmt.Sprintf(`{"pipeline":%q,"table":"public.t","where":"true) OR (true","id":"forged2","mac":"00ff"}`, name),
	} {
		if _, err := intruder.Exec(ctx, "SELECT pg_logical_emit_message(true, 'cdcd_signal', $1)", msg); err != nil {
			t.Fatalf("the unprivileged role could not emit the message: %v", err)
		}
	}
	// A request is counted before its line is logged: wait for both.
	waitFor(t, d, "both forged requests counted and logged", time.Minute, func() bool {
		return d.metric("cdcd_signals_rejected_total") >= 2 && countLines(d.Logs(), "rejected a snapshot request", "xid=") >= 2
	})
	if v := d.metricLabel("cdcd_signals_rejected_total", `reason="unsigned"`); v != 1 {
		t.Errorf("cdcd_signals_rejected_total{reason=unsigned} = %v, want 1", v)
	}
	if v := d.metricLabel("cdcd_signals_rejected_total", `reason="bad_signature"`); v != 1 {
		t.Errorf("cdcd_signals_rejected_total{reason=bad_signature} = %v, want 1", v)
	}
	if n := countLines(d.Logs(), "rejected a snapshot request", "xid="); n != 2 {
		t.Errorf("%d log lines name the forged requests' transactions, want 2\n%s", n, d.Logs())
	}
	if strings.Contains(d.Logs(), `msg="snapshot requested"`) {
		t.Fatalf("a forged request started a snapshot\n%s", d.Logs())
	}

	// The operator's request, through the CLI with the configuration, is taken.
	for _, bad := range []string{"k < 10; DELETE FROM t", "k < (SELECT max(k) FROM t)", "pg_sleep(1) IS NULL"} {
		out, err := execCmd(cdcdBin, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.t", "--where", bad)
		if err == nil || !strings.Contains(out, "allowed grammar") {
			t.Errorf("--where %q: want a refusal naming the grammar, got %v: %s", bad, err, out)
		}
	}
	t.Log(strings.TrimSpace(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", "public.t", "--where", "k < 10 AND v LIKE 'v%'")))
	waitFor(t, d, "the requested snapshot", time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	recs := readSnapTopicRaw(t, s, name+".public.t", 9, 30*time.Second)
	if len(recs) != 9 {
		t.Fatalf("the requested snapshot published %d records, want 9 (k < 10)", len(recs))
	}
	if v := d.metric("cdcd_signals_rejected_total"); v != 2 {
		t.Errorf("cdcd_signals_rejected_total = %v after the operator's request, want 2", v)
	}
}
