package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/go-mysql-org/go-mysql/client"
)

// mysqlHammer runs writers that update, delete and re-insert random keys of [0, keys) of
// table (v from the sequence ver, taken once the row is locked) until ctx ends.
func mysqlHammer(ctx context.Context, t *testing.T, dsn, table string, writers, keys int, seed uint64) func() int64 {
	t.Helper()
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		conn, err := mysql.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(w int, conn *client.Conn) {
			defer wg.Done()
			defer conn.Close()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				if _, err := conn.Execute("BEGIN"); err != nil {
					return
				}
				ok := true
				for i := 0; i < 1+rng.IntN(4) && ok; i++ {
					k := rng.IntN(keys)
					var q string
					switch rng.IntN(10) {
					case 0, 1:
						q = fmt.Sprintf("DELETE FROM %s WHERE k = %d", table, k)
					case 2, 3:
						q = fmt.Sprintf("INSERT INTO %s VALUES (%d, NEXTVAL(ver)) ON DUPLICATE KEY UPDATE v = NEXTVAL(ver)", table, k)
					default:
						q = fmt.Sprintf("UPDATE %s SET v = NEXTVAL(ver) WHERE k = %d", table, k)
					}
					_, err := conn.Execute(q)
					ok = err == nil
				}
				if ok {
					if _, err := conn.Execute("COMMIT"); err == nil {
						n.Add(1)
					}
				} else {
					_, _ = conn.Execute("ROLLBACK")
				}
			}
		}(w, conn)
	}
	var once sync.Once
	return func() int64 {
		once.Do(wg.Wait)
		return n.Load()
	}
}

func mysqlKV(t *testing.T, conn *client.Conn, table string) map[int64]int64 {
	t.Helper()
	r, err := conn.Execute("SELECT k, v FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[int64]int64, r.RowNumber())
	for i := 0; i < r.RowNumber(); i++ {
		k, _ := r.GetInt(i, 0)
		v, _ := r.GetInt(i, 1)
		want[k] = v
	}
	return want
}

// TestMySQLSnapshotUnderWritersAndSIGKILL: a MariaDB table is snapshotted through the same
// engine as Postgres while writers change its keys, and cdcd is killed in the middle: the
// latest record per key equals the table, no key goes back in time, no published chunk is read
// again. Then `cdcd snapshot --where` re-reads part of it through the signal table. Chunks are
// placed in the binlog by the position MariaDB reports for their snapshot (the default there).
func TestMySQLSnapshotUnderWritersAndSIGKILL(t *testing.T) {
	mysqlSnapshotUnderWriters(t, "", 200_000, 4096)
}

// TestMySQLSnapshotWatermarksUnderWritersAndSIGKILL is the same with snapshot_consistency
// watermarks, the mode MySQL servers use: each chunk is placed in the binlog by a low
// watermark row written before its snapshot, and nothing server-specific. There is no MySQL
// server in the local stack; MariaDB commits in binlog order as MySQL does with
// binlog_order_commits=ON, which is what the mode relies on.
func TestMySQLSnapshotWatermarksUnderWritersAndSIGKILL(t *testing.T) {
	mysqlSnapshotUnderWriters(t, "watermarks", 100_000, 1024)
}

// mysqlSnapshotUnderWriters runs the snapshot of a table of rows rows under writers, with a
// SIGKILL midway and an on-demand snapshot at the end, with source.mysql.snapshot_consistency
// set to consistency (empty: left out, auto), and compares the topic with the table.
func mysqlSnapshotUnderWriters(t *testing.T, consistency string, rows, chunk int) {
	s, ctx, db, dsn, conn := mysqlSetup(t, 8*time.Minute, "cdcd_mysnap", "CREATE SEQUENCE ver;\nCREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL)")
	mysqlExec(t, conn, fmt.Sprintf("INSERT INTO kv SELECT seq, 0 FROM seq_0_to_%d", rows-1))
	name := uniqueName("mysnap")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, ""),
		"    snapshot: never\n", fmt.Sprintf("    snapshot: {mode: initial, chunk_size: %d, signal_key: %s}\n", chunk, testSignalKey), 1)
	want := "binlog_snapshot" // what auto picks on MariaDB
	if consistency != "" {
		yaml = strings.Replace(yaml, "        tables: [", "        snapshot_consistency: "+consistency+"\n        tables: [", 1)
		want = consistency
	}
	d := startMySQLDaemon(t, yaml)

	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	writes := mysqlHammer(wctx, t, dsn, "kv", 2, rows+rows/10, loggedSeed(t, "writers"))
	waitFor(t, d, "half of the snapshot", 3*time.Minute, func() bool { return metricOrZero(d, "cdcd_snapshot_rows_total") >= float64(rows/2) })
	d.stop(syscall.SIGKILL)
	d.restart()
	waitFor(t, d, "the snapshot to finish", 4*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	if !strings.Contains(d.Logs(), `msg="snapshot resumes"`) {
		t.Fatalf("the restarted run did not resume the snapshot\n%s", d.Logs())
	}
	// An on-demand snapshot of part of the table, through the signal table.
	t.Log(strings.TrimSpace(runCLI(t, "snapshot", "--config", d.cfg, "--pipeline", name, "--table", db+".kv", "--where", "k < 1000")))
	waitFor(t, d, "the requested snapshot", 2*time.Minute, func() bool { return strings.Count(d.Logs(), `msg="snapshot finished"`) == 2 })
	time.Sleep(300 * time.Millisecond)
	stopWriters()
	t.Logf("writers committed %d transactions", writes())

	// Every table snapshot of both runs, the requested one included, read with the mode.
	logs := d.Logs()
	if n, other := strings.Count(logs, `msg="snapshot consistency"`), strings.Count(logs, "consistency="+want); n < 2 || other != n {
		t.Fatalf("%d snapshot consistency lines, %d naming consistency=%s\n%s", n, other, want, logs)
	}
	r, err := conn.Execute("SELECT COUNT(*) FROM cdcd_signal WHERE kind = 'low'")
	if err != nil {
		t.Fatal(err)
	}
	lows, _ := r.GetInt(0, 0)
	if (lows > 0) != (want == "watermarks") {
		t.Fatalf("%d low watermark rows in the signal table with consistency %s", lows, want)
	}

	kv := mysqlKV(t, conn, "kv")
	recs := readSnapTopic(t, s, name+"."+db+".kv", len(kv), 3*time.Minute)
	reads := checkAgainstKV(t, kv, recs, func(k int64) int {
		if k < 1000 {
			return 2
		}
		return 1
	})
	t.Logf("%d records, %d snapshot reads, %d rows in the table, %d low watermarks", len(recs), reads, len(kv), lows)
	if reads < rows/2 {
		t.Fatalf("only %d snapshot reads of %d rows", reads, rows)
	}
}

