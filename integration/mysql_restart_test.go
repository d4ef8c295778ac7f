package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
)

// scratchMariaDB is a private MariaDB server for tests that restart it; the shared stack's
// server is never restarted.
type scratchMariaDB struct {
	t        *testing.T
	dir, cnf string
	dsn      string
	cmd      *exec.Cmd
	exited   chan struct{}
}

func startScratchMariaDB(t *testing.T) *scratchMariaDB {
	t.Helper()
	return startScratchMariaDBWith(t, 7, "")
}

// startScratchMariaDBWith starts a private MariaDB with its own server_id and extra my.cnf
// lines (e.g. log_slave_updates for a replica).
func startScratchMariaDBWith(t *testing.T, serverID int, extra string) *scratchMariaDB {
	t.Helper()
	if _, err := exec.LookPath("mariadb-install-db"); err != nil {
		t.Fatalf("mariadb-install-db not found (make stack-up installs MariaDB): %v", err)
	}
	dir, err := os.MkdirTemp("", "cdcd-scratch-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	m := &scratchMariaDB{t: t, dir: dir, cnf: filepath.Join(dir, "my.cnf")}
	_, port, _ := net.SplitHostPort(freePort(t))
	cnf := fmt.Sprintf(`[mysqld]
user = mysql
datadir = %[1]s/data
socket = %[1]s/mariadb.sock
pid-file = %[1]s/mariadb.pid
log-error = %[1]s/mariadb.log
bind-address = 127.0.0.1
port = %[2]s
skip-name-resolve
server_id = %[3]d
log_bin = %[1]s/binlog
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
character-set-server = utf8mb4
%[4]s
`, dir, port, serverID, extra)
	if err := os.WriteFile(m.cnf, []byte(cnf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "mysql:mysql", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "mariadb.log")); err == nil {
				t.Logf("scratch MariaDB log (tail):\n%s", tail(string(b), 3000))
			}
		}
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("mariadb-install-db", "--defaults-file="+m.cnf, "--user=mysql",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.dsn = "root@tcp(127.0.0.1:" + port + ")/"
	m.start()
	return m
}

func (m *scratchMariaDB) start() {
	m.t.Helper()
	m.exited = make(chan struct{})
	m.cmd = exec.Command("mariadbd", "--defaults-file="+m.cnf)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := mysql.Connect(ctx, m.dsn)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.t.Fatalf("scratch MariaDB did not start")
}

// stop shuts the server down cleanly (SIGTERM) and waits for it.
func (m *scratchMariaDB) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// TestMySQLServerRestartMidStream: the MariaDB server is restarted while cdcd streams from
// it and rows keep coming before and after. cdcd reconnects on its own (the pipeline retries)
// and every row committed arrives exactly once.
func TestMySQLServerRestartMidStream(t *testing.T) {
	s := needStack(t)
	m := startScratchMariaDB(t)
	ctx := testCtx(t, 4*time.Minute)
	conn := mysqlConn(t, ctx, m.dsn)
	mysqlExec(t, conn, "CREATE DATABASE r")
	mysqlExec(t, conn, "CREATE TABLE r.kv (k INT PRIMARY KEY, v BIGINT NOT NULL, tx BIGINT NOT NULL, txsize INT NOT NULL)")
	conn.Close()
	name := uniqueName("myrestart")
	yaml := mysqlPipelineYAML(s, name, m.dsn+"r", nextServerID(), []string{"r.kv"}, "    batch:\n      max_events: 100\n    retry:\n      initial_backoff: 200ms\n      max_backoff: 1s\n")
	d := startMySQLDaemon(t, yaml)
	d.waitReady(60 * time.Second)

	w := &mysqlUpserts{keys: 500, maxSize: 50}
	write := func(txs int) {
		c := mysqlConn(t, ctx, m.dsn+"r")
		defer c.Close()
		w.write(t, c, txs)
	}
	write(200)
	m.stop() // cdcd is reading the burst above when the server goes away
	m.start()
	write(200)
	m.stop()
	m.start()
	write(100)

	c, recs := readKV(t, s, name+".r.kv", len(w.want), 2*time.Minute)
	verifySplit(t, c, recs, w.want)
	d.waitReady(60 * time.Second)
	if !strings.Contains(d.Logs(), "retrying") {
		t.Errorf("the pipeline never noticed the restarts (no retry in the log)")
	}
}
