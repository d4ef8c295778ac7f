package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
)

// TestPrivacyMySQLSignalsOnlyFromOperators: a user allowed only to insert into the signal
// table writes the snapshot request anyone with that grant could forge before: it starts no
// snapshot and is counted; `cdcd snapshot` from the configuration's holder starts one, with
// its condition rendered by cdcd (string literals hex-encoded).
func TestPrivacyMySQLSignalsOnlyFromOperators(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_priv_mysig", `CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
CREATE TABLE cdcd_signal (id VARCHAR(64) NOT NULL PRIMARY KEY, kind VARCHAR(16) NOT NULL, data TEXT NOT NULL,
	created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`)
	mysqlExec(t, conn, "INSERT INTO kv SELECT seq, CONCAT('v', seq) FROM seq_1_to_50")
	name := uniqueName("privmysig")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, ""),
		"    snapshot: never\n", "    snapshot: {mode: never, signal_key: "+testSignalKey+"}\n", 1)
	d := startMySQLDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	user := "intr_" + name
	mysqlExec(t, conn, fmt.Sprintf("CREATE USER '%s'@'%%'", user))
	t.Cleanup(func() {
		if c, err := mysql.Connect(context.Background(), s.mysqlDSN); err == nil {
			_, _ = c.Execute(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user))
			c.Close()
		}
	})
	mysqlExec(t, conn, fmt.Sprintf("GRANT INSERT ON %s.cdcd_signal TO '%s'@'%%'", db, user))
	intruder := mysqlConn(t, ctx, fmt.Sprintf("%s@tcp(%s)/%s", user, strings.TrimSuffix(strings.SplitN(s.mysqlDSN, "@tcp(", 2)[1], ")/"), db))
	mysqlExec(t, intruder, "INSERT INTO cdcd_signal (id, kind, data) VALUES ('forged1', 'snapshot', ?)",
		fmt.Sprintf(`{"pipeline":%q,"table":%q,"where":"k < 10","id":"forged1"}`, name, db+".kv"))
	// The request is counted before its line is logged: wait for both.
	waitFor(t, d, "the forged request counted and logged", time.Minute, func() bool {
		return d.metricLabel("cdcd_signals_rejected_total", `reason="unsigned"`) == 1 &&
			countLines(d.Logs(), "rejected a snapshot request", "end_log_pos=") >= 1
	})
	if n := countLines(d.Logs(), "rejected a snapshot request", "end_log_pos="); n != 1 {
		t.Errorf("%d log lines name the forged request's position, want 1\n%s", n, d.Logs())
	}
	if strings.Contains(d.Logs(), `msg="snapshot requested"`) {
		t.Fatalf("a forged request started a snapshot\n%s", d.Logs())
	}

	out, err := execCmd(cdcdBin, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", db+".kv", "--where", "k < 10 OR SLEEP(1)")
	if err == nil || !strings.Contains(out, "allowed grammar") {
		t.Errorf("a condition calling a function: want a refusal naming the grammar, got %v: %s", err, out)
	}
	t.Log(strings.TrimSpace(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", db+".kv", "--where", "k <= 5 AND v LIKE 'v%'")))
	waitFor(t, d, "the requested snapshot", time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	recs := readSnapTopicRaw(t, s, name+"."+db+".kv", 5, 30*time.Second)
	if len(recs) != 5 {
		t.Fatalf("the requested snapshot published %d records, want 5 (k <= 5)", len(recs))
	}
}
