package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/go-mysql-org/go-mysql/client"
)

// serverDB creates a database on the stack's MariaDB with the statements, and a source whose
// snapshot workers read it with chunks of chunkRows rows (binlog_snapshot: no stream needed).
// It skips the test without the stack.
func serverDB(t *testing.T, chunkRows int, chunkBytes int64, stmts ...string) (context.Context, *Source, *client.Conn, string) {
	t.Helper()
	dsn := os.Getenv("CDCD_TEST_MYSQL_DSN")
	if os.Getenv("CDCD_TEST_STACK") == "" || dsn == "" {
		t.Skip("needs the stack's MariaDB: set CDCD_TEST_STACK=1 and CDCD_TEST_MYSQL_DSN (e.g. root@tcp(127.0.0.1:33306)/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	admin, err := Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	db := fmt.Sprintf("cdcd_snapkeys%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := admin.Execute("CREATE DATABASE " + db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Execute("DROP DATABASE IF EXISTS " + db) })
	if _, err := admin.Execute("USE " + db); err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := admin.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src, err := New(Config{Pipeline: "snapkeys", DSN: strings.TrimSuffix(dsn, "/") + "/" + db, ServerID: 38000,
		Tables: []string{db + ".t"}, Snapshot: source.SnapshotConfig{Mode: snapshot.Never, ChunkRows: chunkRows, ChunkBytes: chunkBytes}})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, src, admin, db
}

// snapshotAll reads table as the engine does (plan a chunk, read it, a read that stops early
// leaves the rest of the range as the next chunk) and returns the rows' keys as the snapshot
// decoded them (fmt of the key columns), and the number of reads. mostRows is set to the most
// rows one read returned. It fails on an error, or
// after more reads than a table of at most maxRows rows can need.
func snapshotAll(t *testing.T, ctx context.Context, src *Source, table string, chunkRows, maxRows int) ([]string, int) {
	keys, reads, _ := snapshotAllMost(t, ctx, src, table, chunkRows, maxRows)
	return keys, reads
}

func snapshotAllMost(t *testing.T, ctx context.Context, src *Source, table string, chunkRows, maxRows int) (keys []string, reads, mostRows int) {
	t.Helper()
	w, err := src.openSnapshotWorker(ctx, ConsistencyBinlogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	task := &snapshot.Task{Table: table}
	byPage, _, err := w.Describe(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	task.ByPage = byPage
	d := w.(*snapWorker).descs[table]
	var next []string
	for {
		hi, end, err := w.Plan(ctx, &snapshot.Task{Table: table, Next: next, ByPage: byPage}, chunkRows)
		if err != nil {
			t.Fatalf("planning after %q: %v", next, err)
		}
		hi = jsonTrip(t, hi) // bounds live in the snapshot state, which is JSON
		lo := next
		for {
			reads++
			if reads > 2*maxRows+4 {
				t.Fatalf("more than %d reads for at most %d rows: the snapshot makes no progress (last bounds %q, %q)", reads-1, maxRows, lo, hi)
			}
			rd, err := w.Read(ctx, task, snapshot.Chunk{Lo: lo, Hi: hi}, src.cfg.Snapshot.ChunkBytes)
			if err != nil {
				t.Fatalf("reading (%q, %q]: %v", lo, hi, err)
			}
			mostRows = max(mostRows, len(rd.Rows))
			for _, r := range rd.Rows {
				if r.Key == "" && !byPage {
					t.Fatalf("a row of a keyed table without its key identity: %v", r.Vals)
				}
			}
			for _, r := range rd.Rows {
				var k []string
				for _, i := range d.table.KeyColumns {
					k = append(k, fmt.Sprint(r.Vals[i].State, r.Vals[i].Int, r.Vals[i].Uint, r.Vals[i].Float, r.Vals[i].Str, r.Vals[i].Bytes))
				}
				if len(k) == 0 {
					k = append(k, fmt.Sprint(len(keys)))
				}
				keys = append(keys, strings.Join(k, "/"))
			}
			if rd.Rest == nil {
				break
			}
			lo = jsonTrip(t, rd.Rest)
		}
		if end {
			return keys, reads, mostRows
		}
		next = hi
	}
}

// jsonTrip is b after a JSON round trip, as a bound in a committed snapshot state.
func jsonTrip(t *testing.T, b []string) []string {
	t.Helper()
	if b == nil {
		return nil
	}
	j, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := json.Unmarshal(j, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func distinct(keys []string) int {
	s := slices.Clone(keys)
	slices.Sort(s)
	return len(slices.Compact(s))
}

// TestSnapshotBitKey: a BIT(8) primary key used to be bounded by its raw bytes in quotes,
// which MariaDB compares as numbers (warning 1292): 51 rows in chunks of 2 ended after 2.
func TestSnapshotBitKey(t *testing.T) {
	ctx, src, _, db := serverDB(t, 2, 1<<20,
		"CREATE TABLE t (k BIT(8) PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO t SELECT seq * 5, seq FROM seq_0_to_50")
	keys, _ := snapshotAll(t, ctx, src, db+".t", 2, 51)
	if len(keys) != 51 || distinct(keys) != 51 {
		t.Fatalf("read %d rows (%d distinct keys), want 51", len(keys), distinct(keys))
	}
}

// TestSnapshotFloatKey: FLOAT keys printed alike with 6 digits used to make the planner
// return the same bound forever; bounds now round-trip exactly.
func TestSnapshotFloatKey(t *testing.T) {
	for typ, extra := range map[string]string{"FLOAT": "(2, 0)", "DOUBLE": "(0.1e0 + 0.2e0, 0)"} {
		t.Run(typ, func(t *testing.T) {
			ctx, src, _, db := serverDB(t, 2, 1<<20,
				"CREATE TABLE t (k "+typ+" PRIMARY KEY, v INT NOT NULL)",
				"INSERT INTO t SELECT 1 + seq * 0.000001, seq FROM seq_0_to_9",
				"INSERT INTO t SELECT -1e36 * seq - 3e37, seq FROM seq_1_to_3",
				"INSERT INTO t VALUES (1.17549435e-38, 0), (0.1, 0), (1e-7, 0), (0.3e0, 0), "+extra)
			keys, _ := snapshotAll(t, ctx, src, db+".t", 2, 18)
			if len(keys) != 18 || distinct(keys) != 18 {
				t.Fatalf("read %d rows (%d distinct keys), want 18", len(keys), distinct(keys))
			}
		})
	}
}

// TestSnapshotChunksEndEarlyOnEveryKeyType: reads that stop at chunk_max_bytes resume after
// the last row read for keys of BIT, FLOAT and a three-column composite key.
func TestSnapshotChunksEndEarlyOnEveryKeyType(t *testing.T) {
	ctx, src, _, db := serverDB(t, 1000, 200,
		"CREATE TABLE t (a BIT(4), b FLOAT, c VARCHAR(8), pad CHAR(60) NOT NULL, PRIMARY KEY (a, b, c))",
		"INSERT INTO t SELECT seq % 3, 1 + (seq % 5) * 0.000001, CONCAT('x', seq % 7), 'p' FROM seq_0_to_104")
	keys, reads := snapshotAll(t, ctx, src, db+".t", 1000, 105)
	if len(keys) != 105 || distinct(keys) != 105 {
		t.Fatalf("read %d rows (%d distinct keys), want 105", len(keys), distinct(keys))
	}
	if reads < 20 {
		t.Fatalf("%d reads: 200-byte chunks of 60-byte rows must end early", reads)
	}
}

// TestSnapshotCompositeKeyUsesIndex: MariaDB 10.11 does not use the primary key for a
// row-constructor comparison (a, b) > (x, y), so every chunk of a composite-key table scanned
// from the table's start (2M rows: 104 s against 4.5 s with one key column). The chunk and
// plan queries must be range scans of the primary key, not scans of the whole index.
func TestSnapshotCompositeKeyUsesIndex(t *testing.T) {
	ctx, src, admin, db := serverDB(t, 100, 1<<20,
		"CREATE TABLE t (a INT, b VARCHAR(16), c BIGINT, v INT NOT NULL, PRIMARY KEY (a, b, c))",
		"INSERT INTO t SELECT seq DIV 1000, CONCAT('b', (seq DIV 10) % 100), seq % 10, seq FROM seq_0_to_49999",
		"ANALYZE TABLE t")
	w, err := src.openSnapshotWorker(ctx, ConsistencyBinlogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sw := w.(*snapWorker)
	d, err := sw.describe(db + ".t")
	if err != nil {
		t.Fatal(err)
	}
	task := &snapshot.Task{Table: db + ".t", Next: []string{"25", "b50", "5"}}
	plan, err := sw.planQuery(task, d, 100)
	if err != nil {
		t.Fatal(err)
	}
	chunk, _, err := sw.chunkQuery(task, d, snapshot.Chunk{Lo: []string{"25", "b50", "5"}, Hi: []string{"25", "b60", "4"}})
	if err != nil {
		t.Fatal(err)
	}
	for q, most := range map[string]int64{plan: 40000, chunk: 1000} {
		r, err := admin.Execute("EXPLAIN " + q)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		typ, _ := r.GetStringByName(0, "type")
		key, _ := r.GetStringByName(0, "key")
		rows, _ := r.GetIntByName(0, "rows")
		if typ != "range" || key != "PRIMARY" || rows > most {
			t.Errorf("%s\nis planned as type=%s key=%s rows=%d; want a range scan of PRIMARY over at most %d of the 50000 rows", q, typ, key, rows, most)
		}
	}
	// And the chunks hold exactly the table.
	keys, _ := snapshotAll(t, ctx, src, db+".t", 5000, 50000)
	if len(keys) != 50000 || distinct(keys) != 50000 {
		t.Fatalf("read %d rows (%d distinct keys), want 50000", len(keys), distinct(keys))
	}
}

// TestSnapshotEnumSetKeys: tables keyed by ENUM or SET (which sort by their number, not their
// text) were read as one unbounded chunk without key identities, so the stream's changes
// were never reconciled with the snapshot's rows. They are chunked by the key's number now.
func TestSnapshotEnumSetKeys(t *testing.T) {
	ctx, src, _, db := serverDB(t, 3, 1<<20,
		"CREATE TABLE t (e ENUM('zz','b','yy','a','m','c','x') NOT NULL, s SET('q','a','z','b') NOT NULL, v INT NOT NULL, PRIMARY KEY (e, s))",
		"INSERT INTO t SELECT 1 + seq % 7, seq DIV 7, seq FROM seq_0_to_111")
	keys, reads, most := snapshotAllMost(t, ctx, src, db+".t", 3, 112)
	if len(keys) != 112 || distinct(keys) != 112 {
		t.Fatalf("read %d rows (%d distinct keys), want 112", len(keys), distinct(keys))
	}
	if reads < 30 || most > 12 {
		t.Fatalf("%d reads of at most %d rows: chunks of 3 rows expected", reads, most)
	}
}

// TestSnapshotKeylessBounded: a MariaDB table without a key was read as one chunk, whatever
// its size (1M rows: 693 MiB). Its reads are now bounded by chunk_max_bytes too.
func TestSnapshotKeylessBounded(t *testing.T) {
	ctx, src, _, db := serverDB(t, 1000, 20_000,
		"CREATE TABLE t (a INT NOT NULL, pad CHAR(200) NOT NULL)",
		"INSERT INTO t SELECT seq % 10, REPEAT('p', 200) FROM seq_0_to_2999",
		"ANALYZE TABLE t")
	keys, reads, most := snapshotAllMost(t, ctx, src, db+".t", 1000, 3000)
	if len(keys) != 3000 {
		t.Fatalf("read %d rows, want 3000", len(keys))
	}
	if most > 20_000/200+1 || reads < 30 {
		t.Fatalf("%d reads, the largest of %d rows of 200 bytes: chunk_max_bytes is 20000", reads, most)
	}
}

// TestSnapshotBinaryKey: BINARY/VARBINARY keys (a UUID in 16 bytes, say) hold bytes that are
// not UTF-8; as raw bytes their bounds did not survive the snapshot state's JSON (a resumed
// snapshot skipped rows). Bounds are hex now.
func TestSnapshotBinaryKey(t *testing.T) {
	ctx, src, _, db := serverDB(t, 7, 1<<20,
		"CREATE TABLE t (k VARBINARY(16) PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO t SELECT UNHEX(LPAD(HEX(seq * 2654435761 % 4294967291), 8, '0')), seq FROM seq_0_to_299")
	keys, _ := snapshotAll(t, ctx, src, db+".t", 7, 300)
	if len(keys) != 300 || distinct(keys) != 300 {
		t.Fatalf("read %d rows (%d distinct keys), want 300", len(keys), distinct(keys))
	}
}

// TestSnapshotEnumKeyUsesIndex: an ENUM compares with a number by its number but the index
// serves no such range; chunk conditions on an ENUM key list its labels instead.
func TestSnapshotEnumKeyUsesIndex(t *testing.T) {
	ctx, src, admin, db := serverDB(t, 100, 1<<20,
		"CREATE TABLE t (e ENUM('zz', 'b', 'yy', 'a') NOT NULL, i INT NOT NULL, PRIMARY KEY (e, i))",
		"INSERT INTO t SELECT 1 + seq MOD 4, seq DIV 4 FROM seq_0_to_39999",
		"ANALYZE TABLE t")
	w, err := src.openSnapshotWorker(ctx, ConsistencyBinlogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sw := w.(*snapWorker)
	d, err := sw.describe(db + ".t")
	if err != nil {
		t.Fatal(err)
	}
	chunk, _, err := sw.chunkQuery(&snapshot.Task{Table: db + ".t"}, d, snapshot.Chunk{Lo: []string{"3", "500"}, Hi: []string{"3", "600"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := admin.Execute("EXPLAIN " + chunk)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", chunk, err)
	}
	typ, _ := r.GetStringByName(0, "type")
	rows, _ := r.GetIntByName(0, "rows")
	if typ != "range" || rows > 1000 {
		t.Fatalf("%s\nis planned as type=%s rows=%d; want a range scan of about 100 rows", chunk, typ, rows)
	}
	if r, err = admin.Execute(strings.Replace(chunk, "SELECT ", "SELECT COUNT(*) FROM (SELECT ", 1) + ") x"); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.GetInt(0, 0); n != 100 {
		t.Fatalf("the chunk (yy/500, yy/600] holds %d rows, want 100", n)
	}
}

// TestSnapshotEveryKeyType: a table keyed by each MariaDB key type is read whole in chunks of
// 3 rows, its bounds going through the snapshot state's JSON between chunks.
func TestSnapshotEveryKeyType(t *testing.T) {
	for typ, expr := range map[string]string{
		"TINYINT":                                "seq - 100",
		"SMALLINT UNSIGNED":                      "seq * 300",
		"MEDIUMINT":                              "seq * -999",
		"INT":                                    "seq * 7919 - 200000",
		"BIGINT UNSIGNED":                        "18446744073709551615 - seq * 3",
		"BIGINT":                                 "-9223372036854775807 + seq",
		"DECIMAL(20, 6)":                         "seq / 7 - 3",
		"FLOAT":                                  "seq / 3",
		"DOUBLE":                                 "seq / 3e0",
		"DATE":                                   "DATE '2024-01-01' + INTERVAL seq DAY",
		"DATETIME(6)":                            "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 1001 MICROSECOND",
		"TIMESTAMP(3)":                           "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 7 SECOND",
		"TIME(2)":                                "SEC_TO_TIME(seq * 3601 - 36000)",
		"YEAR":                                   "1901 + seq",
		"CHAR(8)":                                "CONCAT('k', seq)",
		"VARCHAR(16) COLLATE utf8mb4_general_ci": "CONCAT(ELT(1 + seq % 4, 'a', 'B', 'é', 'Z'), seq)",
		"VARCHAR(16) COLLATE latin1_swedish_ci":  "CONCAT(ELT(1 + seq % 3, 'x', 'Ö', 'y'), seq)",
		"BINARY(4)":                              "UNHEX(LPAD(HEX(seq * 2654435761 % 4294967291), 8, '0'))",
		"VARBINARY(8)":                           "UNHEX(HEX(seq * 40503 + 128))",
		"BIT(1) NOT NULL":                        "seq",
		"BIT(64)":                                "18446744073709551615 - seq * 1000003",
		"ENUM('z', 'a', 'm')":                    "1 + seq % 3",
		"SET('q', 'a', 'z', 'b')":                "seq % 16",
	} {
		t.Run(strings.Fields(typ)[0], func(t *testing.T) {
			rows := 40
			if strings.HasPrefix(typ, "BIT(1)") {
				rows = 2
			} else if strings.HasPrefix(typ, "ENUM") {
				rows = 3
			} else if strings.HasPrefix(typ, "SET") {
				rows = 16
			}
			ctx, src, _, db := serverDB(t, 3, 1<<20,
				"CREATE TABLE t (k "+typ+", v INT NOT NULL, PRIMARY KEY (k))",
				fmt.Sprintf("INSERT INTO t SELECT %s, seq FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_0_to_%d) x", expr, rows-1))
			keys, _ := snapshotAll(t, ctx, src, db+".t", 3, rows)
			if len(keys) != rows || distinct(keys) != rows {
				t.Fatalf("read %d rows (%d distinct keys), want %d", len(keys), distinct(keys), rows)
			}
		})
	}
}
