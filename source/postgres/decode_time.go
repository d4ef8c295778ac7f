package postgres

// Dates and times. Postgres's calendar is the proleptic Gregorian one, with year 1 BC
// printed as "0001 BC" (astronomical year 0), so the arithmetic below needs no special cases
// once BC years are converted to astronomical ones.

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

const (
	usPerSec = 1_000_000
	usPerDay = 86_400 * usPerSec
	// maxAbsDays bounds days so that days*usPerDay fits in int64; the time of day and the UTC
	// offset are then added with an overflow check.
	maxAbsDays = math.MaxInt64 / usPerDay
	// A finite timestamp is an int64 count of microseconds since 1970 strictly between the
	// infinity sentinels change.TimestampNegInfinity (math.MinInt64) and
	// change.TimestampInfinity (math.MaxInt64): from about 290308 BC (PG stops at 4714 BC) to
	// 294247-01-10 04:00:54.775806 UTC (PG goes on to 294276 AD: those values are refused as not
	// representable).
	minTimestamp = change.TimestampNegInfinity + 1
	maxTimestamp = change.TimestampInfinity - 1
)

func daysInMonth(y int64, m int) int {
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

// parseYMD reads "YYYY-MM-DD" (four or more year digits, as DateStyle=ISO prints them) from
// the start of b and returns the index after it.
func parseYMD(b []byte) (y int64, m, d, i int, why string) {
	for i < len(b) && isDigit(b[i]) {
		if i == 9 {
			return 0, 0, 0, 0, "year out of range"
		}
		y = y*10 + int64(b[i]-'0')
		i++
	}
	if i < 4 || i+6 > len(b) || b[i] != '-' || b[i+3] != '-' {
		return 0, 0, 0, 0, "not an ISO date (DateStyle must be ISO)"
	}
	var ok1, ok2 bool
	m, ok1 = twoDigits(b, i+1)
	d, ok2 = twoDigits(b, i+4)
	if !ok1 || !ok2 {
		return 0, 0, 0, 0, "not an ISO date (DateStyle must be ISO)"
	}
	return y, m, d, i + 6, ""
}

func twoDigits(b []byte, i int) (int, bool) {
	if i+2 > len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) {
		return 0, false
	}
	return int(b[i]-'0')*10 + int(b[i+1]-'0'), true
}

// civilDays validates a printed date and returns its days since 1970-01-01; bc marks a
// " BC" suffix (year N BC is astronomical year 1-N).
func civilDays(y int64, m, d int, bc bool) (int64, string) {
	if y == 0 {
		return 0, "year 0 does not exist"
	}
	if bc {
		y = 1 - y
	}
	if m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return 0, "no such date"
	}
	return change.DaysFromCivil(y, m, d), ""
}

// hasBC reports whether b[i:] is exactly " BC"; ok is false if b[i:] is anything else but empty.
func hasBC(b []byte, i int) (bc, ok bool) {
	switch {
	case i == len(b):
		return false, true
	case len(b)-i == 3 && b[i] == ' ' && b[i+1] == 'B' && b[i+2] == 'C':
		return true, true
	}
	return false, false
}

func decodeDate(t *typeInfo, text []byte) (change.Value, error) {
	d, why := parseDate(text)
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	return change.Value{Int: d}, nil
}

func decodeTime(t *typeInfo, text []byte) (change.Value, error) {
	us, n, why := parseClock(text, 0, 24)
	if why == "" && n != len(text) {
		why = "unexpected text after the time"
	}
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	return change.Value{Int: us}, nil
}

func decodeTimestamp(t *typeInfo, text []byte) (change.Value, error) {
	us, why, outOfRange := parseTimestamp(text, t.Kind == change.KindTimestampTZ)
	if outOfRange {
		return change.Value{}, timestampRangeError(t, text, us)
	}
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	return change.Value{Int: us}, nil
}

func parseDate(b []byte) (int64, string) {
	switch string(b) {
	case "infinity":
		return change.DateInfinity, ""
	case "-infinity":
		return change.DateNegInfinity, ""
	}
	y, m, d, i, why := parseYMD(b)
	if why != "" {
		return 0, why
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, "unexpected text after the date"
	}
	return civilDays(y, m, d, bc)
}

// parseClock reads "HH:MM:SS[.f{1,6}]" at b[i:] and returns microseconds since midnight and
// the index after it. maxHour is 24 for time and timetz ("24:00:00" is valid), 23 otherwise.
func parseClock(b []byte, i, maxHour int) (us int64, next int, why string) {
	h, ok1 := twoDigits(b, i)
	m, ok2 := twoDigits(b, i+3)
	s, ok3 := twoDigits(b, i+6)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, "not an ISO time"
	}
	i += 8
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for i < len(b) && isDigit(b[i]) {
			if n == 6 {
				return 0, 0, "more than 6 fractional digits"
			}
			frac = frac*10 + int64(b[i]-'0')
			i++
			n++
		}
		if n == 0 {
			return 0, 0, "not an ISO time"
		}
		for ; n < 6; n++ {
			frac *= 10
		}
	}
	if h > maxHour || m > 59 || s > 59 || (h == 24 && (m|s != 0 || frac != 0)) {
		return 0, 0, "time of day out of range"
	}
	return (int64(h)*3600+int64(m)*60+int64(s))*usPerSec + frac, i, ""
}