// TestMySQLSnapshotBinlogParity: every supported MariaDB type gives the same key bytes, value
// schema and after image from a snapshot read and from the binlog.
func TestMySQLSnapshotBinlogParity(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_mypar", mysqlTypesDDL+";\nALTER TABLE t ADD COLUMN touch INT NOT NULL DEFAULT 0")
	mysqlExec(t, conn, "SET time_zone = '+05:30'")
	mysqlExec(t, conn, "SET sql_mode = 'ALLOW_INVALID_DATES'")
	mysqlExec(t, conn, mysqlTypesInsert)
	name := uniqueName("mypar")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, ""),
		"    snapshot: never\n", "    snapshot: initial\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	mysqlExec(t, conn, "UPDATE t SET touch = 1")

	c := newConsumer(t, s, name+"."+db+".t")
	recs := c.read(t, 4, time.Minute, time.Second)
	checkParity(t, c, recs, 2, "touch")
}

// mysqlShapes are the MariaDB tables of TestMySQLSnapshotKeyShapesUnderWritersAndSIGKILL.
func mysqlShapes(t *testing.T) []snapShape {
	labels := []string{"zz", "b", "yy", "a"} // ENUM order differs from text order
	return []snapShape{{
		table: "bits", rows: 12000,
		ddl:  "CREATE TABLE bits (k BIT(16) PRIMARY KEY, v BIGINT NOT NULL)",
		fill: "INSERT INTO bits SELECT seq, 0 FROM seq_0_to_11999",
		kv:   "SELECT k + 0, v FROM bits",
		key:  func(n int) string { return strconv.Itoa(n) }, where: func(n int) string { return fmt.Sprintf("k = %d", n) },
		keyOf: func(k map[string]any) int64 {
			var n int64
			for _, b := range unwrap(k["k"]).([]byte) {
				n = n<<8 | int64(b)
			}
			return n
		},
	}, {
		table: "floats", rows: 12000,
		ddl:  "CREATE TABLE floats (k FLOAT PRIMARY KEY, v BIGINT NOT NULL)",
		fill: "INSERT INTO floats SELECT seq / 8, 0 FROM seq_0_to_11999",
		kv:   "SELECT CAST(k * 8 AS SIGNED), v FROM floats",
		key:  func(n int) string { return fmt.Sprintf("%d / 8", n) }, where: func(n int) string { return fmt.Sprintf("k = %d / 8", n) },
		keyOf: func(k map[string]any) int64 { return int64(math.Round(float64(unwrap(k["k"]).(float32)) * 8)) },
	}, {
		table: "comp", rows: 12000,
		ddl:   "CREATE TABLE comp (a INT, b VARCHAR(8), v BIGINT NOT NULL, PRIMARY KEY (a, b))",
		fill:  "INSERT INTO comp SELECT seq DIV 100, CONCAT('b', seq MOD 100), 0 FROM seq_0_to_11999",
		kv:    "SELECT a * 100 + CAST(SUBSTRING(b, 2) AS SIGNED), v FROM comp",
		key:   func(n int) string { return fmt.Sprintf("%d, 'b%d'", n/100, n%100) },
		where: func(n int) string { return fmt.Sprintf("a = %d AND b = 'b%d'", n/100, n%100) },
		keyOf: func(k map[string]any) int64 {
			b, _ := strconv.Atoi(strings.TrimPrefix(unwrap(k["b"]).(string), "b"))
			return toInt64(t, k["a"])*100 + int64(b)
		},
	}, {
		table: "enums", rows: 12000,
		ddl:   "CREATE TABLE enums (e ENUM('zz', 'b', 'yy', 'a') NOT NULL, i INT NOT NULL, v BIGINT NOT NULL, PRIMARY KEY (e, i))",
		fill:  "INSERT INTO enums SELECT 1 + seq MOD 4, seq DIV 4, 0 FROM seq_0_to_11999",
		kv:    "SELECT (e + 0 - 1) + 4 * i, v FROM enums",
		key:   func(n int) string { return fmt.Sprintf("'%s', %d", labels[n%4], n/4) },
		where: func(n int) string { return fmt.Sprintf("e = '%s' AND i = %d", labels[n%4], n/4) },
		keyOf: func(k map[string]any) int64 {
			return int64(slices.Index(labels, unwrap(k["e"]).(string))) + 4*toInt64(t, k["i"])
		},
	}}
}

