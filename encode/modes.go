package encode

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// Type modes (Config.TimePrecision, Config.DecimalHandling). ModeAvro, the default of both,
// is cdcd's own encoding with Avro logical types; the others carry Debezium's names and write
// what Debezium's connectors write with the same setting (time.precision.mode,
// decimal.handling.mode), so its documentation and its consumers apply.
const (
	ModeAvro = "avro"

	TimeAdaptive             = "adaptive"
	TimeAdaptiveMicroseconds = "adaptive_time_microseconds"
	TimeConnect              = "connect"

	DecimalPrecise = "precise"
	DecimalDouble  = "double"
	DecimalString  = "string"
)

// typeModes is what planColumn needs to know about the pipeline's type modes.
type typeModes struct {
	time, decimal string
	mysql         bool // the source is MySQL or MariaDB (else PostgreSQL)
}

// debezium reports whether time_precision is one of Debezium's modes; then every type
// Debezium gives a semantic name (uuid, json, MySQL year, ...) carries it too.
func (m typeModes) debezium() bool { return m.time != "" && m.time != ModeAvro }

// checkModes validates the two modes.
func checkModes(timePrecision, decimalHandling string) []error {
	var errs []error
	switch timePrecision {
	case "", ModeAvro, TimeAdaptive, TimeAdaptiveMicroseconds, TimeConnect:
	default:
		errs = append(errs, fmt.Errorf("encode: unknown time_precision %q: use avro (the default), adaptive, adaptive_time_microseconds or connect", timePrecision))
	}
	switch decimalHandling {
	case "", ModeAvro, DecimalPrecise, DecimalDouble, DecimalString:
	default:
		errs = append(errs, fmt.Errorf("encode: unknown decimal_handling %q: use avro (the default), precise, double or string", decimalHandling))
	}
	return errs
}

// Conversions from a change.Value to the Avro value of a mode other than ModeAvro
// (colPlan.conv). convNone writes the value as ModeAvro does.
const (
	convNone          uint8 = iota
	convText                // a decimal's text as a string (decimal_handling: string)
	convDouble              // a decimal's text as a double (decimal_handling: double)
	convVarDecimal          // a decimal's text as io.debezium.data.VariableScaleDecimal
	convMillisInt           // microseconds since midnight as int milliseconds
	convMillisLong          // microseconds since the epoch as long milliseconds
	convZonedTime           // microseconds since the epoch (UTC) as an ISO-8601 string
	convMicroDuration       // an ISO-8601 duration as long microseconds
)

const (
	connectDecimal = "org.apache.kafka.connect.data.Decimal"
	vsdName        = "io.debezium.data.VariableScaleDecimal"
)

// semantic is the Avro type Debezium's Avro converter writes for a Kafka Connect schema
// named name: the plain Avro type with connect.version and connect.name, and no logical type.
func semantic(typ, name string) jobj {
	return jobj{{"type", typ}, {"connect.version", 1}, {"connect.name", name}}
}

// connectLogical is the Avro type of one of Kafka Connect's own logical types (Date, Time,
// Timestamp): the Avro logical type plus connect.version and connect.name.
func connectLogical(typ, name, logical string) jobj {
	return jobj{{"type", typ}, {"connect.version", 1}, {"connect.name", "org.apache.kafka.connect.data." + name}, {"logicalType", logical}}
}

// connectDecimalType is Kafka Connect's Decimal as Debezium's Avro converter writes it.
func connectDecimalType(prec, scale int) jobj {
	return jobj{{"type", "bytes"}, {"scale", scale}, {"precision", prec}, {"connect.version", 1},
		{"connect.parameters", jobj{{"scale", strconv.Itoa(scale)}, {"connect.decimal.precision", strconv.Itoa(prec)}}},
		{"connect.name", connectDecimal}, {"logicalType", "decimal"}}
}

// vsdType is io.debezium.data.VariableScaleDecimal: a record of the scale and the unscaled
// value. It is a named Avro type, so a schema defines it once and refers to it by name after
// (see namedType).
var vsdType = namedType{name: vsdName, def: jobj{
	{"type", "record"}, {"name", "VariableScaleDecimal"}, {"namespace", "io.debezium.data"},
	{"fields", []any{required("scale", "int"), required("value", "bytes")}},
	{"connect.doc", "Variable scaled decimal"}, {"connect.version", 1}, {"connect.name", vsdName},
}}

