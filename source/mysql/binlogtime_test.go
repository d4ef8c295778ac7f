package mysql

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// testdata/temporal.events: a FORMAT_DESCRIPTION, TABLE_MAP and WRITE_ROWS event recorded
// from MariaDB 10.11 (binlog_row_metadata FULL, CRC32 checksums, each event after its 4-byte
// little-endian length) for
//
//	CREATE TABLE t (id INT PRIMARY KEY, d0 DATETIME(0) NULL, ... d6 DATETIME(6) NULL,
//	                t0 TIMESTAMP(0) NULL, ... t6 TIMESTAMP(6) NULL)
//
// and one row written under sql_mode ALLOW_INVALID_DATES: d0 '2021-02-30 01:02:03' (invalid),
// d1 '1969-12-31 23:59:59.9', d2 '2024-02-29 23:59:59.12', d3 zero, d4 '2021-04-31
// 00:00:00.1234' (invalid), d5 '1000-01-01 00:00:00.12345', d6 '9999-12-31 23:59:59.999999',
// t0 '1970-01-01 00:00:01', t1 '2038-01-19 03:14:07.1', t2 zero, t3 '2000-01-01
// 00:00:00.123', t4 NULL, t5 and t6 '2020-06-15 12:34:56.12345[6]' (time_zone +00:00).
type temporalFixture struct {
	fde, tableMap, rows []byte
}

func loadTemporal(t testing.TB) temporalFixture { return loadEvents(t, "testdata/temporal.events") }

// loadEvents reads a recorded FORMAT_DESCRIPTION, TABLE_MAP and rows event.
func loadEvents(t testing.TB, name string) temporalFixture {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var evs [][]byte
	for len(b) >= 4 {
		n := binary.LittleEndian.Uint32(b)
		evs = append(evs, b[4:4+n])
		b = b[4+n:]
	}
	if len(evs) != 3 {
		t.Fatalf("%s holds %d events, want 3", name, len(evs))
	}
	return temporalFixture{fde: evs[0], tableMap: evs[1], rows: evs[2]}
}

// syncerParser is a go-mysql parser set up as the source's syncer is, with ParseTime as given.
func syncerParser(parseTime bool) *replication.BinlogParser {
	p := replication.NewBinlogParser()
	p.SetFlavor(gomysql.MariaDBFlavor)
	p.SetParseTime(parseTime)
	p.SetTimestampStringLocation(time.UTC)
	return p
}

