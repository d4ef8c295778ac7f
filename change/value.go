package change

import "fmt"

// ValueState tells whether a Value holds data.
type ValueState uint8

const (
	// Present: the value is in Int/Float/Str/Bytes/Arr according to the column's Kind.
	Present ValueState = iota
	// Null: SQL NULL.
	Null
	// Unchanged: the source did not send the value because it did not change and is stored
	// out of line (Postgres unchanged TOAST). It is not NULL; the encoder writes the
	// documented placeholder instead.
	Unchanged
	// Absent: the source did not send this column at all (non-key columns of an old row
	// without full replica identity).
	Absent
	// Undecodable: the source sent a value it could not decode; Str holds its raw text.
	Undecodable
)

// Value is one column value. It is a plain struct so that decoding a row allocates only for
// variable-length data. Which field is set depends on the column's Kind (see Kind's docs):
//   - Bool: Int (0 or 1); integer kinds, Date, Time, Timestamp*: Int; Uint64: Uint
//   - Float32/64: Float
//   - Decimal, String, TimeTZ, Interval, UUID, JSON, Enum: Str
//   - Bytes: Bytes
//   - Array: Arr (elements of the column's Elem kind)
type Value struct {
	State ValueState
	Int   int64
	Uint  uint64
	Float float64
	Str   string
	Bytes []byte
	Arr   []Value
}

// NullValue is SQL NULL.
var NullValue = Value{State: Null}

// IsNull reports whether v is SQL NULL.
func (v Value) IsNull() bool { return v.State == Null }

// DaysFromCivil is the Date value (days since 1970-01-01) of an astronomical year (0 is 1 BC),
// month and day of the proleptic Gregorian calendar, exact for every year an int64 of days
// holds (Howard Hinnant's days_from_civil). Sources decode dates with it, so a date is the same
// number whichever source or path (stream, snapshot) read it.
func DaysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// FormatDuration writes a duration in microseconds (KindDuration, MySQL's TIME) as
// [-]hh:mm:ss.ffffff, hours not bounded by a day.
func FormatDuration(us int64) string {
	sign := ""
	if us < 0 {
		us, sign = -us, "-"
	}
	return fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}