// namedType is a named Avro type that writeJSON defines at its first use in a schema and
// names at the others.
type namedType struct {
	name string
	def  jobj
}

// modeType returns the Avro type of a column of kind k under modes other than ModeAvro, and
// sets p.conv (and p.prec for decimals written as text). ok is false when the kind is written
// as ModeAvro writes it.
func modeType(c *change.Column, k change.Kind, m typeModes, p *colPlan) (t any, ok bool, err error) {
	switch k {
	case change.KindDecimal:
		switch m.decimal {
		case DecimalString:
			p.conv, p.prec, p.scale = convText, 0, 0
			return "string", true, nil
		case DecimalDouble:
			p.conv = convDouble
			if c.Precision > 0 {
				p.prec, p.scale = decimalShape(c.Precision, c.Scale)
			}
			return "double", true, nil
		case DecimalPrecise:
			if c.Precision == 0 {
				p.conv = convVarDecimal
				return vsdType, true, nil
			}
			if c.Precision < 0 {
				return nil, false, nil // planColumn refuses it
			}
			p.prec, p.scale = decimalShape(c.Precision, c.Scale)
			return connectDecimalType(p.prec, p.scale), true, nil
		}
	case change.KindUint64:
		if m.decimal == DecimalPrecise || m.debezium() {
			p.prec, p.scale = 20, 0
			return connectDecimalType(20, 0), true, nil
		}
	}
	if !m.debezium() {
		return nil, false, nil
	}
	switch k {
	case change.KindDate:
		if m.time == TimeConnect {
			return connectLogical("int", "Date", "date"), true, nil
		}
		return semantic("int", "io.debezium.time.Date"), true, nil
	case change.KindTime, change.KindDuration: // KindDuration: MySQL's TIME
		switch {
		case m.time == TimeConnect:
			p.conv = convMillisInt
			return connectLogical("int", "Time", "time-millis"), true, nil
		case m.time == TimeAdaptive && !m.mysql && fraction(c.SourceType, m.mysql) <= 3:
			p.conv = convMillisInt
			return semantic("int", "io.debezium.time.Time"), true, nil
		}
		// MySQL TIME is a duration (up to ±838:59:59): MicroTime in both adaptive modes.
		return semantic("long", "io.debezium.time.MicroTime"), true, nil
	case change.KindTimestamp:
		switch {
		case m.time == TimeConnect:
			p.conv = convMillisLong
			return connectLogical("long", "Timestamp", "timestamp-millis"), true, nil
		case fraction(c.SourceType, m.mysql) <= 3:
			p.conv = convMillisLong
			return semantic("long", "io.debezium.time.Timestamp"), true, nil
		}
		return semantic("long", "io.debezium.time.MicroTimestamp"), true, nil
	case change.KindTimestampTZ:
		p.conv, p.scale = convZonedTime, fraction(c.SourceType, m.mysql)
		return semantic("string", "io.debezium.time.ZonedTimestamp"), true, nil
	case change.KindTimeTZ:
		return semantic("string", "io.debezium.time.ZonedTime"), true, nil
	case change.KindInterval:
		p.conv = convMicroDuration
		return semantic("long", "io.debezium.time.MicroDuration"), true, nil
	case change.KindUUID:
		return semantic("string", "io.debezium.data.Uuid"), true, nil
	case change.KindJSON:
		return semantic("string", jsonConnectName), true, nil
	case change.KindInt32:
		if m.mysql && c.SourceType == "year" {
			return semantic("int", "io.debezium.time.Year"), true, nil
		}
	}
	return nil, false, nil
}

// fraction returns the fractional-second digits of a time type spelled as the source spells
// it ("timestamp(3) without time zone", "datetime(6)"); without digits, PostgreSQL's default
// is 6 and MySQL's 0.
func fraction(sourceType string, mysql bool) int {
	if i := strings.IndexByte(sourceType, '('); i >= 0 {
		if j := strings.IndexByte(sourceType[i:], ')'); j > 0 {
			if n, err := strconv.Atoi(sourceType[i+1 : i+j]); err == nil && n >= 0 && n <= 6 {
				return n
			}
		}
	}
	if mysql {
		return 0
	}
	return 6
}