// mustParse parses raw events, in order, with p.
func mustParse(t testing.TB, p *replication.BinlogParser, raws ...[]byte) []*replication.BinlogEvent {
	t.Helper()
	evs := make([]*replication.BinlogEvent, len(raws))
	for i, raw := range raws {
		ev, err := p.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	return evs
}

// temporalCols is how many columns the fixture's table has: id, d0..d6, t0..t6.
const temporalCols = 15

// rowsEvent returns the fixture's WRITE_ROWS event with its rows replaced by rows (each row
// image: null bitmap, then the values), checksum bytes kept (they are not verified).
func (f temporalFixture) rowsEvent(rows []byte) []byte {
	const prefix = replication.EventHeaderSize + 6 + 2 + 1 + 2 // table id, flags, column count, bitmap
	ev := append(append(append([]byte(nil), f.rows[:prefix]...), rows...), f.rows[len(f.rows)-4:]...)
	binary.LittleEndian.PutUint32(ev[9:], uint32(len(ev))) // event size
	return ev
}

// parseTemporal decodes the rows of rowsEv with a go-mysql parser set up as the source's
// syncer is (parseTime as given), and for parseTime true applies the source's reparse of
// rows events with possibly normalised DATETIME values (binlogText).
func parseTemporal(t testing.TB, f temporalFixture, parseTime bool, rowsEv []byte) ([]ColumnSpec, [][]any) {
	t.Helper()
	evs := mustParse(t, syncerParser(parseTime), f.fde, f.tableMap, rowsEv)
	tm, rows := evs[1].Event.(*replication.TableMapEvent), evs[2].Event.(*replication.RowsEvent)
	specs, err := SpecsFromTableMap(tm, gomysql.MariaDBFlavor)
	if err != nil {
		t.Fatal(err)
	}
	if parseTime {
		var bt binlogText
		bt.format(f.fde)
		bt.tableMap(tm.TableID, f.tableMap)
		if err := bt.fix(rows, rowsEv, datetimeColumns(specs)); err != nil {
			t.Fatal(err)
		}
	}
	return specs, rows.Rows
}

// assertSameValues decodes every value of both row sets with DecodeBinlog, for the column as
// nullable and as NOT NULL, and fails on any difference in value or error.
func assertSameValues(t *testing.T, specs []ColumnSpec, text, parsed [][]any) {
	t.Helper()
	if len(text) != len(parsed) {
		t.Fatalf("%d rows as text, %d parsed", len(text), len(parsed))
	}
	fails := 0
	for r := range text {
		for i := range specs {
			for _, nullable := range []bool{true, false} {
				s := specs[i]
				s.Nullable = nullable
				col, err := s.Column()
				if err != nil {
					t.Fatal(err)
				}
				a, errA := DecodeBinlog(&s, col.Kind, text[r][i])
				b, errB := DecodeBinlog(&s, col.Kind, parsed[r][i])
				if !equalValue(a, b) || (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
					t.Errorf("row %d column %s (nullable %v): text %q gives %+v, %v; parsed %v (%T) gives %+v, %v",
						r, s.Name, nullable, text[r][i], a, errA, parsed[r][i], parsed[r][i], b, errB)
					if fails++; fails > 20 {
						t.FailNow()
					}
				}
			}
		}
	}
}

// TestBinlogTimeRecorded: the recorded row decodes to the same change.Values with go-mysql's
// ParseTime on (time.Time for DATETIME >= 1970 and TIMESTAMP) as with it off (text): zero
// and invalid dates, pre-1970 values, every fsp.
func TestBinlogTimeRecorded(t *testing.T) {
	f := loadTemporal(t)
	specs, text := parseTemporal(t, f, false, f.rows)
	_, parsed := parseTemporal(t, f, true, f.rows)
	assertSameValues(t, specs, text, parsed)
	// The invalid dates are not made-up dates: null in a nullable column.
	for _, c := range []int{1, 5} { // d0 2021-02-30, d4 2021-04-31
		v, err := DecodeBinlog(&specs[c], change.KindTimestamp, parsed[0][c])
		if err != nil || v.State != change.Null {
			t.Errorf("column %s: %+v, %v; want null for an invalid date", specs[c].Name, v, err)
		}
	}
}

// TestBinlogTimeRandom: random DATETIME(0..6) and TIMESTAMP(0..6) values (valid, invalid
// days, zero month or day, zero dates, before 1970, NULL) encoded as the server writes them
// decode to the same change.Values both ways.
func TestBinlogTimeRandom(t *testing.T) {
	f := loadTemporal(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	for batch := 0; batch < 20; batch++ {
		var rows []byte
		for r := 0; r < 500; r++ {
			rows = appendRandomRow(rows, rnd, int32(batch*500+r))
		}
		ev := f.rowsEvent(rows)
		specs, text := parseTemporal(t, f, false, ev)
		_, parsed := parseTemporal(t, f, true, ev)
		assertSameValues(t, specs, text, parsed)
	}
}

// appendRandomRow appends one row image of the fixture's table.
func appendRandomRow(b []byte, rnd *rand.Rand, id int32) []byte {
	var nulls uint16
	at := len(b)
	b = append(b, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(id))
	for dec := 0; dec <= 6; dec++ {
		if rnd.IntN(20) == 0 {
			nulls |= 1 << (1 + dec)
			continue
		}
		b = appendDatetime2(b, randomDatetime(rnd, dec))
	}
	for dec := 0; dec <= 6; dec++ {
		if rnd.IntN(20) == 0 {
			nulls |= 1 << (8 + dec)
			continue
		}
		var sec uint32
		switch rnd.IntN(10) {
		case 0: // zero
		case 1:
			sec = rnd.Uint32() // up to 2106 (MariaDB 11.5+)
		default:
			sec = 1 + rnd.Uint32N(1<<31-1)
		}
		b = binary.BigEndian.AppendUint32(b, sec)
		b = appendFrac(b, dec, truncFrac(rnd.IntN(1_000_000), dec))
	}
	binary.LittleEndian.PutUint16(b[at:], nulls)
	return b
}

type datetimeParts struct{ y, m, d, h, mi, s, frac, dec int }

func randomDatetime(rnd *rand.Rand, dec int) datetimeParts {
	p := datetimeParts{h: rnd.IntN(24), mi: rnd.IntN(60), s: rnd.IntN(60), frac: truncFrac(rnd.IntN(1_000_000), dec), dec: dec}
	switch rnd.IntN(10) {
	case 0:
		p.y = 1000 + rnd.IntN(9000)
	case 1:
		p.y = 1900 + rnd.IntN(140)
	default:
		p.y = 1970 + rnd.IntN(100)
	}
	p.m, p.d = 1+rnd.IntN(12), 1+rnd.IntN(31) // about one in 30 an invalid day (ALLOW_INVALID_DATES)
	switch rnd.IntN(30) {
	case 0:
		p = datetimeParts{frac: p.frac, dec: dec} // zero date (with fraction: as the server keeps it)
	case 1:
		p.m = 0
	case 2:
		p.d = 0
	case 3: // the first days of a month after a short one: what an invalid date normalises to
		p.m, p.d = []int{3, 5, 7, 10, 12}[rnd.IntN(5)], 1+rnd.IntN(3)
	}
	return p
}

func truncFrac(frac, dec int) int {
	unit := 1
	for i := dec; i < 6; i++ {
		unit *= 10
	}
	return frac / unit * unit
}

// appendDatetime2 encodes a DATETIME2 value as MySQL 5.6.4+ and MariaDB write it.
func appendDatetime2(b []byte, p datetimeParts) []byte {
	ymd := int64(p.y*13+p.m)<<5 | int64(p.d)
	hms := int64(p.h)<<12 | int64(p.mi)<<6 | int64(p.s)
	v := uint64(ymd<<17|hms) + 0x8000000000
	b = append(b, byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	return appendFrac(b, p.dec, p.frac)
}

func appendFrac(b []byte, dec, frac int) []byte {
	switch dec {
	case 1, 2:
		return append(b, byte(frac/10000))
	case 3, 4:
		return binary.BigEndian.AppendUint16(b, uint16(frac/100))
	case 5, 6:
		return append(b, byte(frac>>16), byte(frac>>8), byte(frac))
	}
	return b
}

// TestMaybeNormalised: every invalid day go-mysql's time.Date turns into a real date is
// caught by maybeNormalised.
func TestMaybeNormalised(t *testing.T) {
	for _, y := range []int{1970, 2000, 2023, 2024, 2100, 9999} {
		for m := 1; m <= 12; m++ {
			for d := 1; d <= 31; d++ {
				if d <= int(daysIn(int64(y), int64(m))) {
					continue
				}
				got := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				if !maybeNormalised(got) {
					t.Errorf("%04d-%02d-%02d becomes %v, not caught", y, m, d, got)
				}
			}
		}
	}
}

// TestStreamInvalidDatetimeDay: the stream, fed the recorded events as the source's syncer
// parses them (ParseTime on), publishes the invalid DATETIME days as null (the columns are
// nullable), not as the dates go-mysql normalises them to, and the valid values exactly.
func TestStreamInvalidDatetimeDay(t *testing.T) {
	f := loadTemporal(t)
	evs := mustParse(t, syncerParser(true), f.fde, f.tableMap, f.rows)
	schema := string(evs[1].Event.(*replication.TableMapEvent).Schema)
	evs[2].Header.LogPos = 1200
	run := func(table string) []change.Item {
		src, err := New(Config{Pipeline: "p", Tables: []string{table}, HeartbeatInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan []change.Item, 16)
		gs, _ := parseGTIDs("mariadb", "0-1-10")
		st := &stream{src: src, out: out, tables: src.tables, byID: map[uint64]*tableVersion{}, flavor: "mariadb", gset: gs, lastEmit: time.Now(), csumLen: 4}
		feed(t, st, &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.ROTATE_EVENT},
			Event: &replication.RotateEvent{NextLogName: []byte("mariadb-bin.000003"), Position: 4}})
		feed(t, st, gtidEv(1042, 11), evs[0], evs[1], evs[2], xidEv(1231))
		return drain(st, out)
	}
	for _, it := range run("other.t") { // a table not captured: its TABLE_MAP and rows pass by
		if it.Commit == nil {
			t.Fatalf("a table not captured gave %+v", it.Event)
		}
	}
	var after []change.Value
	for _, it := range run(schema + ".t") {
		if it.Commit == nil {
			if it.Event.Err != nil {
				t.Fatal(it.Event.Err)
			}
			after = it.Event.After
		}
	}
	if len(after) != temporalCols {
		t.Fatalf("got %d values, want %d", len(after), temporalCols)
	}
	want := map[int]change.Value{
		1:  change.NullValue,          // d0 2021-02-30 01:02:03
		3:  {Int: 1709251199120000},   // d2 2024-02-29 23:59:59.12
		5:  change.NullValue,          // d4 2021-04-31 00:00:00.1234
		7:  {Int: 253402300799999999}, // d6 9999-12-31 23:59:59.999999
		9:  {Int: 2147483647100000},   // t1 2038-01-19 03:14:07.1
		14: {Int: 1592224496123456},   // t6 2020-06-15 12:34:56.123456
	}
	for i, w := range want {
		if !equalValue(after[i], w) {
			t.Errorf("column %d: %+v, want %+v", i, after[i], w)
		}
	}
}

// TestBinlogTextAgain: binlogText decodes rows events of the same table again and again
// (go-mysql's parser forgets its table maps after each statement's last rows event).
func TestBinlogTextAgain(t *testing.T) {
	f := loadTemporal(t)
	p := syncerParser(true)
	var bt binlogText
	var cols []int
	for i := 0; i < 3; i++ {
		var re *replication.RowsEvent
		evs := [][]byte{f.tableMap, f.rows} // one FORMAT_DESCRIPTION per binlog file
		if i == 0 {
			evs = append([][]byte{f.fde}, evs...)
		}
		for _, ev := range mustParse(t, p, evs...) {
			raw := ev.RawData
			switch e := ev.Event.(type) {
			case *replication.FormatDescriptionEvent:
				bt.format(raw)
			case *replication.TableMapEvent:
				specs, err := SpecsFromTableMap(e, gomysql.MariaDBFlavor)
				if err != nil {
					t.Fatal(err)
				}
				cols = datetimeColumns(specs)
				bt.tableMap(e.TableID, raw)
			case *replication.RowsEvent:
				re = e
			}
		}
		if err := bt.fix(re, f.rows, cols); err != nil {
			t.Fatalf("rows event %d: %v", i, err)
		}
		if s, ok := re.Rows[0][1].(string); !ok || s != "2021-02-30 01:02:03" {
			t.Fatalf("rows event %d: d0 is %v, want the text 2021-02-30 01:02:03", i, re.Rows[0][1])
		}
	}
}

// TestTimeValueYearRange: a time value beyond the years the text can hold is a zero date
// (null in a nullable column), never a date; the ends of the range are dates.
func TestTimeValueYearRange(t *testing.T) {
	s := ColumnSpec{Name: "d", Type: gomysql.MYSQL_TYPE_DATETIME2, Nullable: true}
	for _, c := range []struct {
		t    time.Time
		null bool
	}{
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), false},
		{time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		v, err := DecodeBinlog(&s, change.KindTimestamp, c.t)
		if err != nil || (v.State == change.Null) != c.null {
			t.Errorf("%v: %+v, %v; want null %v", c.t, v, err, c.null)
		}
	}
}

// TestBinlogTextForgetsMapsPerFile: a new binlog file (its FORMAT_DESCRIPTION) drops the
// TABLE_MAP events kept for the last one, so a rows event needing text without its TABLE_MAP
// is an error, not a decode against a stale table map.
func TestBinlogTextForgetsMapsPerFile(t *testing.T) {
	f := loadTemporal(t)
	evs := mustParse(t, syncerParser(true), f.fde, f.tableMap, f.rows)
	tm, re := evs[1].Event.(*replication.TableMapEvent), evs[2].Event.(*replication.RowsEvent)
	var bt binlogText
	bt.format(f.fde)
	bt.tableMap(tm.TableID, f.tableMap)
	bt.format(f.fde)
	if len(bt.maps) != 0 {
		t.Fatalf("%d TABLE_MAP events kept across a new binlog file", len(bt.maps))
	}
	if err := bt.fix(re, f.rows, []int{1}); err == nil {
		t.Fatal("a rows event without its TABLE_MAP decoded again")
	}
}
