package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/source/mysql"
	gomysqlpkg "github.com/go-mysql-org/go-mysql/mysql"
)

const mysqlTypesDDL = `CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), dec52 DECIMAL(5,2),
  f FLOAT, d DOUBLE,
  b1 BIT(1), b12 BIT(12), b64 BIT(64), bo BOOL,
  y YEAR, dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
  tm TIME, tm6 TIME(6),
  c CHAR(5), vc VARCHAR(20), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1, vbin VARCHAR(10) CHARACTER SET binary,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('small','medium','large'), st SET('a','b','c'),
  j JSON, g GEOMETRY,
  gen INT AS (id * 2) VIRTUAL, gens INT AS (i + 1) PERSISTENT,
  zd DATE NULL
)`

const mysqlTypesInsert = `INSERT INTO t (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec65, dec52, f, d, b1, b12, b64, bo,
	  y, dt, dtm, dtm3, dtm6, ts, ts6, tm, tm6, c, vc, tx, l1, vbin, bn, vb, bl, e, st, j, g, zd) VALUES
	  (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
	   '-12345678901234567890123456789012345.123456789012345678901234567890', '-999.99', 1.5, -2.25e300, b'1', b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111', TRUE,
	   2155, '9999-12-31', '1000-01-01 00:00:00', '2024-02-29 23:59:59.123', '1970-01-01 00:00:00.000001', '2038-01-19 08:44:07', '2001-02-03 09:35:06.654321',
	   '-838:59:59', '100:00:00.000001', 'ab', 'héllo wörld 😀', 'long text', 'café', x'00ff', x'0102', x'00ff10', x'deadbeef',
	   'medium', 'a,c', '{"k": [1, 2.5, "x"]}', ST_GeomFromText('POINT(1 2)'), '0000-00-00'),
	  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

// TestMySQLTypesRoundTrip: every supported MariaDB type goes from the binlog through Avro and
// the registry to the value the server holds. The server's time_zone is not UTC, so a
// TIMESTAMP read as local time would show.
func TestMySQLTypesRoundTrip(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 3*time.Minute, "cdcd_types", mysqlTypesDDL)
	name := uniqueName("mytypes")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, ""))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "SET time_zone = '+05:30'")
	mysqlExec(t, conn, "SET sql_mode = 'ALLOW_INVALID_DATES'")
	mysqlExec(t, conn, mysqlTypesInsert)

	c := newConsumer(t, s, name+"."+db+".t")
	recs := c.read(t, 2, 60*time.Second, time.Second)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2\n%s", len(recs), d.Logs())
	}
	// TIME is a duration, not a time of day: microseconds in a long (Debezium's MicroTime), which
	// standard Avro readers take; it was time-micros, which they refuse below 0 or past 24 h.
	want := map[string]string{
		"1": "b1=true b12=0aaa b64=ffffffffffffffff bi=-9223372036854775808 biu=18446744073709551615/1 bl=deadbeef bn=01020000 bo=1 c=ab " +
			"d=-2.25e+300 dec52=-99999/100 dec65=-1234567890123456789012345678901234512345678901234567890123456789/100000000000000000000000000000 " +
			"dt=9999-12-31T00:00:00Z dtm=1000-01-01T00:00:00Z dtm3=2024-02-29T23:59:59.123Z dtm6=1970-01-01T00:00:00.000001Z e=medium f=1.5 " +
			"g=0101000000000000000000f03f0000000000000040 gen=2 gens=-2147483647 i=-2147483648 id=1 iu=4294967295 j={\"k\": [1, 2.5, \"x\"]} " +
			"l1=café mi=-8388608 miu=16777215 si=-32768 siu=65535 st=a,c ti=-128 tiu=255 tm=-3020399000000 tm6=360000000001 " +
			"ts=2038-01-19T03:14:07Z ts6=2001-02-03T04:05:06.654321Z tx=long text vb=00ff10 vbin=00ff vc=héllo wörld 😀 y=2155 zd=<nil>",
		"2": "b1=<nil> b12=<nil> b64=<nil> bi=<nil> biu=<nil> bl=<nil> bn=<nil> bo=<nil> c=<nil> d=<nil> dec52=<nil> dec65=<nil> dt=<nil> " +
			"dtm=<nil> dtm3=<nil> dtm6=<nil> e=<nil> f=<nil> g=<nil> gen=4 gens=<nil> i=<nil> id=2 iu=<nil> j=<nil> l1=<nil> mi=<nil> miu=<nil> " +
			"si=<nil> siu=<nil> st=<nil> ti=<nil> tiu=<nil> tm=<nil> tm6=<nil> ts=<nil> ts6=<nil> tx=<nil> vb=<nil> vbin=<nil> vc=<nil> y=<nil> zd=<nil>",
	}
	for _, r := range recs {
		v := c.decode(t, r.Value)
		if op := v["op"]; op != "c" {
			t.Errorf("op %v, want c", op)
		}
		src := v["source"].(map[string]any)
		if src["connector"] != "mysql" || unwrap(src["gtid"]) == nil {
			t.Errorf("source block %v: want connector mysql and a gtid", src)
		}
		after := unwrap(v["after"]).(map[string]any)
		keys := make([]string, 0, len(after))
		for k := range after {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fields := make([]string, len(keys))
		for i, k := range keys {
			fields[i] = k + "=" + show(after[k])
		}
		id := show(after["id"])
		if g := strings.Join(fields, " "); g != want[id] {
			t.Errorf("row %s:\n got %s\nwant %s", id, g, want[id])
		}
	}
}

func show(v any) string {
	v = unwrap(v)
	switch x := v.(type) {
	case []byte:
		return fmt.Sprintf("%x", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%v", v)
}

// TestMySQLSnapshotDecodeMatchesBinlog: the same rows read from the binlog (the source's
// TABLE_MAP shape and decoder) and with SELECT (TableFromCatalog and DecodeText, what a
// snapshot uses) give the same columns and the same values, so both publish the same bytes.
// The reading session's time_zone is not UTC before PrepareSnapshotSession, and the writer's
// is not either; its sql_mode pads CHAR values (PAD_CHAR_TO_FULL_LENGTH) before it.
func TestMySQLSnapshotDecodeMatchesBinlog(t *testing.T) {
	binlogMatchesSelect(t, mysqlTypesDDL, mysqlTypesInsert, 2)
}

// TestMySQLCharsetsMatchSnapshot: text of every character set family, in PAD SPACE and NO PAD
// collations, and latin1 ENUM and SET labels, is the same text from the binlog as from SELECT.
// latin1 was decoded as Windows-1252 (bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D became U+FFFD while
// SELECT gives U+0081 ...), every MariaDB NO PAD collation (ids 1024-2047) was taken for
// UTF-8 ('Ã©' in latin1_swedish_nopad_ci came out as 'é'; ucs2 and utf32 as raw code units),
// and latin1 labels went out as their raw bytes.
func TestMySQLCharsetsMatchSnapshot(t *testing.T) {
	const ddl = `CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  l1 VARCHAR(20) CHARACTER SET latin1, l1np VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_nopad_ci,
  l1c CHAR(8) CHARACTER SET latin1 COLLATE latin1_nopad_bin,
  u2 VARCHAR(20) CHARACTER SET ucs2, u2np VARCHAR(20) CHARACTER SET ucs2 COLLATE ucs2_general_nopad_ci,
  u16 VARCHAR(20) CHARACTER SET utf16, u16le TEXT CHARACTER SET utf16le, u32 VARCHAR(20) CHARACTER SET utf32 COLLATE utf32_general_nopad_ci,
  u8np VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin,
  e ENUM('café','naïve','x') CHARACTER SET latin1, st SET('é','ü','a') CHARACTER SET latin1
)`
	const insert = `INSERT INTO t VALUES
  (1, x'818d8f909d80e9', x'c3a9', 'crème', 'ça ½ 😀', 'Ã©', '😀 ü', 'le 😀', '😀 z', 'é nopad', 'naïve', 'é,a'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
	binlogMatchesSelect(t, ddl, insert, 2)
}