// TestMySQLSnapshotKeyShapesUnderWritersAndSIGKILL: MariaDB tables keyed by BIT(16), FLOAT,
// (INT, VARCHAR) and (ENUM, INT), and one without a key (accepted, not written), are
// snapshotted in small chunks (one at a time, so the kill lands mid-snapshot) while writers change the keyed ones, and cdcd is killed midway.
// Per keyed table the latest record per key equals the table and no key goes back in time;
// the keyless table's rows arrive once each.
func TestMySQLSnapshotKeyShapesUnderWritersAndSIGKILL(t *testing.T) {
	shapes := mysqlShapes(t)
	ddl := "CREATE SEQUENCE ver;\nCREATE TABLE nokey (a INT NOT NULL, pad VARCHAR(40) NOT NULL);\nINSERT INTO nokey SELECT seq MOD 100, MD5(seq) FROM seq_0_to_9999"
	const nokeyRows = 10000
	total := nokeyRows
	for _, sh := range shapes {
		ddl += ";\n" + sh.ddl + ";\n" + sh.fill
		total += sh.rows
	}
	s, ctx, db, dsn, conn := mysqlSetup(t, 6*time.Minute, "cdcd_mykshapes", ddl)
	tables := []string{db + ".nokey"}
	for _, sh := range shapes {
		tables = append(tables, db+"."+sh.table)
	}
	name := uniqueName("mykshapes")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), tables, ""), "    snapshot: never\n",
		"    snapshot: {mode: initial, chunk_size: 100, parallelism: 1, accept_inexact_keyless: ["+db+".nokey]}\n", 1)
	d := startMySQLDaemon(t, yaml)

	upsert := func(sh snapShape, n int) string {
		return "INSERT INTO " + sh.table + " VALUES (" + sh.key(n) + ", %s) ON DUPLICATE KEY UPDATE v = %s"
	}
	conns := make([]*client.Conn, 2)
	for i := range conns {
		conns[i] = mysqlConn(t, ctx, dsn)
	}
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	writes := shapeHammer(wctx, shapes, len(conns), loggedSeed(t, "writers"), upsert, func(w int) (func(string) error, func(bool) bool) {
		c := conns[w]
		if _, err := c.Execute("BEGIN"); err != nil {
			return nil, nil
		}
		exec := func(q string) error {
			_, err := c.Execute(strings.ReplaceAll(q, "%s", "NEXTVAL(ver)"))
			return err
		}
		return exec, func(ok bool) bool {
			if ok {
				_, err := c.Execute("COMMIT")
				return err == nil
			}
			_, _ = c.Execute("ROLLBACK")
			return false
		}
	})
	waitFor(t, d, "a quarter of the snapshot", 3*time.Minute, func() bool { return metricOrZero(d, "cdcd_snapshot_rows_total") >= 0.25*float64(total) })
	d.stop(syscall.SIGKILL)
	d.restart()
	waitFor(t, d, "every table's snapshot", 4*time.Minute, func() bool {
		for _, tb := range tables {
			if countLines(d.Logs(), `msg="snapshot finished"`, "table="+tb+" ") == 0 {
				return false
			}
		}
		return true
	})
	stopWriters()
	t.Logf("writers committed %d transactions", writes())
	if !strings.Contains(d.Logs(), `msg="snapshot resumes"`) {
		t.Fatalf("the restarted run did not resume the snapshot\n%s", d.Logs())
	}
	for _, sh := range shapes {
		// A last change, so the topic is read until the pipeline has caught up.
		r, err := conn.Execute("SELECT NEXTVAL(ver)")
		if err != nil {
			t.Fatal(err)
		}
		sentinel, _ := r.GetInt(0, 0)
		mysqlExec(t, conn, strings.ReplaceAll(upsert(sh, 0), "%s", strconv.FormatInt(sentinel, 10)))
		kv := map[int64]int64{}
		if r, err = conn.Execute(sh.kv); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < r.RowNumber(); i++ {
			k, _ := r.GetInt(i, 0)
			v, _ := r.GetInt(i, 1)
			kv[k] = v
		}
		recs := readSnapTopicBy(t, s, name+"."+db+"."+sh.table, len(kv), sentinel, 2*time.Minute, sh.keyOf)
		reads := checkAgainstKV(t, kv, recs, func(int64) int { return 1 })
		t.Logf("%s: %d records, %d snapshot reads, %d rows", sh.table, len(recs), reads, len(kv))
	}
	c, recs := readKV(t, s, name+"."+db+".nokey", nokeyRows, 2*time.Minute)
	got := map[string]int{}
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
			got[fmt.Sprint(after["a"], "/", after["pad"])]++
		}
	}
	if len(got) != nokeyRows {
		t.Fatalf("nokey: %d distinct rows published, want %d", len(got), nokeyRows)
	}
	for row, n := range got {
		if n != 1 {
			t.Fatalf("nokey row %s published %d times", row, n)
		}
	}
}

