package mysql

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Zero and invalid dates (0000-00-00, 2024-02-30, a zero month or day; MySQL stores them
// under ALLOW_INVALID_DATES or without NO_ZERO_DATE) have no calendar value. The policy:
//   - in a nullable column they are published as null (Debezium does the same);
//   - in a NOT NULL column the row is a poison record (on_error decides: stop, or the dead
//     letter topic with the raw text), never a made-up date such as 1970-01-01.
//
// The same applies to rows read by a snapshot, so both paths give the same records.

// zeroDateError marks a zero or invalid date in a NOT NULL column.
type zeroDateError struct{ col, raw string }

func (e *zeroDateError) Error() string {
	return fmt.Sprintf("column %s holds the zero or invalid date %q, which has no calendar value and the column is NOT NULL; fix: make the column nullable (zero dates are then published as null) or update the row to a real date", e.col, e.raw)
}

// DecodeBinlog turns a value go-mysql decoded from a rows event into the column's
// change.Value. go-mysql runs with UseDecimal false (decimals arrive as text) and ParseTime
// true with TimestampStringLocation UTC: DATETIME values from 1970 on with a month and a day
// arrive as time.Time (a UTC wall clock), non-zero TIMESTAMPs as time.Time (an instant);
// zero, pre-1970 and zero-month or zero-day values, and every DATE, TIME and YEAR, arrive as
// text. An invalid day (ALLOW_INVALID_DATES) would arrive as the real date go-mysql
// normalises it to; binlogText.fix gives those rows as text first (see binlogtime.go).
func DecodeBinlog(s *ColumnSpec, kind change.Kind, v any) (change.Value, error) {
	if v == nil {
		return change.NullValue, nil
	}
	if s.Ext != "" {
		switch x := v.(type) {
		case string:
			return extValue(s, []byte(x))
		case []byte:
			return extValue(s, x)
		}
	}
	switch x := v.(type) {
	case int8:
		return decodeInt(s, kind, int64(x), uint64(uint8(x))), nil
	case int16:
		return decodeInt(s, kind, int64(x), uint64(uint16(x))), nil
	case int32:
		u := uint64(uint32(x))
		if s.Type == gomysql.MYSQL_TYPE_INT24 {
			u &= 0xffffff
		}
		return decodeInt(s, kind, int64(x), u), nil
	case int64:
		switch s.Type {
		case gomysql.MYSQL_TYPE_BIT:
			n := (s.bits() + 7) / 8
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(x))
			return bitValue(kind, b[8-n:]), nil
		case gomysql.MYSQL_TYPE_ENUM:
			return enumValue(s, x)
		case gomysql.MYSQL_TYPE_SET:
			return setValue(s, uint64(x)), nil
		}
		return decodeInt(s, kind, x, uint64(x)), nil
	case time.Time:
		return timeValue(s, x)
	case int:
		return change.Value{Int: int64(x)}, nil // YEAR
	case float32:
		return change.Value{Float: float64(x)}, nil
	case float64:
		return change.Value{Float: x}, nil
	case string:
		return decodeString(s, kind, x, true)
	case []byte:
		return decodeBytes(s, kind, x, true)
	case *replication.JsonDiff:
		return change.Value{State: change.Undecodable, Str: x.String()}, fmt.Errorf(
			"column %s: a partial JSON update (binlog_row_value_options=PARTIAL_JSON) carries only the change, not the document; fix: SET GLOBAL binlog_row_value_options = '' on the server", s.Name)
	}
	return change.Value{State: change.Undecodable, Str: fmt.Sprint(v)}, fmt.Errorf("column %s: unexpected binlog value %T for type %d", s.Name, v, s.Type)
}

// DecodeText turns a column value read with SELECT over the text protocol (a connection
// with character_set_results utf8mb4 and time_zone '+00:00') into the change.Value the
// binlog gives for it. raw nil is SQL NULL.
func DecodeText(s *ColumnSpec, kind change.Kind, raw []byte) (change.Value, error) {
	if raw == nil {
		return change.NullValue, nil
	}
	text := string(raw)
	if s.Ext != "" {
		return extTextValue(s, text)
	}
	bad := func(err error) (change.Value, error) {
		return change.Value{State: change.Undecodable, Str: text}, fmt.Errorf("column %s: %q: %w", s.Name, text, err)
	}
	switch s.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		if s.Unsigned {
			u, err := strconv.ParseUint(text, 10, 64)
			if err != nil {
				return bad(err)
			}
			return decodeInt(s, kind, int64(u), u), nil
		}
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return bad(err)
		}
		return decodeInt(s, kind, i, uint64(i)), nil
	case gomysql.MYSQL_TYPE_YEAR:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return bad(err)
		}
		return change.Value{Int: i}, nil
	case gomysql.MYSQL_TYPE_FLOAT:
		f, err := strconv.ParseFloat(text, 32)
		if err != nil {
			return bad(err)
		}
		return change.Value{Float: float64(float32(f))}, nil
	case gomysql.MYSQL_TYPE_DOUBLE:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return bad(err)
		}
		return change.Value{Float: f}, nil
	case gomysql.MYSQL_TYPE_BIT:
		n := (s.bits() + 7) / 8
		b := raw
		if len(b) < n { // left-pad, as the binlog's fixed width
			b = append(make([]byte, n-len(b)), b...)
		}
		return bitValue(kind, b), nil
	case gomysql.MYSQL_TYPE_ENUM:
		return change.Value{Str: text}, nil
	case gomysql.MYSQL_TYPE_SET:
		return change.Value{Str: text}, nil
	case gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_GEOMETRY:
		return decodeBytes(s, kind, raw, false)
	}
	return decodeString(s, kind, text, false)
}

