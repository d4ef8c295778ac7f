package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkOutput runs `cdcd check` on a daemon's configuration.
func checkOutput(t *testing.T, yaml string) (string, error) {
	t.Helper()
	cfg := writeConfig(t, strings.ReplaceAll(yaml, "HTTP_ADDR", freePort(t)))
	out, err := exec.Command(cdcdBin, "check", "--config", cfg).CombinedOutput()
	return string(out), err
}

// TestPostgresPartitionedTable: a partitioned parent in tables: used to lose every change
// silently (the publication lacked publish_via_partition_root, so changes came under the
// partitions' names) and then blocked the next start ("relation is already member of
// publication"). Now: an existing publication without the option gets it (logged); inserts
// into every partition, a partition-moving update, deletes and a partition attached while
// streaming all arrive in order on the parent's one topic; a restart is clean; and a
// partition listed next to its parent is refused by check.
func TestPostgresPartitionedTable(t *testing.T) {
	s, ctx, dsn, db := setup(t, 5*time.Minute, "cdcd_part", `
		CREATE TABLE t_part (id int, region int, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
		CREATE TABLE t_part_1 PARTITION OF t_part FOR VALUES IN (1);
		CREATE TABLE t_part_2 PARTITION OF t_part FOR VALUES IN (2)`)
	name := uniqueName("part")
	// A publication that exists without publish_via_partition_root.
	if _, err := db.Exec(ctx, fmt.Sprintf(`CREATE PUBLICATION %s FOR TABLE t_part`, name)); err != nil {
		t.Fatal(err)
	}
	yaml := pipelineYAML(s, name, dsn, []string{"public.t_part"}, "")
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)
	if !strings.Contains(d.Logs(), "publish_via_partition_root") {
		t.Errorf("setting publish_via_partition_root on the existing publication was not logged:\n%s", d.Logs())
	}
	var viaRoot bool
	if err := db.QueryRow(ctx, `SELECT pubviaroot FROM pg_publication WHERE pubname = $1`, name).Scan(&viaRoot); err != nil || !viaRoot {
		t.Fatalf("publication %s: pubviaroot %v, %v", name, viaRoot, err)
	}
	steps := []string{
		`INSERT INTO t_part VALUES (1, 1, 'a'), (2, 2, 'b')`,
		`UPDATE t_part SET region = 2, v = 'moved' WHERE id = 1`, // moves between partitions
		`DELETE FROM t_part WHERE id = 2`,
		`CREATE TABLE t_part_3 (id int, region int, v text, PRIMARY KEY (id, region)); ALTER TABLE t_part ATTACH PARTITION t_part_3 FOR VALUES IN (3)`,
		`INSERT INTO t_part VALUES (3, 3, 'attached')`,
	}
	for _, q := range steps {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c := newConsumer(t, s, name+".public.t_part")
	// creates 1 and 2; the move: delete (+tombstone) of (1,1), create of (1,2); delete (+tombstone) of 2; create 3
	recs := c.read(t, 8, 90*time.Second, 2*time.Second)
	// Per key, in order (keys spread over the topic's partitions).
	perKey := map[string][]string{}
	for _, r := range recs {
		k := unwrapAll(c.decode(t, r.Key))
		key := fmt.Sprintf("%v/%v", k["id"], k["region"])
		op := "tombstone"
		if r.Value != nil {
			op = fmt.Sprint(c.decode(t, r.Value)["op"])
		}
		perKey[key] = append(perKey[key], op)
	}
	got := fmt.Sprint(perKey)
	want := fmt.Sprint(map[string][]string{"1/1": {"c", "d", "tombstone"}, "1/2": {"c"}, "2/2": {"c", "d", "tombstone"}, "3/3": {"c"}})
	if got != want {
		t.Fatalf("records on the parent's topic by key:\n  got  %s\n  want %s", got, want)
	}

	// The next start finds the publication as it should be.
	d.stop(syscall.SIGTERM)
	d.restart()
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO t_part VALUES (4, 1, 'after restart')`); err != nil {
		t.Fatal(err)
	}
	if recs := c.read(t, 1, time.Minute, time.Second); len(recs) != 1 {
		t.Fatalf("after a restart: %d records, want 1\n%s", len(recs), d.Logs())
	}
	d.stop(syscall.SIGTERM)

	// A partition listed next to its parent is refused, naming both.
	out, err := checkOutput(t, pipelineYAML(s, name, dsn, []string{"public.t_part", "public.t_part_1"}, ""))
	if err == nil || !strings.Contains(out, "t_part_1") || !strings.Contains(out, "is a partition of public.t_part") {
		t.Fatalf("check accepted a partition listed next to its parent (%v):\n%s", err, out)
	}
}

// TestPostgresGeneratedColumnsWarned: PostgreSQL before 18 does not publish generated
// columns; they used to vanish from the records without a word. check warns, naming table and
// column and what to do, and so does the startup log.
func TestPostgresGeneratedColumnsWarned(t *testing.T) {
	s, _, dsn, _ := setup(t, 3*time.Minute, "cdcd_gen", `CREATE TABLE gen (id int PRIMARY KEY, price int, doubled int GENERATED ALWAYS AS (price * 2) STORED)`)
	name := uniqueName("gen")
	yaml := pipelineYAML(s, name, dsn, []string{"public.gen"}, "")
	out, err := checkOutput(t, yaml)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "warn") || !strings.Contains(out, "public.gen") || !strings.Contains(out, "doubled") || !strings.Contains(out, "publish_generated_columns") {
		t.Fatalf("check does not warn about generated column doubled of public.gen:\n%s", out)
	}
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)
	if logs := d.Logs(); !strings.Contains(logs, "doubled") {
		t.Fatalf("the startup log does not mention generated column doubled:\n%s", logs)
	}
}

// TestPostgresCompositeColumnFailsCheck: a composite-type column passed check and then stopped
// run at the table's first change. check now fails on it (and on any column type the decoder
// cannot carry), naming the column and the type.
func TestPostgresCompositeColumnFailsCheck(t *testing.T) {
	s, ctx, dsn, db := setup(t, 2*time.Minute, "cdcd_composite", `CREATE TYPE money_amount AS (amount numeric, currency text);
		CREATE TABLE comp (id int PRIMARY KEY, price money_amount, prices money_amount[])`)
	name := uniqueName("comp")
	yaml := pipelineYAML(s, name, dsn, []string{"public.comp"}, "")
	out, err := checkOutput(t, yaml)
	if err == nil {
		t.Fatalf("check passed a table with composite-type columns:\n%s", out)
	}
	for _, want := range []string{"public.comp.price", "public.comp.prices", "composite"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// The fix the message offers: a publication whose column list leaves them out (PG 15+).
	if _, err := db.Exec(ctx, fmt.Sprintf(`CREATE PUBLICATION %s FOR TABLE comp (id)`, name)); err != nil {
		t.Fatal(err)
	}
	if out, err := checkOutput(t, yaml); err != nil || strings.Contains(out, "public.comp.price") {
		t.Fatalf("check still fails on columns the publication's column list leaves out (%v):\n%s", err, out)
	}
}