// binlogMatchesSelect writes rows rows with insert into a table t made by ddl and compares
// what the binlog gives with what SELECT gives.
func binlogMatchesSelect(t *testing.T, ddl, insert string, rows int) {
	t.Helper()
	s, ctx, db, dsn, conn := mysqlSetup(t, 2*time.Minute, "cdcd_snapdec", ddl)
	src, err := mysql.New(mysql.Config{Pipeline: "snapdec", DSN: dsn, ServerID: nextServerID(), Tables: []string{db + ".t"}})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []change.Item, 16)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	streaming := make(chan struct{})
	go func() {
		done <- src.Run(sctx, change.Resume{OnStreaming: func(change.Streaming) { close(streaming) }}, out)
	}()
	defer func() { stop(); <-done }()
	select {
	case <-streaming:
	case err := <-done:
		t.Fatalf("source: %v", err)
	}
	mysqlExec(t, conn, "SET time_zone = '-07:00'")
	mysqlExec(t, conn, "SET sql_mode = 'ALLOW_INVALID_DATES'")
	mysqlExec(t, conn, insert)

	binlog := map[string]change.Event{}
	var tbl *change.Table
	for len(binlog) < rows {
		select {
		case chunk := <-out:
			for _, it := range chunk {
				if it.Commit == nil {
					if it.Event.Err != nil {
						t.Fatalf("binlog row: %v", it.Event.Err)
					}
					tbl = it.Event.Table
					binlog[fmt.Sprint(it.Event.After[0].Int)] = it.Event
				}
			}
		case err := <-done:
			t.Fatalf("source: %v", err)
		case <-ctx.Done():
			t.Fatalf("only %d rows from the binlog", len(binlog))
		}
	}

	reader := mysqlConn(t, ctx, strings.TrimSuffix(s.mysqlDSN, "/")+"/"+db)
	mysqlExec(t, reader, "SET time_zone = '+09:00'")
	// A server whose sql_mode pads CHAR values and reads backslashes as text must not change
	// what a snapshot reads (a snapshot session inherits the global sql_mode).
	mysqlExec(t, reader, "SET SESSION sql_mode = 'PAD_CHAR_TO_FULL_LENGTH,NO_BACKSLASH_ESCAPES,ANSI_QUOTES'")
	if err := mysql.PrepareSnapshotSession(reader); err != nil {
		t.Fatal(err)
	}
	ctbl, specs, err := mysql.TableFromCatalog(reader, db, "t")
	if err != nil {
		t.Fatal(err)
	}
	if !ctbl.SameShape(tbl) {
		for i := range tbl.Columns {
			if i < len(ctbl.Columns) && tbl.Columns[i] != ctbl.Columns[i] {
				t.Errorf("column %d: binlog %+v, catalog %+v", i, tbl.Columns[i], ctbl.Columns[i])
			}
		}
		t.Fatalf("catalog shape differs from the binlog's: keys %v / %v", ctbl.KeyColumns, tbl.KeyColumns)
	}
	r, err := reader.Execute("SELECT * FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range r.RowDatas {
		var vals []change.Value
		b := []byte(row)
		for i := range specs {
			raw, isNull, n, err := gomysqlpkg.LengthEncodedString(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[n:]
			if isNull {
				raw = nil
			} else if raw == nil {
				raw = []byte{}
			}
			v, err := mysql.DecodeText(&specs[i], ctbl.Columns[i].Kind, raw)
			if err != nil {
				t.Fatalf("column %s: %v", specs[i].Name, err)
			}
			vals = append(vals, v)
		}
		ev, ok := binlog[fmt.Sprint(vals[0].Int)]
		if !ok {
			t.Fatalf("row %d not in the binlog", vals[0].Int)
		}
		for i := range vals {
			a, w := vals[i], ev.After[i]
			if a.State != w.State || a.Int != w.Int || a.Uint != w.Uint || a.Float != w.Float || a.Str != w.Str || string(a.Bytes) != string(w.Bytes) {
				t.Errorf("row %d column %s: SELECT gives %+v, the binlog %+v", vals[0].Int, specs[i].Name, a, w)
			}
		}
	}
}