func decodeInt(s *ColumnSpec, kind change.Kind, i int64, u uint64) change.Value {
	if kind == change.KindUint64 {
		return change.Value{Uint: u}
	}
	if s.Unsigned {
		return change.Value{Int: int64(u)}
	}
	return change.Value{Int: i}
}

func bitValue(kind change.Kind, b []byte) change.Value {
	if kind == change.KindBool {
		if len(b) > 0 && b[len(b)-1] != 0 {
			return change.Value{Int: 1}
		}
		return change.Value{Int: 0}
	}
	return change.Value{Bytes: append([]byte(nil), b...)}
}

// enumValue maps a binlog ENUM index to its label; 0 is the empty string MySQL stores for an
// invalid value, as SELECT shows it.
func enumValue(s *ColumnSpec, idx int64) (change.Value, error) {
	switch {
	case idx == 0:
		return change.Value{Str: ""}, nil
	case idx > 0 && int(idx) <= len(s.Values):
		return change.Value{Str: s.Values[idx-1]}, nil
	}
	return change.Value{State: change.Undecodable, Str: strconv.FormatInt(idx, 10)}, fmt.Errorf(
		"column %s: ENUM index %d is beyond the %d labels in the binlog's metadata", s.Name, idx, len(s.Values))
}

// setValue spells a SET bitmask as SELECT does: the labels in definition order, joined by
// commas.
func setValue(s *ColumnSpec, mask uint64) change.Value {
	var b strings.Builder
	for i, label := range s.Values {
		if i < 64 && mask&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(label)
		}
	}
	return change.Value{Str: b.String()}
}

// decodeBytes handles values that arrive as bytes: BLOB/TEXT and GEOMETRY from the binlog,
// and every string-ish column read with SELECT.
func decodeBytes(s *ColumnSpec, kind change.Kind, b []byte, fromBinlog bool) (change.Value, error) {
	switch {
	case s.Type == gomysql.MYSQL_TYPE_GEOMETRY:
		// MySQL's internal format: a 4-byte SRID, then WKB. cdcd publishes the WKB.
		if len(b) < 4 {
			return change.Value{State: change.Undecodable, Str: fmt.Sprintf("%x", b)}, fmt.Errorf("column %s: geometry value of %d bytes is shorter than its SRID", s.Name, len(b))
		}
		return change.Value{Bytes: append([]byte(nil), b[4:]...)}, nil
	case kind == change.KindJSON:
		return decodeString(s, kind, string(b), fromBinlog) // an empty binlog document is []byte{}
	case kind == change.KindBytes:
		n := s.fixedBytes()
		out := make([]byte, max(len(b), n))
		copy(out, b) // BINARY(n): the binlog strips trailing zero bytes; pad them back
		return change.Value{Bytes: out}, nil
	}
	if !fromBinlog {
		if !utf8.Valid(b) {
			return change.Value{State: change.Undecodable, Str: strconv.Quote(string(b))}, fmt.Errorf("column %s: the server sent invalid UTF-8; read with character_set_results utf8mb4", s.Name)
		}
		return change.Value{Str: string(b)}, nil
	}
	return textValue(s, string(b))
}

// textValue converts a character column's bytes, in the column's charset, to UTF-8.
func textValue(s *ColumnSpec, raw string) (change.Value, error) {
	out, err := decodeCharset(charsetOf(s.Collation), raw)
	if err != nil {
		return change.Value{State: change.Undecodable, Str: strconv.Quote(raw)}, fmt.Errorf("column %s (collation %d): %w", s.Name, s.Collation, err)
	}
	return change.Value{Str: out}, nil
}