// TestMySQLMariaDBTypesParity: MariaDB's UUID, INET4 and INET6 columns are published as the
// text SELECT shows, the same string from a snapshot read and from the stream (whose binlog
// metadata spells them as BINARY(16) and BINARY(4): the stream used to publish raw bytes, and
// the snapshot refused the table), keys included; JSON documents too.
func TestMySQLMariaDBTypesParity(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_myext",
		"CREATE TABLE t (id INT PRIMARY KEY, u UUID, a INET4, b INET6, j JSON, touch INT NOT NULL DEFAULT 0);\n"+
			"CREATE TABLE k (u UUID PRIMARY KEY, a INET4 NOT NULL, touch INT NOT NULL DEFAULT 0)")
	want := map[int][3]any{
		1: {"123e4567-e89b-12d3-a456-426614174000", "192.0.2.1", "2001:db8::1"},
		2: {"f81d4fae-7dec-41d0-a765-00a0c91e6bf6", "0.0.0.0", "::"},
		3: {"01890a5d-ac96-774b-bcce-b302099a8057", "255.255.255.255", "::ffff:192.0.2.1"},
		4: {"00000000-0000-0000-0000-000000000000", nil, "::192.0.2.1"},
		5: {nil, "10.0.0.0", "2001:db8::1:0:0:1"},
		6: {nil, nil, "1:0:0:2::3"},
		7: {nil, nil, "::2"},
		8: {nil, nil, "fe80::1:2:3:4:5"},
	}
	for id, w := range want {
		// A JSON document (MariaDB: LONGTEXT) with key order, whitespace, doubles and escapes
		// that a rewrite would change: the same string from both paths.
		mysqlExec(t, conn, "INSERT INTO t (id, u, a, b, j) VALUES (?, ?, ?, ?, ?)", id, w[0], w[1], w[2],
			fmt.Sprintf(`{"b": %d, "a" :[1.0, 1e2, -0.0],  "u": "\u00e9\n", "é": "✓"}`, id))
	}
	mysqlExec(t, conn, "INSERT INTO k (u, a) VALUES ('123e4567-e89b-12d3-a456-426614174000', '192.0.2.1'), ('ffffffff-ffff-ffff-ffff-ffffffffffff', '0.0.0.1')")
	name := uniqueName("myext")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t", db + ".k"}, ""),
		"    snapshot: never\n", "    snapshot: initial\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshots", 2*time.Minute, func() bool { return strings.Count(d.Logs(), `msg="snapshot finished"`) == 2 })
	mysqlExec(t, conn, "UPDATE t SET touch = 1")
	mysqlExec(t, conn, "UPDATE k SET touch = 1")

	c := newConsumer(t, s, name+"."+db+".t")
	recs := c.read(t, 2*len(want), time.Minute, time.Second)
	checkParity(t, c, recs, len(want), "touch")
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		w := want[toIntAny(after["id"])]
		for i, col := range []string{"u", "a", "b"} {
			if fmt.Sprint(after[col]) != fmt.Sprint(w[i]) && !(w[i] == nil && after[col] == nil) {
				t.Errorf("row %v column %s: got %#v, want %#v", after["id"], col, after[col], w[i])
			}
		}
	}
	kc := newConsumer(t, s, name+"."+db+".k")
	krecs := kc.read(t, 4, time.Minute, time.Second)
	keys := map[string]int{}
	for _, r := range krecs {
		if r.Value == nil {
			continue
		}
		v := kc.decode(t, r.Value)
		keys[string(r.Key)]++
		u := fmt.Sprint(unwrapAll(asMap(v["after"]))["u"])
		if u != "123e4567-e89b-12d3-a456-426614174000" && u != "ffffffff-ffff-ffff-ffff-ffffffffffff" {
			t.Errorf("table k: key column u published as %q", u)
		}
	}
	if len(keys) != 2 {
		t.Errorf("table k: the snapshot read and the update of a row have different key bytes: %d keys for 2 rows", len(keys))
	}
}

