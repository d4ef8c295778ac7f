package mysql

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// benchBinlog is a binlog range holding benchRows small-row inserts into one captured table,
// written once per test binary run.
type benchBinlog struct {
	dsn        string
	table      string
	start, end Token // end: the position after the last transaction
	rows       int
}

// benchRows is how many rows the benchmark binlog holds (CDCD_BENCH_ROWS, default 200000).
var benchRows = 200_000

func init() {
	if n, err := strconv.Atoi(os.Getenv("CDCD_BENCH_ROWS")); err == nil && n >= 1000 {
		benchRows = n / 1000 * 1000
	}
}

// benchServerID gives every replica connection of the run its own server_id: a reused id
// makes the server wait for the previous connection's dump thread to go away.
func benchServerID() uint32 { return 48000 + uint32(time.Now().UnixNano()%1000)*8 + benchIDs.Add(1)%8 }

var benchIDs atomic.Uint32

var (
	benchOnce sync.Once
	benchData benchBinlog
	benchErr  error
)

// needBenchBinlog writes the benchmark's binlog on the stack's MariaDB
// (CDCD_TEST_MYSQL_DSN, as `make bench` and the integration tests set it).
func needBenchBinlog(b *testing.B) benchBinlog {
	dsn := os.Getenv("CDCD_TEST_MYSQL_DSN")
	if dsn == "" {
		b.Skip("needs the stack's MariaDB: set CDCD_TEST_MYSQL_DSN (make stack-up; e.g. root@tcp(127.0.0.1:33306)/)")
	}
	benchOnce.Do(func() { benchData, benchErr = writeBenchBinlog(dsn) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchData
}

func writeBenchBinlog(dsn string) (benchBinlog, error) {
	ctx := context.Background()
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return benchBinlog{}, err
	}
	defer conn.Close()
	db := fmt.Sprintf("cdcd_bench%d", time.Now().UnixNano()%1e6)
	for _, q := range []string{"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".small (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20) NOT NULL, c BIGINT)"} {
		if _, err := conn.Execute(q); err != nil {
			return benchBinlog{}, err
		}
	}
	start, err := currentToken(conn)
	if err != nil {
		return benchBinlog{}, err
	}
	// Transactions of 10 rows, as a busy OLTP table sees them.
	for i := 0; i < benchRows; i += 1000 {
		if _, err := conn.Execute("BEGIN"); err != nil {
			return benchBinlog{}, err
		}
		for j := i; j < i+1000; j += 10 {
			var q strings.Builder
			q.WriteString("INSERT INTO " + db + ".small VALUES ")
			for k := j; k < j+10; k++ {
				if k > j {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,'row %d',%d)", k, k*3, k, int64(k)<<20)
			}
			if _, err := conn.Execute(q.String()); err != nil {
				return benchBinlog{}, err
			}
			if (j+10)%100 == 0 {
				if _, err := conn.Execute("COMMIT"); err != nil {
					return benchBinlog{}, err
				}
				if _, err := conn.Execute("BEGIN"); err != nil {
					return benchBinlog{}, err
				}
			}
		}
		if _, err := conn.Execute("COMMIT"); err != nil {
			return benchBinlog{}, err
		}
	}
	end, err := currentToken(conn)
	if err != nil {
		return benchBinlog{}, err
	}
	return benchBinlog{dsn: dsn, table: db + ".small", start: start, end: end, rows: benchRows}, nil
}

func currentToken(conn *client.Conn) (Token, error) {
	file, pos, err := masterStatus(conn)
	if err != nil {
		return Token{}, err
	}
	gtids, err := variable(conn, "gtid_binlog_pos")
	return Token{Flavor: gomysql.MariaDBFlavor, File: file, Pos: pos, GTIDs: gtids}, err
}

