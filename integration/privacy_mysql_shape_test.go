package integration

import (
	"strings"
	"testing"
	"time"
)

// TestPrivacyMySQLShape: on MariaDB too, an excluded column and the original of a masked one
// are in no topic, from the initial snapshot and from the binlog stream.
func TestPrivacyMySQLShape(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_priv_myshape", "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(64), name VARCHAR(64) NOT NULL)")
	mysqlExec(t, conn, "INSERT INTO people SELECT seq, CONCAT('CANARYMAIL', seq), CONCAT('CANARYNAME', seq) FROM seq_1_to_30")
	name := uniqueName("privmyshape")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".people"},
		"    shape:\n      "+db+".people:\n        columns: {exclude: [email]}\n        mask: {name: truncate(3)}\n"),
		"    snapshot: never\n", "    snapshot: initial\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	mysqlExec(t, conn, "INSERT INTO people VALUES (100, 'CANARYMAIL100', 'CANARYNAME100')")
	mysqlExec(t, conn, "UPDATE people SET email = 'CANARYMAIL-new', name = 'CANARYNAME-new' WHERE id = 1")
	recs := readSnapTopicRaw(t, s, name+"."+db+".people", 32, time.Minute)
	c := newConsumer(t, s)
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		if _, ok := after["email"]; ok || after["name"] != "CAN" {
			t.Fatalf("record %v: want no email and name CAN", after)
		}
	}
	if len(recs) != 32 {
		t.Errorf("%d records, want 32 (30 read, an insert, an update)", len(recs))
	}
	if hits, _ := grepTopics(t, s, name+".", "CANARYMAIL", "CANARYNAME"); len(hits) > 0 {
		t.Fatalf("canaries in the topics: %v", hits)
	}
}
