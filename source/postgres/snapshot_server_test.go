package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/jackc/pgx/v5"
)

// TestSnapshotPartitionedKeylessBounded: a partitioned table without a key is read by page
// ranges; the parent has no pages of its own (pg_relation_size 0), so it used to be planned as
// one chunk holding every partition (479 MiB in one Kafka transaction). Its chunks are now
// planned by its partitions' sizes and every read stays within chunk_max_bytes. Runs when
// CDCD_TEST_PG_DSN is set.
func TestSnapshotPartitionedKeylessBounded(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("CDCD_TEST_PG_DSN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	name := fmt.Sprintf("cdcd_parts_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP TABLE IF EXISTS `+name) })
	for _, q := range []string{
		`CREATE TABLE ` + name + ` (a int NOT NULL, pad text NOT NULL) PARTITION BY RANGE (a)`,
		`CREATE TABLE ` + name + `_1 PARTITION OF ` + name + ` FOR VALUES FROM (0) TO (1000)`,
		`CREATE TABLE ` + name + `_2 PARTITION OF ` + name + ` FOR VALUES FROM (1000) TO (2000)`,
		`CREATE TABLE ` + name + `_3 PARTITION OF ` + name + ` FOR VALUES FROM (2000) TO (10000)`,
		`INSERT INTO ` + name + ` SELECT g % 3000, repeat('p', 200) FROM generate_series(0, 29999) g`,
		`ANALYZE ` + name,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const chunkBytes = 256 << 10
	src := New(Config{Pipeline: "parts", DSN: dsn, Snapshot: source.SnapshotConfig{Mode: snapshot.Never, ChunkRows: 100000, ChunkBytes: chunkBytes}})
	w, err := src.openSnapshotWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	table := "public." + name
	task := &snapshot.Task{Table: table}
	byPage, _, err := w.Describe(ctx, task)
	if err != nil || !byPage {
		t.Fatalf("Describe: by page %v, %v", byPage, err)
	}
	task.ByPage = true
	rows, reads, most := 0, 0, int64(0)
	for {
		hi, end, err := w.Plan(ctx, task, 100000)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := w.Read(ctx, task, snapshot.Chunk{Lo: task.Next, Hi: hi}, chunkBytes)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		var size int64
		for _, r := range rd.Rows {
			size += int64(len(r.Vals[1].Str)) + 4
		}
		most = max(most, size)
		rows += len(rd.Rows)
		if end {
			break
		}
		task.Next = hi
		if reads > 1000 {
			t.Fatal("more than 1000 chunks")
		}
	}
	if rows != 30000 {
		t.Fatalf("read %d rows in %d chunks, want 30000", rows, reads)
	}
	if most > chunkBytes*5/4 {
		t.Fatalf("a chunk held %d bytes of rows (%d chunks); chunk_max_bytes is %d", most, reads, chunkBytes)
	}
}

// TestSnapshotKeylessToastBounded: page ranges bound a keyless table's heap, not its TOASTed
// values: 40 rows of 100 kB fit in one page and were read as one 4 MB chunk. A read of a page
// range now stops at a page boundary once it holds chunk_max_bytes, and the rest of the range
// is the next chunk.
func TestSnapshotKeylessToastBounded(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("CDCD_TEST_PG_DSN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	name := fmt.Sprintf("cdcd_ktoast_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP TABLE IF EXISTS `+name) })
	for _, q := range []string{
		`CREATE TABLE ` + name + ` (a int NOT NULL, body text NOT NULL)`,
		`ALTER TABLE ` + name + ` ALTER COLUMN body SET STORAGE EXTERNAL`,
		// One row per page (fillfactor cannot go lower than 10): pages are where a read can stop.
		`INSERT INTO ` + name + ` SELECT g, repeat(md5(g::text), 3200) || repeat('x', 800) FROM generate_series(1, 40) g`,
		`ANALYZE ` + name,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const chunkBytes = 256 << 10
	src := New(Config{Pipeline: "ktoast", DSN: dsn, Snapshot: source.SnapshotConfig{Mode: snapshot.Never, ChunkRows: 100000, ChunkBytes: chunkBytes}})
	w, err := src.openSnapshotWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	task := &snapshot.Task{Table: "public." + name, ByPage: true}
	if _, _, err := w.Describe(ctx, task); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	reads, most := 0, 0
	for {
		hi, end, err := w.Plan(ctx, task, 100000)
		if err != nil {
			t.Fatal(err)
		}
		lo := task.Next
		for {
			rd, err := w.Read(ctx, task, snapshot.Chunk{Lo: lo, Hi: hi}, chunkBytes)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			size := 0
			for _, r := range rd.Rows {
				size += len(r.Vals[1].Str)
				seen[r.Vals[0].Int]++
			}
			most = max(most, size)
			if rd.Rest == nil {
				break
			}
			lo = rd.Rest
			if reads > 200 {
				t.Fatal("more than 200 reads")
			}
		}
		if end {
			break
		}
		task.Next = hi
	}
	if len(seen) != 40 {
		t.Fatalf("read %d distinct rows, want 40", len(seen))
	}
	for a, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", a, n)
		}
	}
	if most > chunkBytes+110_000 {
		t.Fatalf("a read held %d bytes of rows (%d reads); chunk_max_bytes is %d", most, reads, chunkBytes)
	}
}