// BenchmarkBinlogCatchUpSource: the source reads and decodes the benchmark binlog into Items
// (rows/s is the source's catch-up speed without Kafka).
func BenchmarkBinlogCatchUpSource(b *testing.B) {
	bb := needBenchBinlog(b)
	endSeq, _ := fileSeq(bb.end.File)
	endTx := txOf(endSeq, bb.end.Pos)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src, err := New(Config{Pipeline: "bench", DSN: bb.dsn, ServerID: benchServerID(), Tables: []string{bb.table}})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan []change.Item, 16)
		done := make(chan error, 1)
		resume := change.Resume{Committed: true, Pos: change.Position{Tx: 1, Resume: bb.start.String()}}
		go func() { done <- src.Run(ctx, resume, out) }()
		events := 0
	read:
		for {
			select {
			case chunk := <-out:
				if os.Getenv("CDCD_BENCH_DEBUG") != "" {
					b.Logf("%v: chunk of %d, %d events before", time.Since(t0), len(chunk), events)
				}
				for _, it := range chunk {
					if it.Commit == nil {
						events++
					} else if it.Commit.Pos.Tx >= endTx || events >= bb.rows {
						if events >= bb.rows {
							change.PutChunk(chunk)
							break read
						}
					}
				}
				change.PutChunk(chunk)
			case err := <-done:
				b.Fatalf("source stopped: %v", err)
			}
		}
		read := time.Since(t0)
		cancel()
		<-done
		if os.Getenv("CDCD_BENCH_DEBUG") != "" {
			b.Logf("read in %v, stopped after %v", read, time.Since(t0))
		}
		if events != bb.rows {
			b.Fatalf("got %d events, want %d", events, bb.rows)
		}
	}
	b.ReportMetric(float64(bb.rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBinlogCatchUpRawSyncer: go-mysql's BinlogSyncer reading the same binlog range with
// no decoding (raw mode): the limit of the transport, the baseline for the source.
func BenchmarkBinlogCatchUpRawSyncer(b *testing.B) {
	benchRawSyncer(b, true)
}

// BenchmarkBinlogCatchUpParsedSyncer: the same with go-mysql parsing every event (rows into
// []any), as the source has it before its own decoding.
func BenchmarkBinlogCatchUpParsedSyncer(b *testing.B) {
	benchRawSyncer(b, false)
}

func benchRawSyncer(b *testing.B, raw bool) {
	bb := needBenchBinlog(b)
	d, err := parseDSN(bb.dsn)
	if err != nil {
		b.Fatal(err)
	}
	endSeq, _ := fileSeq(bb.end.File)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: benchServerID(), Flavor: gomysql.MariaDBFlavor,
			Host: d.host, Port: d.port, User: d.user, Password: d.password, RawModeEnabled: raw, DisableRetrySync: true,
			TimestampStringLocation: time.UTC, DiscardGTIDSet: true})
		st, err := syncer.StartSync(gomysql.Position{Name: bb.start.File, Pos: bb.start.Pos})
		if err != nil {
			b.Fatal(err)
		}
		file := bb.start.File
		for {
			ev, err := st.GetEvent(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if ev.Header.EventType == replication.ROTATE_EVENT {
				if raw { // binlog names have a fixed length; a checksum may follow
					file = string(ev.RawData[replication.EventHeaderSize+8:])[:len(bb.start.File)]
				} else {
					file = string(ev.Event.(*replication.RotateEvent).NextLogName)
				}
			}
			if seq, _ := fileSeq(file); seq > endSeq || seq == endSeq && ev.Header.LogPos >= bb.end.Pos {
				break
			}
		}
		syncer.Close()
	}
	b.ReportMetric(float64(bb.rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

type benchDSN struct {
	host, user, password string
	port                 uint16
}

func parseDSN(dsn string) (benchDSN, error) {
	c, err := Connect(context.Background(), dsn)
	if err != nil {
		return benchDSN{}, err
	}
	c.Close()
	at := strings.LastIndex(dsn, "@tcp(")
	end := strings.LastIndex(dsn, ")")
	user, pw, _ := strings.Cut(dsn[:at], ":")
	host, port, _ := strings.Cut(dsn[at+5:end], ":")
	var p uint16
	fmt.Sscan(port, &p)
	return benchDSN{host: host, user: user, password: pw, port: p}, nil
}

// BenchmarkDecodeRowsEvent: go-mysql decoding a recorded TABLE_MAP and WRITE_ROWS event of 10 rows of
// bench scenario 5's table with a DATETIME(6) column added (testdata/bench.events: BIGINT
// key, INT, 40-byte VARCHAR, TIMESTAMP(6), DATETIME(6), all NOT NULL, values of NOW(6)), and
// the stream decoding each row (decodeRow): "text" runs go-mysql as the source did before
// (ParseTime off: every temporal value formatted as text and parsed back), "parsed" as it
// does now (ParseTime on, rows with a possibly normalised DATETIME decoded again as text),
// "parsed-march1" the same with every DATETIME on March 1 (each event decoded twice: the
// worst case).
func BenchmarkDecodeRowsEvent(b *testing.B) {
	for _, mode := range []struct {
		name              string
		parseTime, march1 bool
	}{{"text", false, false}, {"parsed", true, false}, {"parsed-march1", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			f := loadEvents(b, "testdata/bench.events")
			if mode.march1 {
				f.rows = bytes.Clone(f.rows)
				// Rows of 70 bytes after the 10-byte post-header: null bitmap 1, BIGINT 8, INT 4,
				// VARCHAR(64) 2+40, TIMESTAMP(6) 7, DATETIME(6) 8.
				for r := 0; r < 10; r++ {
					at := replication.EventHeaderSize + 10 + r*70 + 62
					appendDatetime2(f.rows[at:at], datetimeParts{y: 2026, m: 3, d: 1, h: 12, mi: 34, s: 56, frac: 123456, dec: 6})
				}
			}
			p := syncerParser(mode.parseTime)
			tm := mustParse(b, p, f.fde, f.tableMap)[1].Event.(*replication.TableMapEvent)
			tv := buildVersion(tm, gomysql.MariaDBFlavor)
			var bt binlogText
			bt.format(f.fde)
			bt.tableMap(tm.TableID, f.tableMap)
			if tv.err != nil {
				b.Fatal(tv.err)
			}
			rows := 0
			b.ReportAllocs()
			for b.Loop() {
				_, ev := parseTx(b, p, f)
				re := ev.Event.(*replication.RowsEvent)
				if mode.parseTime {
					if err := bt.fix(re, f.rows, tv.datetimes); err != nil {
						b.Fatal(err)
					}
				}
				vals := newRowImages(tv, len(re.Rows))
				for i, row := range re.Rows {
					if _, err := decodeRow(tv, row, vals.image(tv, i)); err != nil {
						b.Fatal(err)
					}
				}
				rows += len(re.Rows)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
		})
	}
}

// BenchmarkStreamRowsEvent: the stream taking transactions of the recorded TABLE_MAP and
// 10-row WRITE_ROWS event (testdata/bench.events) as the source's syncer parses them, from
// the raw events to the Items handed to the pipeline.
func BenchmarkStreamRowsEvent(b *testing.B) {
	f := loadEvents(b, "testdata/bench.events")
	p := syncerParser(true)
	evs := mustParse(b, p, f.fde, f.tableMap)
	fde := evs[0]
	src, err := New(Config{Pipeline: "p", Tables: []string{string(evs[1].Event.(*replication.TableMapEvent).Schema) + ".t"}, HeartbeatInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan []change.Item, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range out {
			change.PutChunk(c)
		}
	}()
	gs, _ := parseGTIDs("mariadb", "0-1-10")
	st := &stream{src: src, out: out, tables: src.tables, byID: map[uint64]*tableVersion{}, flavor: "mariadb", gset: gs, lastEmit: time.Now(), csumLen: 4}
	ctx := context.Background()
	handle := func(ev *replication.BinlogEvent) {
		if err := st.handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	handle(&replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.ROTATE_EVENT},
		Event: &replication.RotateEvent{NextLogName: []byte("mariadb-bin.000003"), Position: 4}})
	handle(fde)
	pos, seq, rows := uint32(1000), uint64(11), 0
	b.ReportAllocs()
	for b.Loop() {
		tm, re := parseTx(b, p, f)
		tm.Header.LogPos, re.Header.LogPos = pos+42+uint32(len(f.tableMap)), pos+42+uint32(len(f.tableMap)+len(f.rows))
		handle(gtidEv(pos+42, seq))
		handle(tm)
		handle(re)
		handle(xidEv(re.Header.LogPos + 31))
		pos, seq = re.Header.LogPos+31, seq+1
		rows += len(re.Event.(*replication.RowsEvent).Rows)
	}
	b.StopTimer()
	_ = st.flush(ctx, true)
	close(out)
	<-done
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

// parseTx parses a transaction's TABLE_MAP and rows event (go-mysql forgets a table map at
// the end of the statement), without allocating beyond what go-mysql does.
func parseTx(b *testing.B, p *replication.BinlogParser, f temporalFixture) (tm, rows *replication.BinlogEvent) {
	tm, err := p.Parse(f.tableMap)
	if err != nil {
		b.Fatal(err)
	}
	if rows, err = p.Parse(f.rows); err != nil {
		b.Fatal(err)
	}
	return tm, rows
}
