// Package integration holds end-to-end tests against the real local stack (make stack-up):
// PostgreSQL, MariaDB, Kafka and the schema registry on 127.0.0.1.
//
// Under `make test` CDCD_TEST_STACK=1 is set and a service that cannot be reached FAILS the
// test. A plain `go test ./...` without it skips these tests, saying how to run them.
package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type stack struct {
	pgDSN    string // a DSN to the postgres database; tests create their own databases
	mysqlDSN string
	kafka    []string
	registry string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// needStack returns the stack's addresses, skipping only when the stack was not requested.
func needStack(t *testing.T) stack {
	t.Helper()
	if os.Getenv("CDCD_TEST_STACK") == "" {
		t.Skip("integration test: run `make test` (or `make stack-up` and set CDCD_TEST_STACK=1)")
	}
	return stack{
		pgDSN:    env("CDCD_TEST_PG_DSN", "postgres://postgres@127.0.0.1:55432/postgres"),
		mysqlDSN: env("CDCD_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:33306)/"),
		kafka:    strings.Split(env("CDCD_TEST_KAFKA", "127.0.0.1:19092"), ","),
		registry: env("CDCD_TEST_REGISTRY", "http://127.0.0.1:18081/apis/ccompat/v7"),
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func pgConnect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres at %s is not reachable (is the stack up? make stack-up): %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newDatabase creates a fresh database for one test and returns its DSN.
func newDatabase(t *testing.T, ctx context.Context, s stack, name string) string {
	t.Helper()
	admin := pgConnect(t, ctx, s.pgDSN)
	if err := dropDatabase(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), s.pgDSN)
		if err == nil {
			err = dropDatabase(context.Background(), c, name)
			c.Close(context.Background())
		}
		if err != nil {
			// Left behind, its slots would keep WAL on the stack's server until the next run.
			t.Errorf("cleaning up: %v", err)
		}
	})
	cfg, err := pgx.ParseConfig(s.pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name)
}

// dropDatabase drops a test's database and the replication slots in it. A pipeline still
// running would reconnect to its slot as soon as its walsender is terminated, and a slot that
// is active can be neither dropped nor left behind (an inactive slot keeps every WAL segment
// from its position on and pins the database), so the database first stops accepting
// connections; then its walsenders are terminated and its slots dropped once released.
func dropDatabase(ctx context.Context, admin *pgx.Conn, name string) error {
	db := pgx.Identifier{name}.Sanitize()
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if !exists {
		return nil
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("closing database %s to new connections: %w", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _ = admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		_, _ = admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
		var left []string
		if err := admin.QueryRow(ctx, `SELECT coalesce(array_agg(slot_name::text), '{}') FROM pg_replication_slots WHERE database = $1`, name).Scan(&left); err != nil {
			return fmt.Errorf("listing the replication slots of database %s: %w", name, err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("database %s: replication slots %v still active after 30 s; drop them with pg_drop_replication_slot", name, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// setup gives a test the stack, a deadline, and a fresh database with ddl applied.
func setup(t *testing.T, timeout time.Duration, database, ddl string) (stack, context.Context, string, *pgx.Conn) {
	t.Helper()
	s := needStack(t)
	ctx := testCtx(t, timeout)
	dsn := newDatabase(t, ctx, s, database)
	db := pgConnect(t, ctx, dsn)
	if ddl != "" {
		if _, err := db.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	return s, ctx, dsn, db
}

// uniqueName names a pipeline (and its slot, publication and topic prefix) for one test run.
// The names are remembered: after a passing run TestMain deletes the topics named after them
// (deleteRunTopics).
func uniqueName(prefix string) string {
	n := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e6)
	runNames.Lock()
	runNames.m[n] = true
	runNames.Unlock()
	return n
}

// runNames are the names uniqueName gave out in this run.
var runNames = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// runTopic reports whether topic is named after one of names: the name is a part of it, after
// the topic's start or a '.', '-' or '_', and before its end or anything but a digit (a name
// ends in digits: "p123.public.t", "cdcd-window.p123.changelog", "_cdcd_fleet.p123",
// "p123p0.public.t", never "p1234.public.t").
func runTopic(topic string, names map[string]bool) bool {
	sep := func(r rune) bool { return r == '.' || r == '-' || r == '_' }
	digit := func(r rune) bool { return r >= '0' && r <= '9' }
	for n := range names {
		for i := 0; ; {
			j := strings.Index(topic[i:], n)
			if j < 0 {
				break
			}
			j += i
			end := j + len(n)
			if (j == 0 || sep(rune(topic[j-1]))) && (end == len(topic) || !digit(rune(topic[end]))) {
				return true
			}
			i = j + 1
		}
	}
	return false
}

// deleteRunTopics deletes the Kafka topics this run's tests made (named after uniqueName's
// names). Left behind, every run adds hundreds of partitions to the stack's broker, whose
// heap then holds them and collects garbage more often: the steady-load tails of a benchmark
// run on the same stack grew with them (bench/README.md, "The stack's leftovers").
func deleteRunTopics(brokers []string) error {
	runNames.Lock()
	names := maps.Clone(runNames.m)
	runNames.Unlock()
	if len(names) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	var del []string
	for _, t := range topics.Names() {
		if runTopic(t, names) {
			del = append(del, t)
		}
	}
	for batch := range slices.Chunk(del, 100) {
		rs, err := adm.DeleteTopics(ctx, batch...)
		if err != nil {
			return fmt.Errorf("deleting topics: %w", err)
		}
		if err := rs.Error(); err != nil {
			return fmt.Errorf("deleting topics: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "integration: deleted the %d Kafka topics of this run's tests (CDCD_TEST_KEEP_TOPICS=1 keeps them)\n", len(del))
	return nil
}

func TestRunTopic(t *testing.T) {
	names := map[string]bool{"wor123": true, "my_ext42": true}
	for topic, want := range map[string]bool{
		"wor123":                        true,
		"wor123.public.orders":          true,
		"cdcd-window.wor123.changelog":  true,
		"_cdcd_fleet.wor123":            true,
		"wor123-dlq":                    true,
		"wor123p0.public.kv":            true, // a test's own suffix after the name
		"my_ext42.inventory.items":      true,
		"wor1234.public.orders":         false, // another run's name that starts the same
		"xwor123.public.orders":         false,
		"_cdcd_offsets":                 false,
		"__consumer_offsets":            false,
		"shop.public.orders":            false,
		"cdcd-window.wor12.wor1234.out": false,
	} {
		if got := runTopic(topic, names); got != want {
			t.Errorf("runTopic(%q) = %v, want %v", topic, got, want)
		}
	}
}
