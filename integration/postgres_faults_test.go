package integration

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// waitUnready waits until /readyz is 503 with a body containing every want.
func (d *daemon) waitUnready(timeout time.Duration, want ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var body string
	var code int
	for time.Now().Before(deadline) {
		body, code = get(d.t, "http://"+d.http+"/readyz")
		ok := code == http.StatusServiceUnavailable
		for _, w := range want {
			ok = ok && strings.Contains(body, w)
		}
		if ok {
			return body
		}
		time.Sleep(300 * time.Millisecond)
	}
	d.t.Fatalf("/readyz never said %q: %d %s\n%s", want, code, body, d.Logs())
	return ""
}

// TestPostgresSlotGapRefused: a slot dropped and recreated behind cdcd's back would silently
// skip the changes in between; cdcd refuses to stream, says why and how to fix it, and streams
// again after an explicit reset-offsets.
func TestPostgresSlotGapRefused(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_gap", `CREATE TABLE g (id int PRIMARY KEY)`)
	name := uniqueName("gap")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.g"}, ""))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO g VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".public.g")
	if n := len(c.read(t, 1, time.Minute, 0)); n != 1 {
		t.Fatalf("first row not published")
	}
	d.stop(syscall.SIGTERM)
	dropSlot(ctx, t, db, name)
	if _, err := db.Exec(ctx, `INSERT INTO g VALUES (2)`); err != nil { // lost to any new slot
		t.Fatal(err)
	}
	d.restart()
	body := d.waitUnready(90*time.Second, `"failed"`, "did not exist", "reset-offsets")
	t.Logf("readyz: %s", body)
	d.stop(syscall.SIGTERM)

	out, err := exec.Command(cdcdBin, "reset-offsets", "--config", d.cfg, "--pipeline", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "forgot committed position") {
		t.Fatalf("reset-offsets: %v\n%s", err, out)
	}
	d.restart()
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO g VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	recs := c.read(t, 1, time.Minute, time.Second)
	if len(recs) != 1 || avroLong(recs[0].Key, 5) != 3 {
		t.Fatalf("after the reset, want row 3 only, got %d records", len(recs))
	}
}

// TestPostgresSchemaRefused: a table change the subject's compatibility forbids stops the
// pipeline (on_error: fail) with a message naming the table, the subject and the registry's
// reason, and nothing after it is acknowledged.
func TestPostgresSchemaRefused(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_refused", `CREATE TABLE r (id int PRIMARY KEY, a int)`)
	name := uniqueName("refused")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.r"}, ""))
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO r VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".public.r")
	if n := len(c.read(t, 1, time.Minute, 0)); n != 1 {
		t.Fatalf("first row not published")
	}
	// int -> string: under BACKWARD the new schema cannot read old data.
	if _, err := db.Exec(ctx, `ALTER TABLE r ALTER COLUMN a TYPE text; INSERT INTO r VALUES (2, '2')`); err != nil {
		t.Fatal(err)
	}
	body := d.waitUnready(90*time.Second, `"failed"`, "public.r", name+".public.r-value", "refused")
	t.Logf("readyz: %s", body)
	var confirmed, current string
	if err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&confirmed, &current); err != nil {
		t.Fatal(err)
	}
	if len(c.read(t, 1, 3*time.Second, 0)) != 0 {
		t.Fatal("a row after the refused schema change was published")
	}
	// The process stays up for the person on call: /healthz answers, /readyz explains.
	if _, code := get(t, "http://"+d.http+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

// TestPostgresAddNullableColumnIsCompatible: adding a nullable column yields a new schema
// version the registry accepts under BACKWARD, and streaming goes on.
func TestPostgresAddNullableColumnIsCompatible(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_evolve", `CREATE TABLE e (id int PRIMARY KEY, a int)`)
	name := uniqueName("evolve")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.e"}, ""))
	d.waitReady(90 * time.Second)
	for _, sql := range []string{
		`INSERT INTO e VALUES (1, 1)`,
		`ALTER TABLE e ADD COLUMN b text`,
		`INSERT INTO e VALUES (2, 2, 'two')`,
		`ALTER TABLE e DROP COLUMN a`,
		`INSERT INTO e VALUES (3, 'three')`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	c := newConsumer(t, s, name+".public.e")
	recs := c.read(t, 3, time.Minute, time.Second)
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3\n%s", len(recs), d.Logs())
	}
	var after map[string]any
	for _, r := range recs {
		if avroLong(r.Key, 5) == 3 {
			after = unwrapAll(unwrap(unwrap(c.decode(t, r.Value)).(map[string]any)["after"]).(map[string]any))
		}
	}
	if after["b"] != "three" || after["a"] != nil {
		t.Fatalf("row 3 after = %v", after)
	}
	vs, err := c.reg.SubjectVersions(ctx, name+".public.e-value")
	if err != nil || len(vs) != 3 {
		t.Fatalf("subject versions %v (%v), want 3", vs, err)
	}
	d.waitReady(10 * time.Second)
}

// dropSlot drops a replication slot cdcd has just stopped using. The server releases a slot
// when its walsender process exits, a moment after cdcd closed the connection: until then
// dropping it fails with 55006 (the slot is active), and is tried again.
func dropSlot(ctx context.Context, t *testing.T, db *pgx.Conn, slot string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := db.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("dropping slot %s: %v", slot, err)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