// TestSnapshotPartitionedKeylessToastBounded: a partitioned keyless table is read by the same
// page range from every partition; its TOASTed values were not bounded (the read of the
// parent came partition after partition, so it could not stop at a tuple and resume there):
// 3 partitions of 40 rows of 100 kB, one row per page, were read as chunks of several MB.
// A read now stops once it holds chunk_max_bytes, in whichever partition, and the rest of
// the range (that partition from the tuple on, then the partitions after it) is the next
// chunk; the part before the stop reads back the same rows, as after a restart.
func TestSnapshotPartitionedKeylessToastBounded(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("CDCD_TEST_PG_DSN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	name := fmt.Sprintf("cdcd_ptoast_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP TABLE IF EXISTS `+name) })
	for _, q := range []string{
		`CREATE TABLE ` + name + ` (a int NOT NULL, body text NOT NULL) PARTITION BY RANGE (a)`,
		`CREATE TABLE ` + name + `_1 PARTITION OF ` + name + ` FOR VALUES FROM (0) TO (100)`,
		`CREATE TABLE ` + name + `_2 PARTITION OF ` + name + ` FOR VALUES FROM (100) TO (200)`,
		`CREATE TABLE ` + name + `_3 PARTITION OF ` + name + ` FOR VALUES FROM (200) TO (300)`,
		`ALTER TABLE ` + name + `_1 ALTER COLUMN body SET STORAGE EXTERNAL`,
		`ALTER TABLE ` + name + `_2 ALTER COLUMN body SET STORAGE EXTERNAL`,
		`ALTER TABLE ` + name + `_3 ALTER COLUMN body SET STORAGE EXTERNAL`,
		// One row per page: pages are where a read can stop.
		`INSERT INTO ` + name + ` SELECT p * 100 + g, repeat(md5(g::text), 3200) || repeat('x', 800) FROM generate_series(1, 40) g, generate_series(0, 2) p`,
		`ANALYZE ` + name,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const chunkBytes = 256 << 10
	src := New(Config{Pipeline: "ptoast", DSN: dsn, Snapshot: source.SnapshotConfig{Mode: snapshot.Never, ChunkRows: 100000, ChunkBytes: chunkBytes}})
	w, err := src.openSnapshotWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	task := &snapshot.Task{Table: "public." + name}
	byPage, _, err := w.Describe(ctx, task)
	if err != nil || !byPage {
		t.Fatalf("Describe: by page %v, %v", byPage, err)
	}
	task.ByPage = true
	ids := func(rd *snapshot.Read) []int64 {
		var out []int64
		for _, r := range rd.Rows {
			out = append(out, r.Vals[0].Int)
		}
		return out
	}
	seen := map[int64]int{}
	stoppedIn := map[string]bool{} // partitions where a read stopped early
	reads, most := 0, 0
	for {
		hi, end, err := w.Plan(ctx, task, 100000)
		if err != nil {
			t.Fatal(err)
		}
		lo := task.Next
		for {
			rd, err := w.Read(ctx, task, snapshot.Chunk{Lo: lo, Hi: hi}, chunkBytes)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			size := 0
			for _, r := range rd.Rows {
				size += len(r.Vals[1].Str)
				seen[r.Vals[0].Int]++
			}
			most = max(most, size)
			if rd.Rest == nil {
				break
			}
			if len(rd.Rest) == 5 {
				stoppedIn[rd.Rest[3]] = true
			}
			// The engine then narrows this chunk to [lo, Rest): read again, it holds the same rows.
			again, err := w.Read(ctx, task, snapshot.Chunk{Lo: lo, Hi: rd.Rest}, 1<<40)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(ids(again)), fmt.Sprint(ids(rd)); got != want {
				t.Fatalf("chunk [%q, %q) read back %s, first read %s", lo, rd.Rest, got, want)
			}
			lo = rd.Rest
			if reads > 400 {
				t.Fatal("more than 400 reads")
			}
		}
		if end {
			break
		}
		task.Next = hi
	}
	if len(seen) != 120 {
		t.Fatalf("read %d distinct rows, want 120", len(seen))
	}
	for a, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", a, n)
		}
	}
	if most > chunkBytes+110_000 {
		t.Fatalf("a read held %d bytes of rows (%d reads); chunk_max_bytes is %d", most, reads, chunkBytes)
	}
	if len(stoppedIn) != 3 {
		t.Fatalf("reads stopped early in %d partitions, want all 3 (%d reads)", len(stoppedIn), reads)
	}
}

// A partitioned table's page-range bound reads back as written; other bounds are not one.
func TestPartBoundRoundTrip(t *testing.T) {
	for _, b := range []partBound{{lo: "", hi: "", oid: 16384, tid: "0,4"}, {lo: "12,5", hi: "40", oid: 1, tid: "13,1"}} {
		got, ok := parsePartBound(b.bound())
		if !ok || got != b {
			t.Errorf("parsePartBound(%q) = %+v, %v", b.bound(), got, ok)
		}
	}
	for _, s := range [][]string{nil, {"12"}, {"12,5"}, {"partition", "", "", "0", "1,1"}, {"partition", "", "", "x", "1,1"}, {"partition", "", "", "7", ""}, {"p", "", "", "7", "1,1"}} {
		if b, ok := parsePartBound(s); ok {
			t.Errorf("parsePartBound(%q) = %+v, want no bound", s, b)
		}
	}
}
