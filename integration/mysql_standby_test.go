package integration

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMySQLStandbyTakeover: a second daemon on the same MySQL pipeline waits as a standby (its
// binlog connection would take the first one's place at the server, which would then take it
// back: the two would steal the stream from each other and fence each other's Kafka
// transactions) and takes over when the first stops, with no loss and no duplicates.
func TestMySQLStandbyTakeover(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 6*time.Minute, "cdcd_mystandby",
		"CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	name := uniqueName("mystandby")
	yaml := mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"},
		"    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n")
	yaml = strings.Replace(yaml, "        tables:", "        heartbeat_interval: 1s\n        tables:", 1)
	a := startMySQLDaemon(t, yaml)
	a.waitReady(90 * time.Second)
	b := startMySQLDaemon(t, yaml)

	w := &mysqlUpserts{keys: 300, maxSize: 7}
	write := func(txs int) { w.write(t, conn, txs) }

	// b must report standby, not ready, while a streams undisturbed.
	waitStandby(t, b, 60*time.Second)
	for i := 0; i < 10; i++ {
		write(50)
		time.Sleep(500 * time.Millisecond)
	}
	if _, code := get(t, "http://"+a.http+"/readyz"); code != http.StatusOK {
		t.Fatalf("the active daemon lost readiness while a standby waited\n%s", a.Logs())
	}
	if strings.Contains(a.Logs(), "retrying") {
		t.Fatalf("the active daemon was disturbed by the standby:\n%s", a.Logs())
	}
	a.stop(syscall.SIGKILL)
	write(200)
	b.waitReady(90 * time.Second)
	write(200)

	c, recs := readKV(t, s, name+"."+db+".kv", len(w.want), 2*time.Minute)
	verifySplit(t, c, recs, w.want)
	if !strings.Contains(b.Logs(), "standby") {
		t.Errorf("standby never logged its state")
	}
}
