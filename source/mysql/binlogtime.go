package mysql

import (
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// The source reads the binlog with go-mysql's ParseTime on: formatting every DATETIME and
// TIMESTAMP as text, only for cdcd to parse it back, was a large part of decoding a row. But
// go-mysql builds a DATETIME's time.Time with time.Date, which normalises an invalid day
// (ALLOW_INVALID_DATES) into a real date: 2021-02-30 arrives as 2021-03-02, and 2021-04-31
// as 2021-05-01. Such a value must be published as a zero date is (see decode.go), never as
// a made-up date. A normalised day is always one of the first three of March or the first of
// May, July, October or December (maybeNormalised); a rows event holding such a DATETIME
// is decoded again with ParseTime off (binlogText), whose text keeps the day as written.

// maybeNormalised reports whether a DATETIME go-mysql gave as time.Time may be an invalid
// day time.Date moved into the next month.
func maybeNormalised(t time.Time) bool {
	_, m, d := t.Date()
	switch m {
	case time.March:
		return d <= 3 // from February 29, 30 or 31
	case time.May, time.July, time.October, time.December:
		return d == 1 // from April, June, September or November 31
	}
	return false
}

// datetimeColumns returns the indexes of a table's DATETIME columns (nil: none).
func datetimeColumns(specs []ColumnSpec) []int {
	var cols []int
	for i := range specs {
		if specs[i].Type == gomysql.MYSQL_TYPE_DATETIME2 || specs[i].Type == gomysql.MYSQL_TYPE_DATETIME {
			cols = append(cols, i)
		}
	}
	return cols
}

// binlogText decodes a rows event again with ParseTime off. It keeps the raw
// FORMAT_DESCRIPTION event and the raw TABLE_MAP events of tables with DATETIME columns, and
// parses them only when a rows event needs it (the TABLE_MAP each time: go-mysql's parser
// forgets table maps at the end of each statement).
type binlogText struct {
	fde    []byte
	maps   map[uint64][]byte
	parser *replication.BinlogParser // nil until needed, and after a new FORMAT_DESCRIPTION
}

// format keeps a FORMAT_DESCRIPTION event (whole, as read). It starts each binlog file, and
// no transaction spans files, so the TABLE_MAP events kept so far are dropped (table ids
// change as tables are reopened: the map does not grow with them).
func (bt *binlogText) format(raw []byte) {
	bt.fde, bt.parser = raw, nil
	clear(bt.maps)
}

// tableMap keeps the TABLE_MAP event (whole, as read) of a table with DATETIME columns.
func (bt *binlogText) tableMap(id uint64, raw []byte) {
	if bt.maps == nil {
		bt.maps = map[uint64][]byte{}
	}
	bt.maps[id] = raw
}

// fix replaces the rows of re, decoded with ParseTime on from the event raw (whole, as read),
// by the same rows decoded with ParseTime off when one of its DATETIME columns (cols) holds
// a value that may be a normalised invalid day.
func (bt *binlogText) fix(re *replication.RowsEvent, raw []byte, cols []int) error {
	if len(cols) == 0 || !needsText(re.Rows, cols) {
		return nil
	}
	if bt.fde == nil || bt.maps[re.TableID] == nil {
		return errors.New("no FORMAT_DESCRIPTION or TABLE_MAP event was read before this rows event")
	}
	if bt.parser == nil {
		p := replication.NewBinlogParser()
		p.SetParseTime(false)
		p.SetTimestampStringLocation(time.UTC)
		if _, err := p.Parse(bt.fde); err != nil {
			return fmt.Errorf("FORMAT_DESCRIPTION event: %w", err)
		}
		bt.parser = p
	}
	if _, err := bt.parser.Parse(bt.maps[re.TableID]); err != nil {
		return fmt.Errorf("TABLE_MAP event: %w", err)
	}
	ev, err := bt.parser.Parse(raw)
	if err != nil {
		return err
	}
	text, ok := ev.Event.(*replication.RowsEvent)
	if !ok || len(text.Rows) != len(re.Rows) {
		return fmt.Errorf("decoded again, the rows event gave %T", ev.Event)
	}
	re.Rows, re.SkippedColumns = text.Rows, text.SkippedColumns
	return nil
}

func needsText(rows [][]any, cols []int) bool {
	for _, row := range rows {
		for _, c := range cols {
			if c < len(row) {
				if t, ok := row[c].(time.Time); ok && maybeNormalised(t) {
					return true
				}
			}
		}
	}
	return false
}