// TestMySQLInvalidDatetimeDays: DATETIME days that do not exist (sql_mode
// ALLOW_INVALID_DATES) are published as null in a nullable column, in inserts and in an
// update's new row, never as the real date go-mysql's parsed time would make of them
// (2021-02-30 as 2021-03-02); a real 2021-03-02, which looks the same once parsed, stays a
// date.
func TestMySQLInvalidDatetimeDays(t *testing.T) {
	s, _, db, dsn, conn := mysqlSetup(t, 2*time.Minute, "cdcd_baddays", "CREATE TABLE t (id INT PRIMARY KEY, d DATETIME(3) NULL, ts TIMESTAMP(6) NULL)")
	name := uniqueName("baddays")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".t"}, ""))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "SET time_zone = '+05:30'")
	mysqlExec(t, conn, "SET sql_mode = 'ALLOW_INVALID_DATES'")
	mysqlExec(t, conn, "INSERT INTO t VALUES (1, '2021-02-30 10:00:00.5', '2021-03-02 15:30:00.000001'), (2, '2021-03-02 10:00:00.5', NULL)")
	mysqlExec(t, conn, "UPDATE t SET d = '2024-04-31 00:00:00' WHERE id = 2")

	c := newConsumer(t, s, name+"."+db+".t")
	recs := c.read(t, 3, 60*time.Second, time.Second)
	var got []string
	for _, r := range recs {
		v := c.decode(t, r.Value)
		row := func(img string) string {
			m, ok := unwrap(v[img]).(map[string]any)
			if !ok {
				return "-"
			}
			return fmt.Sprintf("id=%s d=%s ts=%s", show(m["id"]), show(m["d"]), show(m["ts"]))
		}
		got = append(got, fmt.Sprintf("%v %s / %s", v["op"], row("before"), row("after")))
	}
	sort.Strings(got) // the keys' partitions are read in any order
	want := []string{
		"c - / id=1 d=<nil> ts=2021-03-02T10:00:00.000001Z",
		"c - / id=2 d=2021-03-02T10:00:00.5Z ts=<nil>",
		"u id=2 d=2021-03-02T10:00:00.5Z ts=<nil> / id=2 d=<nil> ts=<nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), d.Logs())
	}
}
