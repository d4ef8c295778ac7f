package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/source/postgres"
	"github.com/jackc/pgx/v5"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// scratchPostgres is a PostgreSQL instance of the test's own, which the test may stop and
// restart (the shared stack's server must never be restarted).
type scratchPostgres struct {
	t    *testing.T
	data string
	log  string
	dsn  string // the postgres database
}

// startScratchPostgres initialises and starts a server on a free port with wal_level=logical,
// as the postgres OS user (the tests run as root, which PostgreSQL refuses).
func startScratchPostgres(t *testing.T) *scratchPostgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 binaries not found in %s (make stack-up installs them): %v", pgBin, err)
	}
	dir, err := os.MkdirTemp("", "cdcd-scratch-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &scratchPostgres{t: t, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "server.log")}
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		_ = p.ctl("-m", "immediate", "-w", "-t", "30", "stop")
		if t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				t.Logf("scratch PostgreSQL log (tail):\n%s", tail(string(b), 4000))
			}
		}
		os.RemoveAll(dir)
	})
	if out, err := asPostgres(filepath.Join(pgBin, "initdb"), "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(freePort(t))
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %s
unix_socket_directories = '%s'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
fsync = off
`, port, dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ctl("-l", p.log, "-w", "-t", "60", "start"); err != nil {
		t.Fatalf("starting the scratch server: %v", err)
	}
	p.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres", port)
	return p
}

func asPostgres(name string, args ...string) (string, error) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // the server outlives no test signal
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ctl runs pg_ctl on the scratch server.
func (p *scratchPostgres) ctl(args ...string) error {
	out, err := asPostgres(filepath.Join(pgBin, "pg_ctl"), append([]string{"-D", p.data}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestPostgresFastShutdownNotBlocked: on a fast shutdown the walsender waits until its client
// confirms all the WAL it sent. cdcd confirmed only its last acknowledged commit and kept
// answering keepalives, so `pg_ctl -m fast stop` hung (minutes, walsender at 100% CPU)
// until cdcd let go whenever WAL it had no reason to acknowledge (another table's commit, an
// abort) came after that commit. Now, with nothing in flight, cdcd confirms the sent position: the restart
// completes (bounded here by pg_ctl's own 60 s timeout, which failed before), and the stream
// resumes after it with nothing lost or duplicated.
func TestPostgresFastShutdownNotBlocked(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 6*time.Minute)
	pg := startScratchPostgres(t)
	db := pgConnect(t, ctx, pg.dsn)
	if _, err := db.Exec(ctx, `CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL); CREATE TABLE other (v int)`); err != nil {
		t.Fatal(err)
	}
	name := uniqueName("fastshut")
	yaml := strings.Replace(pipelineYAML(s, name, pg.dsn, []string{"public.kv"}, ""), "heartbeat_interval: 1s", "heartbeat_interval: 1h", 1)
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	// Load: small transactions, each insert once; the writer reconnects across the restart
	// and records which keys certainly committed (an insert whose commit outcome is unknown
	// is checked against the table afterwards).
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	writer := func() {
		defer wg.Done()
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		}()
		for wctx.Err() == nil {
			if conn == nil {
				c, err := pgx.Connect(wctx, pg.dsn)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				conn = c
			}
			mu.Lock()
			k := next
			mu.Unlock()
			_, err := conn.Exec(wctx, `INSERT INTO kv SELECT g, g FROM generate_series($1::int, $1::int + 9) g`, k)
			var pgErr interface{ SQLState() string }
			switch {
			case err == nil:
				mu.Lock()
				next += 10
				mu.Unlock()
			case errors.As(err, &pgErr) && pgErr.SQLState() == "23505":
				// committed although the client saw an error: go on after it
				mu.Lock()
				next += 10
				mu.Unlock()
			default:
				conn.Close(context.Background())
				conn = nil
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	wg.Add(1)
	go writer()
	c := newConsumer(t, s, name+".public.kv")
	recs := c.read(t, 200, time.Minute, 0)
	if len(recs) < 200 {
		t.Fatalf("only %d records before the restart", len(recs))
	}
	// The load stops and a transaction on a table cdcd does not capture commits last: pgoutput
	// sends nothing for it, so the walsender's sent position is past the last commit cdcd
	// acknowledged (without heartbeats, which would otherwise soon move it). The shutdown
	// starts at once, while the last captured transactions may still be in flight.
	stopWriter()
	wg.Wait()
	if _, err := db.Exec(ctx, `INSERT INTO other VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := pg.ctl("-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("a fast shutdown of PostgreSQL did not complete while cdcd streamed: %v", err)
	}
	t.Logf("fast shutdown took %s", time.Since(t0).Round(time.Millisecond))
	if err := pg.ctl("-l", pg.log, "-w", "-t", "60", "start"); err != nil {
		t.Fatal(err)
	}
	// Load again after the restart.
	wctx, stopWriter = context.WithCancel(ctx)
	wg.Add(1)
	go writer()
	time.Sleep(3 * time.Second)
	stopWriter()
	wg.Wait()

	check := pgConnect(t, ctx, pg.dsn)
	var rows int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM kv`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, c.read(t, rows-len(recs), 3*time.Minute, 3*time.Second)...)
	seen := map[int64]int{}
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		seen[avroLong(r.Key, 5)]++
	}
	var missing, dup []int
	for k := 0; k < rows; k++ {
		switch seen[int64(k)] {
		case 0:
			missing = append(missing, k)
		case 1:
		default:
			dup = append(dup, k)
		}
	}
	if len(missing) > 0 || len(dup) > 0 || len(seen) != rows {
		t.Fatalf("%d rows in the table, %d keys published; missing %v, duplicated %v", rows, len(seen), head(missing), head(dup))
	}
	t.Logf("%d rows, each published once across a fast restart", rows)
}

func head(xs []int) []int { return xs[:min(len(xs), 20)] }

// TestPostgresDroppedSlotNotRecreated: when the pipeline has committed positions and its slot
// is gone, cdcd refuses to go on — and leaves no new slot behind to hold WAL while the
// pipeline sits failed (it used to create the slot first and refuse afterwards).
func TestPostgresDroppedSlotNotRecreated(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_slotgone", `CREATE TABLE g (id int PRIMARY KEY)`)
	name := uniqueName("slotgone")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.g"}, ""))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO g VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".public.g")
	if n := len(c.read(t, 1, time.Minute, 0)); n != 1 {
		t.Fatal("first row not published")
	}
	d.stop(syscall.SIGTERM)
	dropSlot(ctx, t, db, name)
	d.restart()
	body := d.waitUnready(90*time.Second, `"failed"`, "did not exist")
	t.Logf("readyz: %s", body)
	var slots int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Fatalf("cdcd refused to go on but created slot %s, which now holds WAL", name)
	}
}

// TestPostgresPublicationMembershipIsHistoric verifies on the server what the stable
// in-transaction index relies on: pgoutput decides which tables' changes a transaction sends
// with the catalog as it was when the transaction ran, so changing the publication later
// (as cdcd does at start when tables: changed) does not change what an earlier transaction
// sends on replay.
func TestPostgresPublicationMembershipIsHistoric(t *testing.T) {
	_, ctx, _, db := setup(t, 2*time.Minute, "cdcd_pubhist", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY);
		CREATE PUBLICATION p FOR TABLE a, b`)
	if _, err := db.Exec(ctx, `SELECT pg_create_logical_replication_slot('pubhist', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO c VALUES (1); INSERT INTO a VALUES (2); COMMIT`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ALTER PUBLICATION p DROP TABLE b; ALTER PUBLICATION p ADD TABLE c`); err != nil {
		t.Fatal(err)
	}
	var inserts int
	err := db.QueryRow(ctx, `SELECT count(*) FROM pg_logical_slot_peek_binary_changes('pubhist', NULL, NULL, 'proto_version', '1', 'publication_names', 'p')
		WHERE get_byte(data, 0) = ascii('I')`).Scan(&inserts)
	if err != nil {
		t.Fatal(err)
	}
	if inserts != 3 {
		t.Fatalf("the transaction sent %d inserts after the publication changed, want 3 (a, b, a: membership as of the transaction)", inserts)
	}
}

// TestPostgresIndexStableAcrossTables: a transaction's event indexes must not depend on which
// tables are captured, or a partial offsets record (a transaction split across Kafka
// transactions) resumes at the wrong event after tables: changed. The same transaction is
// read from two slots, once capturing a and b and once only a (the publication is rewritten
// at start, after the transaction): a's events carry the same positions.
func TestPostgresIndexStableAcrossTables(t *testing.T) {
	_, ctx, dsn, db := setup(t, 2*time.Minute, "cdcd_index", `CREATE TABLE a (id int PRIMARY KEY, v int); CREATE TABLE b (id int PRIMARY KEY, v int);
		CREATE PUBLICATION idx FOR TABLE a, b`)
	for _, slot := range []string{"idx_ab", "idx_a"} {
		if _, err := db.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `BEGIN; INSERT INTO a VALUES (1, 1); INSERT INTO b VALUES (1, 1); UPDATE b SET id = 2; INSERT INTO a VALUES (2, 2); UPDATE a SET v = 3 WHERE id = 1; COMMIT`); err != nil {
		t.Fatal(err)
	}
	read := func(slot string, tables ...string) []string {
		src := postgres.New(postgres.Config{Pipeline: slot, DSN: dsn, Slot: slot, Publication: "idx", Tables: tables})
		out := make(chan []change.Item, 16)
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- src.Run(rctx, change.Resume{}, out) }()
		var got []string
		for {
			select {
			case chunk := <-out:
				for _, it := range chunk {
					if it.Commit != nil {
						cancel()
						<-errc
						return got
					}
					got = append(got, fmt.Sprintf("%s %s %s", it.Event.Op, it.Event.Table.Name, it.Event.Pos))
				}
			case err := <-errc:
				t.Fatalf("source on slot %s stopped: %v", slot, err)
			case <-ctx.Done():
				t.Fatalf("no commit from slot %s", slot)
			}
		}
	}
	ab := read("idx_ab", "public.a", "public.b")
	onlyA := read("idx_a", "public.a")
	var abA []string
	for _, e := range ab {
		if strings.Contains(e, " a ") {
			abA = append(abA, e)
		}
	}
	if len(onlyA) != 3 || !slices.Equal(abA, onlyA) {
		t.Fatalf("positions of a's events differ:\n  capturing a and b: %v\n  capturing a only:  %v", ab, onlyA)
	}
	t.Logf("capturing a and b: %v; a only: %v", ab, onlyA)
}

// TestPostgresSchemaIsAFunctionOfTheLog: the schema registered for a change is the same
// whether the change is read live or replayed later after more DDL. Before, nullability came
// from the catalog at read time: live, `b int NOT NULL DEFAULT 7` was "int"; replayed after
// `RENAME b TO b2` it became ["null","int"], and after `SET NOT NULL` on a column with old
// NULLs those old NULLs became poison records.
func TestPostgresSchemaIsAFunctionOfTheLog(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_schemalog", `CREATE TABLE sl (id int PRIMARY KEY, a int)`)
	live, replay := uniqueName("sllive"), uniqueName("slreplay")
	// The replaying pipeline's publication and slot exist from the start, so it later reads
	// the same WAL the live one read.
	if _, err := db.Exec(ctx, fmt.Sprintf(`CREATE PUBLICATION %s FOR TABLE sl`, replay)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, replay); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, pipelineYAML(s, live, dsn, []string{"public.sl"}, ""))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `ALTER TABLE sl ADD COLUMN b int NOT NULL DEFAULT 7; INSERT INTO sl (id, a) VALUES (1, NULL)`); err != nil {
		t.Fatal(err)
	}
	schemaOf := func(prefix string) map[string]any {
		c := newConsumer(t, s, prefix+".public.sl")
		recs := c.read(t, 1, 90*time.Second, 0)
		if len(recs) == 0 {
			t.Fatalf("pipeline %s published nothing", prefix)
		}
		text, err := c.reg.SchemaByID(context.Background(), int(recs[0].Value[1])<<24|int(recs[0].Value[2])<<16|int(recs[0].Value[3])<<8|int(recs[0].Value[4]))
		if err != nil {
			t.Fatal(err)
		}
		var sch map[string]any
		if err := json.Unmarshal([]byte(strings.ReplaceAll(text.Schema, prefix, "PREFIX")), &sch); err != nil {
			t.Fatal(err)
		}
		return sch
	}
	liveSchema := schemaOf(live)
	d.stop(syscall.SIGTERM)
	if _, err := db.Exec(ctx, `ALTER TABLE sl RENAME b TO b2; UPDATE sl SET a = 0 WHERE a IS NULL; ALTER TABLE sl ALTER a SET NOT NULL`); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, pipelineYAML(s, replay, dsn, []string{"public.sl"}, ""))
	d2.waitReady(90 * time.Second)
	replaySchema := schemaOf(replay)
	lj, _ := json.Marshal(liveSchema)
	rj, _ := json.Marshal(replaySchema)
	if string(lj) != string(rj) {
		t.Fatalf("the same change registered different schemas:\n  live:     %s\n  replayed: %s", lj, rj)
	}
	for _, want := range []string{`"name":"a","type":["null","int"]`, `"name":"b","type":["null","int"]`, `"name":"id","type":"int"`} {
		if !strings.Contains(string(lj), want) {
			t.Errorf("schema lacks %s: %s", want, lj)
		}
	}
}

// TestPostgresCommittedPositionBeyondWALRefused: the committed position is acknowledged to
// the slot at session start. A committed position beyond the server's WAL (a database
// restored from a backup, a DSN pointing at another server) would make the slot skip every
// change up to it: the source refuses, saying why, and acknowledges nothing.
func TestPostgresCommittedPositionBeyondWALRefused(t *testing.T) {
	_, ctx, dsn, db := setup(t, 2*time.Minute, "cdcd_beyond", `CREATE TABLE b (id int PRIMARY KEY)`)
	if _, err := db.Exec(ctx, `SELECT pg_create_logical_replication_slot('beyond', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	var before string
	if err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'beyond'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	src := postgres.New(postgres.Config{Pipeline: "beyond", DSN: dsn, Slot: "beyond", Publication: "beyond", Tables: []string{"public.b"}})
	err := src.Run(ctx, change.Resume{Committed: true, AckPosition: 1 << 62}, make(chan []change.Item, 1))
	var fatal *postgres.FatalError
	if !errors.As(err, &fatal) || !strings.Contains(err.Error(), "beyond the server's WAL end") {
		t.Fatalf("want a fatal error about the WAL end, got %v", err)
	}
	var after string
	if err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'beyond'`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("the slot moved from %s to %s", before, after)
	}
}
