package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestMySQLFirstStartPositionSurvivesRestart: a new MySQL pipeline stopped right after its
// first start (before any change of its tables) resumes from where it started, so rows written
// while it was stopped are published. It used to forget where it started (nothing was
// committed yet) and begin again at the server's current position, skipping them.
func TestMySQLFirstStartPositionSurvivesRestart(t *testing.T) {
	s, _, _, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_first", "CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL)")
	name := uniqueName("myfirst")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{dbOf(dsn) + ".kv"}, ""))
	d.waitReady(90 * time.Second)
	d.stop(syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		mysqlExec(t, conn, fmt.Sprintf("INSERT INTO kv VALUES (%d, %d)", i, i))
	}
	d.restart()
	d.waitReady(90 * time.Second)
	c := newConsumer(t, s, name+"."+dbOf(dsn)+".kv")
	if recs := c.read(t, 100, time.Minute, time.Second); len(recs) != 100 {
		t.Fatalf("%d of the 100 rows written while the new pipeline was stopped arrived\n%s", len(recs), d.Logs())
	}
}

// dbOf is the database of a go-sql-driver style DSN (user@tcp(host:port)/db).
func dbOf(dsn string) string {
	for i := len(dsn) - 1; i >= 0; i-- {
		if dsn[i] == '/' {
			db := dsn[i+1:]
			for j := 0; j < len(db); j++ {
				if db[j] == '?' {
					return db[:j]
				}
			}
			return db
		}
	}
	return ""
}