func toIntAny(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int32:
		return int(x)
	case int64:
		return int(x)
	}
	return -1
}

// TestMySQLSnapshotTableRenamedAwayAndBack: a table renamed away and back while its snapshot
// runs is missing for a moment; its snapshot used to be abandoned for good at the first
// "table does not exist" (the rest of the table never published). It now looks for the table
// again and reads every row.
func TestMySQLSnapshotTableRenamedAwayAndBack(t *testing.T) {
	const rows = 20000
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_myren", "CREATE TABLE kv (k INT PRIMARY KEY, v BIGINT NOT NULL)")
	mysqlExec(t, conn, fmt.Sprintf("INSERT INTO kv SELECT seq, 0 FROM seq_1_to_%d", rows))
	name := uniqueName("myren")
	yaml := strings.Replace(mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".kv"}, ""),
		"    snapshot: never\n", "    snapshot: {mode: initial, chunk_size: 100, parallelism: 1}\n", 1)
	d := startMySQLDaemon(t, yaml)
	waitFor(t, d, "the snapshot to start", time.Minute, func() bool { return metricOrZero(d, "cdcd_snapshot_rows_total") >= 200 })
	mysqlExec(t, conn, "RENAME TABLE kv TO kv_away")
	time.Sleep(1500 * time.Millisecond)
	mysqlExec(t, conn, "RENAME TABLE kv_away TO kv")
	waitFor(t, d, "the snapshot to finish", 2*time.Minute, func() bool {
		return strings.Contains(d.Logs(), `msg="snapshot finished"`) || strings.Contains(d.Logs(), `msg="snapshot abandoned`)
	})
	if strings.Contains(d.Logs(), "snapshot abandoned") {
		t.Fatalf("the snapshot was abandoned\n%s", d.Logs())
	}
	recs := readSnapTopic(t, s, name+"."+db+".kv", rows, time.Minute)
	seen := map[int64]bool{}
	for _, r := range recs {
		seen[r.k] = true
	}
	if len(seen) != rows {
		t.Fatalf("%d of %d rows published", len(seen), rows)
	}
}
