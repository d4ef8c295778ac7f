package postgres

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

func days(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func micros(y int, m time.Month, d, hh, mm, ss, us int, loc *time.Location) int64 {
	return time.Date(y, m, d, hh, mm, ss, us*1000, loc).UnixMicro()
}

func zone(name string, offsetSecs int) *time.Location { return time.FixedZone(name, offsetSecs) }

func TestDecodeTemporal(t *testing.T) {
	b := func(oid uint32) *typeInfo { return mustBuiltin(t, oid, -1) }
	date, tm, ttz, ts, tstz := b(1082), b(1083), b(1266), b(1114), b(1184)
	utc := time.UTC
	bad := errMalformedValue
	runDecodeCases(t, []decodeCase{
		{"date epoch", date, "1970-01-01", ival(0), nil},
		{"date leap day", date, "2024-02-29", ival(days(2024, 2, 29)), nil},
		{"date year 1", date, "0001-01-01", ival(days(1, 1, 1)), nil},
		{"date year 9999", date, "9999-12-31", ival(days(9999, 12, 31)), nil},
		{"date 1900 not leap", date, "1900-02-29", change.Value{}, bad},
		{"date 2000 leap", date, "2000-02-29", ival(days(2000, 2, 29)), nil},
		{"date BC", date, "0044-03-15 BC", ival(days(-43, 3, 15)), nil},
		{"date 1 BC is year 0", date, "0001-12-31 BC", ival(days(0, 12, 31)), nil},
		{"date 1 BC leap", date, "0001-02-29 BC", ival(days(0, 2, 29)), nil},
		{"date 2 BC not leap", date, "0002-02-29 BC", change.Value{}, bad},
		{"date min", date, "4713-01-01 BC", ival(days(-4712, 1, 1)), nil},
		{"date max", date, "5874897-12-31", ival(days(5874897, 12, 31)), nil},
		{"date infinity", date, "infinity", ival(change.DateInfinity), nil},
		{"date -infinity", date, "-infinity", ival(change.DateNegInfinity), nil},
		{"date year 0", date, "0000-01-01", change.Value{}, bad},
		{"date month 13", date, "2024-13-01", change.Value{}, bad},
		{"date day 0", date, "2024-01-00", change.Value{}, bad},
		{"date short year", date, "24-01-01", change.Value{}, bad},
		{"date SQL style", date, "01/02/2024", change.Value{}, bad},
		{"date German style", date, "02.01.2024", change.Value{}, bad},
		{"date AD", date, "2024-01-01 AD", change.Value{}, bad},
		{"date trailing", date, "2024-01-01 BC ", change.Value{}, bad},
		{"date empty", date, "", change.Value{}, bad},

		{"time midnight", tm, "00:00:00", ival(0), nil},
		{"time 24:00", tm, "24:00:00", ival(86_400_000_000), nil},
		{"time max", tm, "23:59:59.999999", ival(86_399_999_999), nil},
		{"time fraction", tm, "12:34:56.5", ival((12*3600+34*60+56)*1e6 + 500000), nil},
		{"time fraction 1us", tm, "00:00:00.000001", ival(1), nil},
		{"time past 24", tm, "24:00:01", change.Value{}, bad},
		{"time minute 60", tm, "12:60:00", change.Value{}, bad},
		{"time one-digit hour", tm, "1:02:03", change.Value{}, bad},
		{"time 7 digits", tm, "12:00:00.1234567", change.Value{}, bad},
		{"time with offset", tm, "12:00:00+01", change.Value{}, bad},
		{"time dot only", tm, "12:00:00.", change.Value{}, bad},

		{"timetz hour offset", ttz, "10:11:12.5+02", str("10:11:12.5+02:00"), nil},
		{"timetz minute offset", ttz, "10:11:12-05:30", str("10:11:12-05:30"), nil},
		{"timetz second offset", ttz, "12:00:00+01:02:03", str("12:00:00+01:02:03"), nil},
		{"timetz 24:00", ttz, "24:00:00+05", str("24:00:00+05:00"), nil},
		{"timetz zero", ttz, "00:00:00+00", str("00:00:00+00:00"), nil},
		{"timetz no offset", ttz, "10:11:12", change.Value{}, bad},
		{"timetz short offset", ttz, "10:11:12+5", change.Value{}, bad},
		{"timetz trailing", ttz, "10:11:12+05:00 ", change.Value{}, bad},

		{"timestamp", ts, "2024-01-02 03:04:05.123456", ival(micros(2024, 1, 2, 3, 4, 5, 123456, utc)), nil},
		{"timestamp epoch", ts, "1970-01-01 00:00:00", ival(0), nil},
		{"timestamp before epoch", ts, "1969-12-31 23:59:59.999999", ival(-1), nil},
		{"timestamp year 1", ts, "0001-01-01 00:00:00", ival(micros(1, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"timestamp year 9999", ts, "9999-12-31 23:59:59.999999", ival(micros(9999, 12, 31, 23, 59, 59, 999999, utc)), nil},
		{"timestamp BC", ts, "0044-03-15 01:02:03.5 BC", ival(micros(-43, 3, 15, 1, 2, 3, 500000, utc)), nil},
		{"timestamp min", ts, "4714-11-24 00:00:00 BC", ival(micros(-4713, 11, 24, 0, 0, 0, 0, utc)), nil},
		{"timestamp infinity", ts, "infinity", ival(change.TimestampInfinity), nil},
		{"timestamp -infinity", ts, "-infinity", ival(change.TimestampNegInfinity), nil},
		{"timestamp year 100000", ts, "100000-01-01 00:00:00", ival(micros(100000, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"timestamp beyond int64 micros", ts, "294276-12-31 23:59:59.999999", change.Value{}, errNotRepresentable},
		{"timestamp T", ts, "2024-01-02T03:04:05", change.Value{}, bad},
		{"timestamp with offset", ts, "2024-01-02 03:04:05+00", change.Value{}, bad},
		{"timestamp 24:00", ts, "2024-01-02 24:00:00", change.Value{}, bad},
		{"timestamp date only", ts, "2024-01-02", change.Value{}, bad},

		{"timestamptz utc", tstz, "2024-01-02 03:04:05.123456+00", ival(micros(2024, 1, 2, 3, 4, 5, 123456, utc)), nil},
		{"timestamptz +05:30", tstz, "2024-01-02 03:04:05+05:30", ival(micros(2024, 1, 2, 3, 4, 5, 0, zone("IST", 5*3600+1800))), nil},
		{"timestamptz -03:30", tstz, "2023-12-31 20:30:00-03:30", ival(micros(2024, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"timestamptz +13:45", tstz, "2024-06-01 12:00:00+13:45", ival(micros(2024, 6, 1, 12, 0, 0, 0, zone("CHAST", 13*3600+45*60))), nil},
		{"timestamptz -11", tstz, "2024-06-01 12:00:00-11", ival(micros(2024, 6, 1, 23, 0, 0, 0, utc)), nil},
		{"timestamptz LMT seconds", tstz, "1850-01-01 00:19:32+00:19:32", ival(micros(1850, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"timestamptz negative seconds offset", tstz, "1890-01-01 00:00:00-03:00:20", ival(micros(1890, 1, 1, 3, 0, 20, 0, utc)), nil},
		{"timestamptz year 1", tstz, "0001-01-01 00:00:00+00", ival(micros(1, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"timestamptz year 9999", tstz, "9999-12-31 23:59:59.999999+00", ival(micros(9999, 12, 31, 23, 59, 59, 999999, utc)), nil},
		{"timestamptz BC", tstz, "0044-03-15 12:00:00+00:19:32 BC", ival(micros(-43, 3, 15, 12, 0, 0, 0, zone("LMT", 19*60+32))), nil},
		{"timestamptz min", tstz, "4714-11-24 00:00:00+00 BC", ival(micros(-4713, 11, 24, 0, 0, 0, 0, utc)), nil},
		{"timestamptz infinity", tstz, "infinity", ival(change.TimestampInfinity), nil},
		{"timestamptz -infinity", tstz, "-infinity", ival(change.TimestampNegInfinity), nil},
		{"timestamptz no offset", tstz, "2024-01-02 03:04:05", change.Value{}, bad},
		{"timestamptz compact offset", tstz, "2024-01-02 03:04:05+0530", change.Value{}, bad},
		{"timestamptz offset minutes 60", tstz, "2024-01-02 03:04:05+05:60", change.Value{}, bad},
		{"timestamptz Infinity", tstz, "Infinity", change.Value{}, bad},
	})
}

// TestDecodeTimestampBounds: timestamps travel as int64 microseconds since 1970 with
// math.MaxInt64 and math.MinInt64 standing for ±infinity. Everything in between is carried
// (up to 294247-01-10 04:00:54.775806 UTC; values on that day used to be refused about 4 hours
// early), and a valid timestamp past it (PostgreSQL goes to 294276 AD) is refused as not
// representable, not as undecodable.
func TestDecodeTimestampBounds(t *testing.T) {
	ts, tstz := mustBuiltin(t, 1114, -1), mustBuiltin(t, 1184, -1)
	const last = math.MaxInt64 - 1
	utc := time.UTC
	if got := time.UnixMicro(last).UTC().Format("2006-01-02 15:04:05.000000"); got != "294247-01-10 04:00:54.775806" {
		t.Fatalf("the last representable microsecond is %s", got)
	}
	nr := errNotRepresentable
	runDecodeCases(t, []decodeCase{
		{"last", ts, "294247-01-10 04:00:54.775806", ival(last), nil},
		{"last day start", ts, "294247-01-10 00:00:00", ival(micros(294247, 1, 10, 0, 0, 0, 0, utc)), nil},
		{"day before last", ts, "294247-01-09 23:59:59.999999", ival(micros(294247, 1, 9, 23, 59, 59, 999999, utc)), nil},
		{"infinity's own value", ts, "294247-01-10 04:00:54.775807", change.Value{}, nr},
		{"one past", ts, "294247-01-10 04:00:54.775808", change.Value{}, nr},
		{"next day", ts, "294247-01-11 00:00:00", change.Value{}, nr},
		{"PG max", ts, "294276-12-31 23:59:59.999999", change.Value{}, nr},
		{"year 1", ts, "0001-01-01 00:00:00", ival(micros(1, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"4713 BC", ts, "4713-01-01 00:00:00 BC", ival(micros(-4712, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"PG min", ts, "4714-11-24 00:00:00 BC", ival(micros(-4713, 11, 24, 0, 0, 0, 0, utc)), nil},
		{"infinity", ts, "infinity", ival(change.TimestampInfinity), nil},
		{"-infinity", ts, "-infinity", ival(change.TimestampNegInfinity), nil},

		{"tz last", tstz, "294247-01-10 04:00:54.775806+00", ival(last), nil},
		{"tz last east", tstz, "294247-01-10 05:00:54.775806+01", ival(last), nil},
		{"tz last far east", tstz, "294247-01-10 20:00:53.775806+15:59:59", ival(last), nil},
		{"tz last west", tstz, "294247-01-10 03:00:54.775806-01", ival(last), nil},
		{"tz last west, day before", tstz, "294247-01-09 12:00:54.775806-16:00", ival(last), nil},
		{"tz one past", tstz, "294247-01-10 04:00:54.775807+00", change.Value{}, nr},
		{"tz one past east", tstz, "294247-01-10 05:00:54.775807+01", change.Value{}, nr},
		{"tz one past west", tstz, "294247-01-10 00:00:54.775807-04", change.Value{}, nr},
		{"tz PG max", tstz, "294276-12-31 23:59:59.999999+00", change.Value{}, nr},
		{"tz PG min", tstz, "4714-11-24 00:00:00+00 BC", ival(micros(-4713, 11, 24, 0, 0, 0, 0, utc)), nil},
		{"tz 4713 BC west", tstz, "4713-01-01 00:00:00-15:59:59 BC", ival(micros(-4712, 1, 1, 15, 59, 59, 0, utc)), nil},
		{"tz year 1", tstz, "0001-01-01 00:00:00+00", ival(micros(1, 1, 1, 0, 0, 0, 0, utc)), nil},
		{"tz infinity", tstz, "infinity", ival(change.TimestampInfinity), nil},
		{"tz -infinity", tstz, "-infinity", ival(change.TimestampNegInfinity), nil},
	})
	_, err := decodeColumn("at", ts, []byte("294276-12-31 23:59:59.999999"))
	var class interface{ NotRepresentable() bool }
	if !errors.As(err, &class) || !class.NotRepresentable() {
		t.Fatalf("%v: want an error that says NotRepresentable", err)
	}
	for _, part := range []string{`column "at"`, "294276-12-31 23:59:59.999999", "294247-01-10 04:00:54.775806", "fix:"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
}

func TestDecodeInterval(t *testing.T) {
	iv := mustBuiltin(t, 1186, -1)
	bad := errMalformedValue
	cases := []decodeCase{
		// iso_8601 style passes through verbatim.
		{"iso full", iv, "P1Y2M3DT4H5M6.5S", str("P1Y2M3DT4H5M6.5S"), nil},
		{"iso zero", iv, "PT0S", str("PT0S"), nil},
		{"iso negative", iv, "-P1D", str("-P1D"), nil},
		{"iso mixed signs", iv, "P-1Y-2M3DT-4H-5M-6.5S", str("P-1Y-2M3DT-4H-5M-6.5S"), nil},
		{"iso negative fraction", iv, "PT-0.5S", str("PT-0.5S"), nil},
		{"iso weeks", iv, "P2W", str("P2W"), nil},
		{"iso empty", iv, "P", change.Value{}, bad},
		{"iso empty time", iv, "PT", change.Value{}, bad},
		{"iso bad designator", iv, "P1X", change.Value{}, bad},
		{"iso H before T", iv, "P1H", change.Value{}, bad},
		{"iso dangling number", iv, "P1Y2", change.Value{}, bad},
		{"iso double T", iv, "PT1HT2M", change.Value{}, bad},
		// The replication connection sets IntervalStyle=iso_8601: other styles' text is refused.
		{"postgres style", iv, "1 year 2 mons 3 days 04:05:06.5", change.Value{}, bad},
		{"postgres style time", iv, "00:00:00", change.Value{}, bad},
		{"postgres_verbose style", iv, "@ 1 year 2 mons -3 days 4 hours 5 mins 6.5 secs ago", change.Value{}, bad},
		{"sql_standard style", iv, "+1-2 +3 +4:05:06.5", change.Value{}, bad},
		{"empty", iv, "", change.Value{}, bad},
		{"minus only", iv, "-", change.Value{}, bad},
	}
	runDecodeCases(t, cases)
}