// parseOffset reads a UTC offset "+HH", "+HH:MM" or "+HH:MM:SS" (EncodeTimezone's forms) at
// b[i:] and returns it in seconds east of UTC.
func parseOffset(b []byte, i int) (secs int64, next int, why string) {
	if i >= len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, "missing UTC offset"
	}
	neg := b[i] == '-'
	h, ok := twoDigits(b, i+1)
	if !ok {
		return 0, 0, "invalid UTC offset"
	}
	i += 3
	var m, s int
	if i < len(b) && b[i] == ':' {
		if m, ok = twoDigits(b, i+1); !ok || m > 59 {
			return 0, 0, "invalid UTC offset"
		}
		i += 3
		if i < len(b) && b[i] == ':' {
			if s, ok = twoDigits(b, i+1); !ok || s > 59 {
				return 0, 0, "invalid UTC offset"
			}
			i += 3
		}
	}
	secs = int64(h)*3600 + int64(m)*60 + int64(s)
	if neg {
		secs = -secs
	}
	return secs, i, ""
}

// parseTimestamp reads timestamp (tz false) or timestamptz (tz true) text as printed with
// DateStyle=ISO: "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]", or ±infinity. It returns
// microseconds since 1970-01-01 00:00:00 (UTC for timestamptz). A well-formed timestamp
// outside minTimestamp..maxTimestamp sets outOfRange (us then only tells its side by its sign).
func parseTimestamp(b []byte, tz bool) (us int64, why string, outOfRange bool) {
	switch string(b) {
	case "infinity":
		return change.TimestampInfinity, "", false
	case "-infinity":
		return change.TimestampNegInfinity, "", false
	}
	y, m, d, i, why := parseYMD(b)
	if why != "" {
		return 0, why, false
	}
	if i >= len(b) || b[i] != ' ' {
		return 0, "not an ISO timestamp (DateStyle must be ISO)", false
	}
	clock, i, why := parseClock(b, i+1, 23)
	if why != "" {
		return 0, why, false
	}
	var off int64
	if tz {
		if off, i, why = parseOffset(b, i); why != "" {
			return 0, why, false
		}
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, "unexpected text after the timestamp", false
	}
	days, why := civilDays(y, m, d, bc)
	if why != "" {
		return 0, why, false
	}
	if days > maxAbsDays || days < -maxAbsDays {
		return days, "", true
	}
	// |clock - off| is below two days: only the sum with the day's start can overflow.
	base, rest := days*usPerDay, clock-off*usPerSec
	if (rest > 0 && base > maxTimestamp-rest) || (rest < 0 && base < minTimestamp-rest) {
		return days, "", true
	}
	return base + rest, "", false
}

// timestampRangeError refuses a valid timestamp that int64 microseconds since 1970 cannot
// count (or that would read as ±infinity); side is the sign of the value.
func timestampRangeError(t *typeInfo, text []byte, side int64) error {
	edge := "after " + time.UnixMicro(maxTimestamp).UTC().Format("2006-01-02 15:04:05.000000") + " UTC, the last"
	if side < 0 {
		edge = "before " + time.UnixMicro(minTimestamp).UTC().Format("2006-01-02 15:04:05.000000") + " UTC, the first"
	}
	return fmt.Errorf("%w: %s %s is %s instant a timestamp can carry (Avro timestamp-micros: int64 microseconds since 1970, whose extremes stand for ±infinity); fix: correct the value, or store 'infinity' if it means \"never\"",
		errNotRepresentable, t.SourceType, excerpt(text), edge)
}

// decodeTimeTZ checks timetz text and writes its offset as "+HH:MM" (PG prints "+HH" when the
// minutes are zero); an offset with seconds keeps them ("+01:02:03"), as ISO-8601 has no
// other way to say it.
func decodeTimeTZ(t *typeInfo, text []byte) (change.Value, error) {
	_, i, why := parseClock(text, 0, 24)
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	_, j, why := parseOffset(text, i)
	if why == "" && j != len(text) {
		why = "unexpected text after the offset"
	}
	if why != "" {
		return change.Value{}, malformed(t, text, why)
	}
	if j-i != 3 {
		return change.Value{Str: string(text)}, nil
	}
	var buf [32]byte
	return change.Value{Str: string(append(append(buf[:0], text...), ":00"...))}, nil
}

// Intervals. Value.Str is ISO-8601 as IntervalStyle=iso_8601 prints it ("P1Y2M3DT4H5M6.5S",
// "P-1Y-2M3DT-4H-5M-6.5S", "PT0S"): the replication connection sets that style (conn.go), so
// the text passes through verbatim, and any other style's text is refused as malformed.
func decodeInterval(t *typeInfo, text []byte) (change.Value, error) {
	if !(len(text) > 0 && text[0] == 'P' || len(text) > 1 && text[0] == '-' && text[1] == 'P') || !validISODuration(text) {
		return change.Value{}, malformed(t, text, "not an ISO-8601 interval (the replication connection must set IntervalStyle=iso_8601)")
	}
	return change.Value{Str: string(text)}, nil
}

// validISODuration loosely checks ISO-8601 duration text: P, then signed decimal numbers
// with designators Y M W D, and after T, H M S.
func validISODuration(b []byte) bool {
	i := 0
	if b[0] == '-' {
		i++
	}
	i++ // 'P'
	inTime, parts := false, 0
	for i < len(b) {
		if b[i] == 'T' && !inTime {
			inTime = true
			i++
			continue
		}
		if b[i] == '-' || b[i] == '+' {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return false
		}
		if i < len(b) && (b[i] == '.' || b[i] == ',') {
			i++
			for i < len(b) && isDigit(b[i]) {
				i++
			}
		}
		if i == len(b) {
			return false
		}
		designators := "YMWD"
		if inTime {
			designators = "HMS"
		}
		if strings.IndexByte(designators, b[i]) < 0 {
			return false
		}
		i++
		parts++
	}
	return parts > 0
}
