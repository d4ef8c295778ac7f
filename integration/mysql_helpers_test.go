package integration

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/go-mysql-org/go-mysql/client"
)

// mysqlServerIDs hands each MySQL pipeline of this test process its own replica server_id:
// two replicas with one id make the server drop the older connection.
var mysqlServerIDs atomic.Uint32

func nextServerID() uint32 {
	return 40000 + uint32(time.Now().UnixNano()%10000)*10 + mysqlServerIDs.Add(1)
}

// mysqlSetup creates a fresh database with the DDL (statements separated by ";\n") and
// returns a connection to it and the DSN cdcd uses.
func mysqlSetup(t *testing.T, timeout time.Duration, prefix, ddl string) (stack, context.Context, string, string, *client.Conn) {
	t.Helper()
	s := needStack(t)
	ctx := testCtx(t, timeout)
	db := uniqueName(prefix)
	conn := mysqlConn(t, ctx, s.mysqlDSN)
	mysqlExec(t, conn, "CREATE DATABASE "+db)
	t.Cleanup(func() {
		if c, err := mysql.Connect(context.Background(), s.mysqlDSN); err == nil {
			_, _ = c.Execute("DROP DATABASE IF EXISTS " + db)
			c.Close()
		}
	})
	mysqlExec(t, conn, "USE "+db)
	for _, stmt := range strings.Split(ddl, ";\n") {
		if strings.TrimSpace(stmt) != "" {
			mysqlExec(t, conn, stmt)
		}
	}
	return s, ctx, db, strings.TrimSuffix(s.mysqlDSN, "/") + "/" + db, conn
}

func mysqlConn(t *testing.T, ctx context.Context, dsn string) *client.Conn {
	t.Helper()
	conn, err := mysql.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("mariadb at %s is not reachable (is the stack up? make stack-up): %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mysqlExec(t *testing.T, conn *client.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.Execute(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// mysqlPipelineYAML is one MySQL pipeline's configuration; extra is appended at pipeline
// level.
func mysqlPipelineYAML(s stack, name, dsn string, serverID uint32, tables []string, extra string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_partitions: 3
  transaction_timeout: 10s
schema_registry:
  url: %q
http:
  listen: "HTTP_ADDR"
log:
  level: info
  format: text
shutdown_timeout: 10s
pipelines:
  - name: %s
    source:
      mysql:
        dsn: %q
        server_id: %d
        tables: [%s]
    snapshot: never
    topics:
      prefix: %s
%s`, s.kafka[0], s.registry, name, dsn, serverID, strings.Join(tables, ", "), name, extra)
}

// startMySQLDaemon is startDaemon for MySQL tests: at the end of the test cdcd gets SIGTERM
// before the harness's SIGKILL, so it leaves no open Kafka transaction in the shared offsets
// topic that would hold back read_committed readers of later tests.
func startMySQLDaemon(t *testing.T, yaml string) *daemon {
	t.Helper()
	d := startDaemon(t, yaml)
	t.Cleanup(func() { d.stop(syscall.SIGTERM) })
	return d
}

// mysqlUpserts writes bursts of transactions of 1..maxSize upserts into a kv table (k, v, tx,
// txsize) over keys keys, synchronously, and keeps every change it wrote for verifySplit (the
// crash test's mysqlKVWriter is the paced, random writer that runs beside a daemon instead).
type mysqlUpserts struct {
	keys, maxSize int
	v, tx         int64
	want          []kvChange
}

func (w *mysqlUpserts) write(t *testing.T, conn *client.Conn, txs int) {
	t.Helper()
	for i := 0; i < txs; i++ {
		w.tx++
		size := 1 + int(w.tx%int64(w.maxSize))
		var q strings.Builder
		q.WriteString("INSERT INTO kv VALUES ")
		for j := 0; j < size; j++ {
			w.v++
			k := int(w.v*7919) % w.keys
			if j > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d,%d,%d,%d)", k, w.v, w.tx, size)
			w.want = append(w.want, kvChange{k, w.v, w.tx, size})
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE v = VALUES(v), tx = VALUES(tx), txsize = VALUES(txsize)")
		mysqlExec(t, conn, q.String())
	}
}