// decodeString handles values that arrive as text: CHAR/VARCHAR (binlog), DECIMAL, JSON and
// every temporal type.
func decodeString(s *ColumnSpec, kind change.Kind, x string, fromBinlog bool) (change.Value, error) {
	switch kind {
	case change.KindDecimal:
		return change.Value{Str: strings.Clone(x)}, nil
	case change.KindJSON:
		canonical := canonicalJSON
		if fromBinlog {
			canonical = binlogJSON // go-mysql's text: see binlogJSON
		}
		c, err := canonical(x)
		if err != nil {
			return change.Value{State: change.Undecodable, Str: strings.Clone(x)}, fmt.Errorf("column %s: JSON document does not parse: %w", s.Name, err)
		}
		return change.Value{Str: c}, nil
	case change.KindDate:
		days, ok := parseDate(x)
		if !ok {
			return zeroDate(s, x)
		}
		return change.Value{Int: days}, nil
	case change.KindTimestamp, change.KindTimestampTZ:
		us, ok := parseDateTime(x)
		if !ok {
			return zeroDate(s, x)
		}
		return change.Value{Int: us}, nil
	case change.KindDuration:
		us, ok := parseTime(x)
		if !ok {
			return change.Value{State: change.Undecodable, Str: x}, fmt.Errorf("column %s: time %q does not parse", s.Name, x)
		}
		return change.Value{Int: us}, nil
	case change.KindBytes:
		return decodeBytes(s, kind, []byte(x), fromBinlog)
	case change.KindString, change.KindEnum:
		if fromBinlog {
			return textValue(s, x)
		}
		return change.Value{Str: strings.Clone(x)}, nil
	}
	return change.Value{State: change.Undecodable, Str: x}, fmt.Errorf("column %s: text value for kind %v", s.Name, kind)
}

// timeValue is the microseconds since the epoch of a DATETIME (its UTC wall clock) or
// TIMESTAMP go-mysql gave as time.Time: what parseDateTime gives for the same value's text.
func timeValue(s *ColumnSpec, t time.Time) (change.Value, error) {
	switch s.Type {
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
	default:
		return change.Value{State: change.Undecodable, Str: binlogTimeText(t)}, fmt.Errorf("column %s: unexpected binlog time value for type %d", s.Name, s.Type)
	}
	sec := t.Unix()
	if sec < minTextSec || sec > maxTextSec { // beyond the years 0000-9999 the text holds
		return zeroDate(s, binlogTimeText(t))
	}
	return change.Value{Int: sec*1_000000 + int64(t.Nanosecond()/1000)}, nil
}

// minTextSec and maxTextSec are 0000-01-01 00:00:00 and 9999-12-31 23:59:59 UTC.
const minTextSec, maxTextSec = -62167219200, 253402300799

// binlogTimeText spells a binlog time value as the server does (a TIMESTAMP in UTC), for
// dead letters.
func binlogTimeText(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999")
}

func zeroDate(s *ColumnSpec, raw string) (change.Value, error) {
	if s.Nullable {
		return change.NullValue, nil
	}
	return change.Value{State: change.Undecodable, Str: raw}, &zeroDateError{col: s.Name, raw: raw}
}

// parseDate parses YYYY-MM-DD into days since 1970-01-01; false for zero or invalid dates.
func parseDate(x string) (int64, bool) {
	if len(x) != 10 || x[4] != '-' || x[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(x[0:4])
	m, ok2 := digits(x[5:7])
	d, ok3 := digits(x[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return change.DaysFromCivil(y, int(m), int(d)), true
}

// parseDateTime parses "YYYY-MM-DD HH:MM:SS[.ffffff]" into microseconds since the epoch (of
// the same zone as the text).
func parseDateTime(x string) (int64, bool) {
	if len(x) < 19 || x[10] != ' ' || x[13] != ':' || x[16] != ':' {
		return 0, false
	}
	days, ok := parseDate(x[:10])
	if !ok {
		return 0, false
	}
	h, ok1 := digits(x[11:13])
	mi, ok2 := digits(x[14:16])
	sec, ok3 := digits(x[17:19])
	frac, ok4 := fraction(x[19:])
	if !ok1 || !ok2 || !ok3 || !ok4 || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	return days*86400_000000 + (h*3600+mi*60+sec)*1_000000 + frac, true
}

// parseTime parses "[-]H+:MM:SS[.ffffff]" into signed microseconds.
func parseTime(x string) (int64, bool) {
	neg := strings.HasPrefix(x, "-")
	if neg {
		x = x[1:]
	}
	hh, rest, ok := strings.Cut(x, ":")
	if !ok || len(rest) < 5 || rest[2] != ':' {
		return 0, false
	}
	h, ok1 := digits(hh)
	m, ok2 := digits(rest[0:2])
	s, ok3 := digits(rest[3:5])
	frac, ok4 := fraction(rest[5:])
	if !ok1 || !ok2 || !ok3 || !ok4 || m > 59 || s > 59 {
		return 0, false
	}
	us := (h*3600+m*60+s)*1_000000 + frac
	if neg {
		us = -us
	}
	return us, true
}

// fraction parses "" or ".f{1,6}" into microseconds.
func fraction(x string) (int64, bool) {
	if x == "" {
		return 0, true
	}
	if x[0] != '.' || len(x) < 2 || len(x) > 7 {
		return 0, false
	}
	f, ok := digits(x[1:])
	if !ok {
		return 0, false
	}
	for i := len(x) - 1; i < 6; i++ {
		f *= 10
	}
	return f, true
}

func digits(x string) (int64, bool) {
	if x == "" || len(x) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(x); i++ {
		c := x[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