// appendConverted writes a present value of a column whose conv is not convNone.
func appendConverted(dst []byte, c *colPlan, v *change.Value, sc *scratch) ([]byte, *Error) {
	switch c.conv {
	case convText:
		return appendString(dst, v.Str), nil
	case convDouble:
		f, err := strconv.ParseFloat(v.Str, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
					"value %s of %s is beyond the range of a double (decimal_handling: double); use decimal_handling: string or precise", excerpt(v.Str), c.typeName)}
			}
			return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf("value %q is not a decimal number; this is a source bug", excerpt(v.Str))}
		}
		return appendDouble(dst, f), nil
	case convVarDecimal:
		scale, p := decimalScale(v.Str)
		if p == decOK {
			dst = appendLong(dst, int64(scale))
			var out []byte
			if out, p = appendDecimal(dst, v.Str, maxExp, scale, sc); p == decOK {
				return out, nil
			}
		}
		if p == decNaN {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"value %s of %s has no VariableScaleDecimal form (decimal_handling: precise); store NULL instead, or use decimal_handling: string (the exact text) or double", excerpt(v.Str), c.typeName)}
		}
		return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf("value %q is not a decimal number; this is a source bug", excerpt(v.Str))}
	case convMillisInt:
		if v.Int%1000 != 0 || v.Int < 0 || v.Int > 24*3600*1000000 {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"%s value of %d µs has no milliseconds-since-midnight form (sub-millisecond digits, or outside 00:00 to 24:00); use time_precision: adaptive_time_microseconds", c.typeName, v.Int)}
		}
		return appendLong(dst, v.Int/1000), nil
	case convMillisLong:
		if v.Int == math.MaxInt64 || v.Int == math.MinInt64 { // ±infinity sentinels stay sentinels
			return appendLong(dst, v.Int), nil
		}
		if v.Int%1000 != 0 {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"%s value of %d µs since 1970 has sub-millisecond digits, which time_precision connect cannot carry; use time_precision: adaptive_time_microseconds (or adaptive), which keeps microseconds", c.typeName, v.Int)}
		}
		return appendLong(dst, v.Int/1000), nil
	case convZonedTime:
		s := appendZoned(sc.text[:0], v.Int, c.scale)
		sc.text = s
		return appendBytes(dst, s), nil
	case convMicroDuration:
		us, ok := durationMicros(v.Str)
		if !ok {
			return dst, &Error{Class: ClassValueNotRepresentable, Err: fmt.Errorf(
				"interval %s does not fit io.debezium.time.MicroDuration (a long of microseconds, months counted as 30.4375 days)", excerpt(v.Str))}
		}
		return appendLong(dst, us), nil
	}
	return dst, &Error{Class: ClassUndecodable, Err: fmt.Errorf("conversion %d has no encoder", c.conv)}
}

func excerpt(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// decimalScale returns the number of fractional digits of a decimal's text (the scale of
// its VariableScaleDecimal), adjusted by an exponent; decNaN for NaN and ±Infinity.
func decimalScale(s string) (int, decProblem) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	switch rest := s[i:]; {
	case strings.EqualFold(rest, "nan"), strings.EqualFold(rest, "infinity"), strings.EqualFold(rest, "inf"):
		return 0, decNaN
	}
	scale := 0
	if d := strings.IndexByte(s, '.'); d >= 0 {
		for j := d + 1; j < len(s) && isDigit(s[j]); j++ {
			scale++
		}
	}
	if e := strings.IndexAny(s, "eE"); e >= 0 {
		exp, err := strconv.Atoi(s[e+1:])
		if err != nil || exp > maxExp || exp < -maxExp {
			return 0, decSyntax
		}
		scale -= exp
	}
	if scale < 0 {
		scale = 0
	}
	return scale, decOK
}

