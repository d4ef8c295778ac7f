package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// filterChanges move rows into and out of region = 'eu' (odd ids start in it).
var filterChanges = []string{
	"UPDATE people SET region = 'eu' WHERE id = 2", // into the filter: an insert
	"UPDATE people SET region = 'us' WHERE id = 1", // out of it: a delete
	"UPDATE people SET v = v + 1 WHERE id = 4",     // outside, stays outside: nothing
	"UPDATE people SET v = v + 1 WHERE id = 3",     // inside, stays inside: an update
	"INSERT INTO people VALUES (100, 'us', 0)",     // nothing
	"INSERT INTO people VALUES (101, 'eu', 0)",     // an insert
	"DELETE FROM people WHERE id = 5",              // a delete
	"DELETE FROM people WHERE id = 6",              // nothing
	"INSERT INTO people VALUES (999, 'eu', 0)",     // the marker the test waits for
}

// checkFilterTopic checks that the topic's latest record per key equals the rows of the table
// that match the filter (wantIDs), and that every record's op is what the filter's semantics
// give.
func checkFilterTopic(t *testing.T, s stack, topic string, wantIDs []int64) {
	t.Helper()
	c := newConsumer(t, s, topic)
	var recs []*kgo.Record
	deadline := time.Now().Add(time.Minute)
	latest := map[int64]string{}
	ops := map[string]int{}
	seen999 := false
	for time.Now().Before(deadline) && !seen999 {
		recs = c.read(t, 1, 5*time.Second, 0)
		if latest[999] != "" {
			// The marker is on one partition: the others may still be behind it.
			seen999 = true
			recs = append(recs, c.read(t, 0, 0, 3*time.Second)...)
		}
		for _, r := range recs {
			id := toInt64(t, c.decode(t, r.Key)["id"])
			if r.Value == nil {
				latest[id] = ""
				ops["tombstone"]++
				continue
			}
			v := c.decode(t, r.Value)
			op := v["op"].(string)
			ops[op]++
			if op == "d" {
				latest[id] = ""
				continue
			}
			latest[id] = fmt.Sprint(unwrapAll(asMap(v["after"]))["region"])
		}
	}
	var got []int64
	for id, region := range latest {
		if region != "" {
			if region != "eu" {
				t.Errorf("key %d: latest record has region %s", id, region)
			}
			got = append(got, id)
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
		t.Errorf("latest records per key: %v, want the rows matching the filter %v", got, wantIDs)
	}
	// 10 reads; inserts 2, 101, 999; updates 3; deletes 1, 5 (each with a tombstone).
	if ops["r"] != 10 || ops["c"] != 3 || ops["u"] != 1 || ops["d"] != 2 || ops["tombstone"] != 2 {
		t.Errorf("ops %v, want r 10, c 3, u 1, d 2, tombstone 2", ops)
	}
}

// TestPrivacyShapeFilterPostgres: shape.<table>.filter on PostgreSQL: the publication cdcd
// creates carries it, the snapshot publishes only matching rows, and updates that move a row
// into or out of the filter are published as an insert or a delete.
func TestPrivacyShapeFilterPostgres(t *testing.T) {
	name := uniqueName("privfilter")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_filter", `CREATE TABLE people (id int PRIMARY KEY, region text, v int);
		ALTER TABLE people REPLICA IDENTITY FULL;
		INSERT INTO people SELECT g, CASE WHEN g % 2 = 1 THEN 'eu' ELSE 'us' END, 0 FROM generate_series(1, 20) g;`)
	extra := "    snapshot: initial\n    shape:\n      public.people:\n        filter: \"region = 'eu'\"\n"
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.people"}, extra))
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	// The filter is in the publication cdcd created (REPLICA IDENTITY FULL makes it safe):
	// the rows it leaves out do not leave the database.
	var filter *string
	if err := db.QueryRow(ctx, "SELECT rowfilter FROM pg_publication_tables WHERE pubname = $1", name).Scan(&filter); err != nil {
		t.Fatal(err)
	}
	if filter == nil || !strings.Contains(*filter, "region") {
		t.Errorf("the publication's row filter is %v, want the shaping's", filter)
	}
	for _, q := range filterChanges {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	checkFilterTopic(t, s, name+".public.people", pgMatching(t, ctx, db))
}

// TestPrivacyShapeFilterMariaDB: the same on MariaDB, from the binlog.
func TestPrivacyShapeFilterMariaDB(t *testing.T) {
	s, _, dbName, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_priv_myfilter", "CREATE TABLE people (id INT PRIMARY KEY, region VARCHAR(8), v INT)")
	mysqlExec(t, conn, "INSERT INTO people SELECT seq, IF(seq % 2 = 1, 'eu', 'us'), 0 FROM seq_1_to_20")
	name := uniqueName("privmyfilter")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{dbName + ".people"},
		"    shape:\n      "+dbName+".people:\n        filter: \"region = 'eu'\"\n"), "    snapshot: never\n", "    snapshot: initial\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	for _, q := range filterChanges {
		mysqlExec(t, conn, q)
	}
	r, err := conn.Execute("SELECT id FROM people WHERE region = 'eu' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := 0; i < r.RowNumber(); i++ {
		id, _ := r.GetInt(i, 0)
		want = append(want, id)
	}
	checkFilterTopic(t, s, name+"."+dbName+".people", want)
}

func pgMatching(t *testing.T, ctx context.Context, db *pgx.Conn) []int64 {
	t.Helper()
	rows, err := db.Query(ctx, "SELECT id::int8 FROM people WHERE region = 'eu' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
