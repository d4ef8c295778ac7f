package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The JDBC sink test runs a sink no one here wrote on cdcd's topics: Debezium's JDBC sink
// connector (3.6.0.Final) in Kafka Connect, reading the Confluent-framed Avro with Apicurio's
// converter, writes a second PostgreSQL database; after inserts, updates, deletes and a
// primary-key change, written by a pipeline in Debezium's modes, the target table must equal
// the source.

const jdbcSinkDir = "testdata/jdbc_sink"

// connectHome installs Kafka Connect, the sink and the converter under ~/.cache (see
// install.sh); a failed install fails the test.
func connectHome(t *testing.T, ctx context.Context) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(cache, "cdcd-test", "connect")
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(jdbcSinkDir, "install.sh"), home).CombinedOutput()
	if err != nil {
		t.Fatalf("installing Kafka Connect and Debezium's JDBC sink failed: %v\n%s", err, out)
	}
	return home
}

const jdbcSourceDDL = `
CREATE TABLE items (
  id bigint PRIMARY KEY, name text, qty int, price numeric(10,2), ratio numeric, born date,
  at timestamp, atz timestamptz, tm time, flag bool, doc jsonb, u uuid, iv interval,
  big text
);
-- under REPLICA IDENTITY FULL an update carries the unchanged TOAST value of big
ALTER TABLE items REPLICA IDENTITY FULL;
-- the default replica identity: a delete carries the old key alone, which the Debezium modes
-- write as Debezium does (the key, null for the rest), and the sink deletes by
CREATE TABLE plain (id int PRIMARY KEY, v text NOT NULL);`

// jdbcCompare is what both tables are compared by: every column as text, in UTC. The sink
// makes a VariableScaleDecimal (an unconstrained numeric in decimal_handling: precise) a
// double precision column, as it does with Debezium's own records, so ratio is compared as
// a double; interval, which it does not map back, is left out.
const jdbcCompare = `SELECT id, name, qty, price::text, ratio::float8::text, born::text, at::text, atz::text, tm::text,
  flag::text, doc::jsonb::text, u::text, md5(big) FROM %s ORDER BY id`