// appendZoned writes microseconds since 1970 UTC as Debezium's ZonedTimestamp text:
// ISO-8601 in UTC with digits fractional digits, e.g. 2024-05-01T10:11:12.500000Z (years
// before 1 BC-wise proleptic and negative, -4712 for 4713 BC; after 9999 with a '+'); the
// ±infinity sentinels as "infinity" and "-infinity".
func appendZoned(dst []byte, us int64, digits int) []byte {
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	days, rem := us/86400000000, us%86400000000
	if rem < 0 {
		days, rem = days-1, rem+86400000000
	}
	y, mo, d := civil(days)
	if y > 9999 {
		dst = append(dst, '+') // as Java's ISO-8601 formatter writes years beyond 9999
	} else if y < 0 {
		dst, y = append(dst, '-'), -y
	}
	dst = appendPadded(dst, y, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, mo, 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, d, 2)
	dst = append(dst, 'T')
	secs := rem / 1000000
	dst = appendPadded(dst, secs/3600, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, secs/60%60, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, secs%60, 2)
	if digits > 0 {
		frac := us % 1000000
		if frac < 0 {
			frac += 1000000
		}
		dst = append(dst, '.')
		var buf [6]byte
		for i := 5; i >= 0; i-- {
			buf[i] = byte('0' + frac%10)
			frac /= 10
		}
		dst = append(dst, buf[:digits]...)
	}
	return append(dst, 'Z')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (year 0 is 1 BC), by
// Howard Hinnant's days-to-civil algorithm.
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendPadded writes v (>= 0) in decimal with at least width digits.
func appendPadded(dst []byte, v int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}

// microsPerMonth is Debezium's MicroDuration month: 365.25/12 days.
const microsPerMonth = 2629800 * 1000000

// durationMicros converts an ISO-8601 duration as PostgreSQL writes it (IntervalStyle
// iso_8601: "P1Y2M3DT4H5M6.5S", parts signed, an optional leading '-') to Debezium's
// MicroDuration. ok is false for text it cannot read and for results beyond a long.
func durationMicros(s string) (int64, bool) {
	neg := false
	i := 0
	if i < len(s) && s[i] == '-' {
		neg, i = true, i+1
	}
	if i >= len(s) || s[i] != 'P' {
		return 0, false
	}
	i++
	var total int64
	inTime := false
	for i < len(s) {
		if s[i] == 'T' && !inTime {
			inTime, i = true, i+1
			continue
		}
		sign := int64(1)
		if s[i] == '-' || s[i] == '+' {
			if s[i] == '-' {
				sign = -1
			}
			i++
		}
		var n int64
		start := i
		for i < len(s) && isDigit(s[i]) {
			if n > (math.MaxInt64-9)/10 {
				return 0, false
			}
			n = n*10 + int64(s[i]-'0')
			i++
		}
		if i == start {
			return 0, false
		}
		var frac int64 // microseconds of a fractional second
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			digits := 0
			for i < len(s) && isDigit(s[i]) {
				if digits < 6 {
					frac = frac*10 + int64(s[i]-'0')
				} else if s[i] != '0' {
					return 0, false // below a microsecond
				}
				digits++
				i++
			}
			for ; digits < 6; digits++ {
				frac *= 10
			}
		}
		if i >= len(s) {
			return 0, false
		}
		var unit int64
		switch d := s[i]; {
		case !inTime && d == 'Y':
			unit = 12 * microsPerMonth
		case !inTime && d == 'M':
			unit = microsPerMonth
		case !inTime && d == 'W':
			unit = 7 * 86400 * 1000000
		case !inTime && d == 'D':
			unit = 86400 * 1000000
		case inTime && d == 'H':
			unit = 3600 * 1000000
		case inTime && d == 'M':
			unit = 60 * 1000000
		case inTime && d == 'S':
			unit = 1000000
		default:
			return 0, false
		}
		if frac != 0 && unit != 1000000 {
			return 0, false
		}
		i++
		if n > math.MaxInt64/unit {
			return 0, false
		}
		part := n*unit + frac
		if part < 0 {
			return 0, false
		}
		part *= sign
		sum := total + part
		if (part > 0 && sum < total) || (part < 0 && sum > total) {
			return 0, false
		}
		total = sum
	}
	if neg {
		total = -total
	}
	return total, true
}
