package integration

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy forwards TCP connections to target and, the first time a client sends bytes
// containing match, closes that connection in both directions instead of forwarding them:
// the server goes away in the middle of a query, as it does when it restarts.
type cutProxy struct {
	addr string
	cuts atomic.Int32
}

func startCutProxy(t *testing.T, target string, match []byte) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			open = append(open, client, server)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(client, server); client.Close() }()
			go func() {
				defer wg.Done()
				defer server.Close()
				defer client.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if p.cuts.Load() == 0 && bytes.Contains(buf[:n], match) && p.cuts.CompareAndSwap(0, 1) {
							return
						}
						if _, werr := server.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestMySQLConnectionCutDuringChecks: the server drops the connection while cdcd runs its
// prerequisite checks (as a restarting server does). That is a broken connection, not a
// misconfigured server: the pipeline retries and streams, it does not stop for good.
func TestMySQLConnectionCutDuringChecks(t *testing.T) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "mycut", "CREATE TABLE kv (k INT PRIMARY KEY, v INT NOT NULL)")
	_ = ctx
	addr := strings.TrimSuffix(strings.TrimPrefix(s.mysqlDSN[strings.Index(s.mysqlDSN, "@"):], "@tcp("), ")/")
	p := startCutProxy(t, addr, []byte("binlog_row_metadata"))
	proxied := strings.Replace(dsn, addr, p.addr, 1)
	name := uniqueName("mycut")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, proxied, nextServerID(), []string{db + ".kv"},
		"    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n"))
	d.waitReady(90 * time.Second)
	if p.cuts.Load() != 1 {
		t.Fatalf("the proxy never cut the prerequisite checks' connection")
	}
	mysqlExec(t, conn, "INSERT INTO kv VALUES (1, 10), (2, 20)")
	c := newConsumer(t, s, name+"."+db+".kv")
	if n := len(c.read(t, 2, time.Minute, 0)); n != 2 {
		t.Fatalf("read %d records after the cut, want 2", n)
	}
	logs := d.Logs()
	if strings.Contains(logs, "not retriable") || !strings.Contains(logs, "retrying") {
		t.Fatalf("a connection cut during the checks must be retried, not stop the pipeline:\n%s", logs)
	}
}

// TestPostgresConnectionCutDuringChecks is the same for PostgreSQL.
func TestPostgresConnectionCutDuringChecks(t *testing.T) {
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_cut", `CREATE TABLE r (id int PRIMARY KEY, a int)`)
	addr := strings.TrimPrefix(dsn, "postgres://")
	addr = addr[strings.Index(addr, "@")+1 : strings.LastIndex(addr, "/")]
	p := startCutProxy(t, addr, []byte("server_version_num"))
	proxied := strings.Replace(dsn, addr, p.addr, 1) + "?sslmode=disable"
	name := uniqueName("pgcut")
	d := startDaemon(t, pipelineYAML(s, name, proxied, []string{"public.r"},
		"    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n"))
	d.waitReady(90 * time.Second)
	if p.cuts.Load() != 1 {
		t.Fatalf("the proxy never cut the prerequisite checks' connection")
	}
	if _, err := db.Exec(ctx, `INSERT INTO r VALUES (1, 1), (2, 2)`); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".public.r")
	if n := len(c.read(t, 2, time.Minute, 0)); n != 2 {
		t.Fatalf("read %d records after the cut, want 2", n)
	}
	logs := d.Logs()
	if strings.Contains(logs, "not retriable") || !strings.Contains(logs, "retrying") {
		t.Fatalf("a connection cut during the checks must be retried, not stop the pipeline:\n%s", logs)
	}
}