func TestDebeziumJDBCSinkReadsCdcdTopics(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_jdbc_src", jdbcSourceDDL)
	home := connectHome(t, ctx)
	target := newDatabase(t, ctx, s, "cdcd_jdbc_dst")
	tdb := pgConnect(t, ctx, target)

	name := uniqueName("jdbc")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.items", "public.plain"},
		"    time_precision: adaptive_time_microseconds\n    decimal_handling: precise\n"))
	d.waitReady(90 * time.Second)

	run := func(sql string) {
		t.Helper()
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run(`INSERT INTO items VALUES
	  (1, 'a', 1, 12.50, 0.001, '2024-02-29', '2024-05-06 07:08:09.123456', '2024-05-06 07:08:09.123456+02', '23:59:59.999999', true, '{"k": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day'),
	  (2, 'b', NULL, -99999999.99, -123456789012345678901234567890.123456789, '0001-01-01', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '00:00:00', false, 'null', NULL, NULL),
	  (3, 'héllo ✓', 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	  (4, 'gone', 4, 1, 1, '2000-01-01', '2000-01-01', '2000-01-01 00:00:00+00', '12:00:00', true, '{}', NULL, NULL)`)
	run(`UPDATE items SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g) WHERE id = 1`)
	run(`UPDATE items SET name = 'A', qty = qty + 1, price = 0.01 WHERE id = 1`) // big is unchanged TOAST
	run(`UPDATE items SET id = 30 WHERE id = 3`)                                 // a primary-key change: a delete and a create
	run(`DELETE FROM items WHERE id = 4`)
	run(`INSERT INTO plain VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`)
	run(`UPDATE plain SET v = 'A' WHERE id = 1`)
	run(`UPDATE plain SET id = 20 WHERE id = 2`)
	run(`DELETE FROM plain WHERE id = 3`)

	port := strings.TrimPrefix(freePort(t), "127.0.0.1:")
	dir := t.TempDir()
	registryV2 := strings.Replace(s.registry, "/apis/ccompat/v7", "/apis/registry/v2", 1)
	var worker strings.Builder
	fmt.Fprintf(&worker, "bootstrap.servers=%s\nlisteners=http://127.0.0.1:%s\nplugin.path=%s\noffset.storage.file.filename=%s\n",
		s.kafka[0], port, filepath.Join(home, "plugins"), filepath.Join(dir, "offsets"))
	worker.WriteString("consumer.isolation.level=read_committed\nconsumer.auto.offset.reset=earliest\n")
	for _, side := range []string{"key", "value"} {
		fmt.Fprintf(&worker, "%[1]s.converter=io.apicurio.registry.utils.converter.AvroConverter\n"+
			"%[1]s.converter.apicurio.registry.url=%[2]s\n"+
			"%[1]s.converter.apicurio.registry.as-confluent=true\n"+
			"%[1]s.converter.apicurio.registry.use-id=contentId\n"+
			"%[1]s.converter.apicurio.registry.headers.enabled=false\n", side, registryV2)
	}
	cfg, err := pgx.ParseConfig(target)
	if err != nil {
		t.Fatal(err)
	}
	sink := fmt.Sprintf(`name=%s-sink
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
tasks.max=1
topics=%s.public.items,%s.public.plain
connection.url=jdbc:postgresql://%s:%d/%s
connection.username=%s
connection.password=%s
insert.mode=upsert
delete.enabled=true
primary.key.mode=record_key
schema.evolution=basic
use.time.zone=UTC
collection.name.format=${source.table}
`, name, name, name, cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password)
	workerFile, sinkFile := filepath.Join(dir, "worker.properties"), filepath.Join(dir, "sink.properties")
	for f, body := range map[string]string{workerFile: worker.String(), sinkFile: sink} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "connect.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "java", "-Xmx512m", "-cp", filepath.Join(home, "libs", "*"),
		"org.apache.kafka.connect.cli.ConnectStandalone", workerFile, sinkFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			lines := strings.Split(string(b), "\n")
			var errs []string
			for _, l := range lines {
				if strings.Contains(l, "ERROR") || strings.Contains(l, "Exception") || strings.Contains(l, "Caused by") {
					errs = append(errs, l)
				}
			}
			t.Logf("Kafka Connect's errors (of %d log lines):\n%s", len(lines), strings.Join(errs[:min(len(errs), 40)], "\n"))
		}
	})

	source := rowsText(t, ctx, db, fmt.Sprintf(jdbcCompare, "items"))
	const plainCompare = `SELECT id, v FROM plain ORDER BY id`
	plainSource := rowsText(t, ctx, db, plainCompare)
	var got, plainGot []string
	deadline := time.Now().Add(150 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		if state := connectorState(port, name+"-sink"); strings.Contains(state, "FAILED") {
			t.Fatalf("the sink failed: %s", state)
		}
		if tableExists(ctx, tdb, "items") && tableExists(ctx, tdb, "plain") {
			got = rowsText(t, ctx, tdb, fmt.Sprintf(jdbcCompare, "items"))
			plainGot = rowsText(t, ctx, tdb, plainCompare)
			if strings.Join(got, "\n") == strings.Join(source, "\n") && strings.Join(plainGot, "\n") == strings.Join(plainSource, "\n") {
				return
			}
		}
	}
	t.Fatalf("the target tables do not equal the source:\nitems target:\n%s\nitems source:\n%s\nplain target:\n%s\nplain source:\n%s",
		strings.Join(got, "\n"), strings.Join(source, "\n"), strings.Join(plainGot, "\n"), strings.Join(plainSource, "\n"))
}

func rowsText(t *testing.T, ctx context.Context, db *pgx.Conn, q string) []string {
	t.Helper()
	if _, err := db.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out
}

func tableExists(ctx context.Context, db *pgx.Conn, table string) bool {
	var ok bool
	_ = db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
	return ok
}

func connectorState(port, name string) string {
	resp, err := http.Get("http://127.0.0.1:" + port + "/connectors/" + name + "/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Connector struct{ State string }
		Tasks     []struct{ State, Trace string }
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	s := st.Connector.State
	for _, tk := range st.Tasks {
		s += " task " + tk.State
		if tk.Trace != "" {
			s += ": " + tk.Trace[:min(len(tk.Trace), 3000)]
		}
	}
	return s
}
