package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdcd-dev/cdcd/change"
)

func mustBuiltin(t testing.TB, oid uint32, typmod int32) *typeInfo {
	t.Helper()
	ti, ok := builtinInfo(oid, typmod)
	if !ok {
		t.Fatalf("OID %d is not built in", oid)
	}
	return ti
}

var enumInfo = &typeInfo{OID: 90001, Name: "mood", Kind: change.KindEnum, SourceType: "public.mood", BaseOID: 90001, delim: ','}

var enumArrayInfo = arrayInfo(90000, "_mood", -1, enumInfo)

func days(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func micros(y int, m time.Month, d, hh, mm, ss, us int, loc *time.Location) int64 {
	return time.Date(y, m, d, hh, mm, ss, us*1000, loc).UnixMicro()
}

func zone(name string, offsetSecs int) *time.Location { return time.FixedZone(name, offsetSecs) }

func ival(n int64) change.Value  { return change.Value{Int: n} }
func str(s string) change.Value  { return change.Value{Str: s} }
func flt(f float64) change.Value { return change.Value{Float: f} }
func arr(vs ...change.Value) change.Value {
	if vs == nil {
		vs = []change.Value{}
	}
	return change.Value{Arr: vs}
}

func equalValue(a, b change.Value) bool {
	if a.State != b.State || a.Int != b.Int || a.Uint != b.Uint || a.Str != b.Str || !bytes.Equal(a.Bytes, b.Bytes) ||
		(a.Bytes == nil) != (b.Bytes == nil) || (a.Arr == nil) != (b.Arr == nil) || len(a.Arr) != len(b.Arr) {
		return false
	}
	if math.IsNaN(a.Float) || math.IsNaN(b.Float) {
		if !math.IsNaN(a.Float) || !math.IsNaN(b.Float) {
			return false
		}
	} else if a.Float != b.Float || math.Signbit(a.Float) != math.Signbit(b.Float) {
		return false
	}
	for i := range a.Arr {
		if !equalValue(a.Arr[i], b.Arr[i]) {
			return false
		}
	}
	return true
}

type decodeCase struct {
	name    string
	t       *typeInfo
	text    string
	want    change.Value
	wantErr error // errMalformedValue or errUnsupportedType
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeText(tc.t, []byte(tc.text))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("decodeText(%s, %q) = %+v, %v; want error %v", tc.t.SourceType, tc.text, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeText(%s, %q): %v", tc.t.SourceType, tc.text, err)
			}
			if !equalValue(got, tc.want) {
				t.Fatalf("decodeText(%s, %q) = %+v; want %+v", tc.t.SourceType, tc.text, got, tc.want)
			}
		})
	}
}

func TestDecodeScalars(t *testing.T) {
	b := func(oid uint32) *typeInfo { return mustBuiltin(t, oid, -1) }
	bool_, i2, i4, i8, oid, xid8 := b(16), b(21), b(23), b(20), b(26), b(5069)
	f4, f8, num := b(700), b(701), b(1700)
	uuid := b(2950)
	bad := errMalformedValue
	runDecodeCases(t, []decodeCase{
		{"bool t", bool_, "t", ival(1), nil},
		{"bool f", bool_, "f", ival(0), nil},
		{"bool true", bool_, "true", change.Value{}, bad},
		{"bool empty", bool_, "", change.Value{}, bad},

		{"int2 zero", i2, "0", ival(0), nil},
		{"int2 min", i2, "-32768", ival(-32768), nil},
		{"int2 max", i2, "32767", ival(32767), nil},
		{"int2 over", i2, "32768", change.Value{}, bad},
		{"int2 under", i2, "-32769", change.Value{}, bad},
		{"int2 empty", i2, "", change.Value{}, bad},
		{"int2 sign only", i2, "-", change.Value{}, bad},
		{"int2 junk", i2, "1a", change.Value{}, bad},
		{"int4 min", i4, "-2147483648", ival(math.MinInt32), nil},
		{"int4 max", i4, "2147483647", ival(math.MaxInt32), nil},
		{"int4 over", i4, "2147483648", change.Value{}, bad},
		{"int8 min", i8, "-9223372036854775808", ival(math.MinInt64), nil},
		{"int8 max", i8, "9223372036854775807", ival(math.MaxInt64), nil},
		{"int8 over", i8, "9223372036854775808", change.Value{}, bad},
		{"int8 under", i8, "-9223372036854775809", change.Value{}, bad},
		{"int8 way over", i8, "99999999999999999999999", change.Value{}, bad},
		{"int8 space", i8, " 1", change.Value{}, bad},
		{"oid max stays positive", oid, "4294967295", ival(4294967295), nil},
		{"xid8 max", xid8, "18446744073709551615", change.Value{Uint: math.MaxUint64}, nil},
		{"xid8 negative", xid8, "-1", change.Value{}, bad},

		{"float4 max", f4, "3.4028235e+38", flt(float64(float32(math.MaxFloat32))), nil},
		{"float4 tenth", f4, "0.1", flt(float64(float32(0.1))), nil},
		{"float4 smallest", f4, "1e-45", flt(float64(math.SmallestNonzeroFloat32)), nil},
		{"float4 NaN", f4, "NaN", flt(math.NaN()), nil},
		{"float4 inf", f4, "Infinity", flt(math.Inf(1)), nil},
		{"float4 -inf", f4, "-Infinity", flt(math.Inf(-1)), nil},
		{"float8 tenth", f8, "0.1", flt(0.1), nil},
		{"float8 exp", f8, "1e-05", flt(1e-05), nil},
		{"float8 max", f8, "1.7976931348623157e+308", flt(math.MaxFloat64), nil},
		{"float8 denormal", f8, "5e-324", flt(math.SmallestNonzeroFloat64), nil},
		{"float8 negative zero", f8, "-0", flt(math.Copysign(0, -1)), nil},
		{"float8 NaN", f8, "NaN", flt(math.NaN()), nil},
		{"float8 inf", f8, "Infinity", flt(math.Inf(1)), nil},
		{"float8 -inf", f8, "-Infinity", flt(math.Inf(-1)), nil},
		{"float8 junk", f8, "abc", change.Value{}, bad},
		{"float8 empty", f8, "", change.Value{}, bad},

		{"numeric", num, "-12.50", str("-12.50"), nil},
		{"numeric zero", num, "0", str("0"), nil},
		{"numeric big", num, "123456789012345678901234567890.123456789012345678901", str("123456789012345678901234567890.123456789012345678901"), nil},
		{"numeric NaN", num, "NaN", str("NaN"), nil},
		{"numeric inf", num, "Infinity", str("Infinity"), nil},
		{"numeric -inf", num, "-Infinity", str("-Infinity"), nil},
		{"numeric exponent", num, "1e5", change.Value{}, bad},
		{"numeric leading dot", num, ".5", change.Value{}, bad},
		{"numeric trailing dot", num, "5.", change.Value{}, bad},
		{"numeric empty", num, "", change.Value{}, bad},
		{"numeric double sign", num, "--1", change.Value{}, bad},
		{"numeric lowercase nan", num, "nan", change.Value{}, bad},

		{"uuid", uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), nil},
		{"uuid upper", uuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), nil},
		{"uuid short", uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", change.Value{}, bad},
		{"uuid no dashes", uuid, "a0eebc999c0b4ef8bb6d6bb9bd380a11abcd", change.Value{}, bad},
		{"uuid bad hex", uuid, "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", change.Value{}, bad},
	})
}

func TestDecodeStrings(t *testing.T) {
	b := func(oid uint32, typmod int32) *typeInfo { return mustBuiltin(t, oid, typmod) }
	huge := strings.Repeat("x€\"\\,{}", 1<<20/10)
	runDecodeCases(t, []decodeCase{
		{"text empty", b(25, -1), "", str(""), nil},
		{"text unicode", b(25, -1), "héllo ✓ 😀 日本", str("héllo ✓ 😀 日本"), nil},
		{"text control", b(25, -1), "a\nb\tc\\", str("a\nb\tc\\"), nil},
		{"text 1MB", b(25, -1), huge, str(huge), nil},
		{"varchar", b(1043, 24), "abc", str("abc"), nil},
		{"bpchar keeps padding", b(1042, 8), "ab  ", str("ab  "), nil},
		{"char", b(18, -1), "a", str("a"), nil},
		{"name", b(19, -1), "pg_class", str("pg_class"), nil},
		{"json", b(114, -1), `{"a": [1, 2.50, "x"]}`, str(`{"a": [1, 2.50, "x"]}`), nil},
		{"jsonb", b(3802, -1), `{"a": [1, 2.50, "x"]}`, str(`{"a": [1, 2.50, "x"]}`), nil},
		{"xml", b(142, -1), "<a>1</a>", str("<a>1</a>"), nil},
		{"inet", b(869, -1), "192.168.0.1/24", str("192.168.0.1/24"), nil},
		{"cidr", b(650, -1), "10.0.0.0/8", str("10.0.0.0/8"), nil},
		{"macaddr", b(829, -1), "08:00:2b:01:02:03", str("08:00:2b:01:02:03"), nil},
		{"macaddr8", b(774, -1), "08:00:2b:01:02:03:04:05", str("08:00:2b:01:02:03:04:05"), nil},
		{"money", b(790, -1), "$1,234.56", str("$1,234.56"), nil},
		{"tsvector", b(3614, -1), "'a' 'fat':2", str("'a' 'fat':2"), nil},
		{"int4range", b(3904, -1), "[1,3)", str("[1,3)"), nil},
		{"point", b(600, -1), "(1.5,2)", str("(1.5,2)"), nil},
		{"bit", b(1560, 3), "101", str("101"), nil},
		{"enum", enumInfo, "happy", str("happy"), nil},
		{"enum unicode", enumInfo, "très ☺", str("très ☺"), nil},
	})
}

func TestDecodeBytea(t *testing.T) {
	by := mustBuiltin(t, 17, -1)
	big := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1<<18)
	bigHex := `\x` + strings.Repeat("deadbeef", 1<<18)
	bad := errMalformedValue
	bv := func(b ...byte) change.Value { return change.Value{Bytes: append([]byte{}, b...)} }
	runDecodeCases(t, []decodeCase{
		{"hex", by, `\x0102ff`, bv(1, 2, 0xff), nil},
		{"hex empty", by, `\x`, bv(), nil},
		{"hex upper", by, `\xABcd`, bv(0xab, 0xcd), nil},
		{"hex 1MB", by, bigHex, change.Value{Bytes: big}, nil},
		{"hex odd", by, `\x0`, change.Value{}, bad},
		{"hex junk", by, `\xzz`, change.Value{}, bad},
		{"escape", by, `\000\377\\A \012`, bv(0, 0xff, '\\', 'A', ' ', '\n'), nil},
		{"escape plain", by, "abc", bv('a', 'b', 'c'), nil},
		{"escape empty", by, "", bv(), nil},
		{"escape bad", by, `\8`, change.Value{}, bad},
		{"escape short", by, `\01`, change.Value{}, bad},
		{"escape trailing backslash", by, `a\`, change.Value{}, bad},
		{"escape out of range", by, `\400`, change.Value{}, bad},
	})
}

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

func TestDecodeArrays(t *testing.T) {
	b := func(oid uint32) *typeInfo { return mustBuiltin(t, oid, -1) }
	ints, texts, nums, byteas, tstzs, boxes, jsons, f8s, bools := b(1007), b(1009), b(1231), b(1001), b(1185), b(1020), b(199), b(1022), b(1000)
	null := change.NullValue
	bad := errMalformedValue
	runDecodeCases(t, []decodeCase{
		{"ints", ints, "{1,2,3}", arr(ival(1), ival(2), ival(3)), nil},
		{"empty", ints, "{}", arr(), nil},
		{"empty with space", ints, "{ }", arr(), nil},
		{"single", ints, "{-7}", arr(ival(-7)), nil},
		{"null element", ints, "{1,NULL,3}", arr(ival(1), null, ival(3)), nil},
		{"lowercase null", ints, "{null}", arr(null), nil},
		{"white space", ints, "{ 1 , 2 }", arr(ival(1), ival(2)), nil},
		{"bounds mismatch", ints, "[0:2]={1,2}", change.Value{}, bad},
		{"bad bounds", ints, "[0-2]={1,2}", change.Value{}, bad},
		{"unterminated", ints, "{1,2", change.Value{}, bad},
		{"empty element", ints, "{1,,2}", change.Value{}, bad},
		{"trailing delimiter", ints, "{1,}", change.Value{}, bad},
		{"trailing text", ints, "{1,2}x", change.Value{}, bad},
		{"no braces", ints, "1,2", change.Value{}, bad},
		{"empty text", ints, "", change.Value{}, bad},
		{"bad element", ints, "{a}", change.Value{}, bad},
		{"element out of range", ints, "{2147483648}", change.Value{}, bad},

		{"texts quoted", texts, `{a,NULL,"NULL","c,d","e\"f","g\\h",""," sp ","null","é{}"}`,
			arr(str("a"), null, str("NULL"), str("c,d"), str(`e"f`), str(`g\h`), str(""), str(" sp "), str("null"), str("é{}")), nil},
		{"texts unicode", texts, "{日本,😀}", arr(str("日本"), str("😀")), nil},
		{"texts unquoted escape", texts, `{a\,b,c\ }`, arr(str("a,b"), str("c ")), nil},
		{"texts unterminated quote", texts, `{"abc}`, change.Value{}, bad},
		{"texts quote inside unquoted", texts, `{ab"c"}`, change.Value{}, bad},
		{"texts text after quote", texts, `{"ab"c}`, change.Value{}, bad},

		{"numerics", nums, "{1.5,NaN,-2,Infinity}", arr(str("1.5"), str("NaN"), str("-2"), str("Infinity")), nil},
		{"numerics null", nums, "{NULL,1}", arr(null, str("1")), nil},
		{"numerics bad", nums, "{1.5,abc}", change.Value{}, bad},
		{"byteas", byteas, `{"\\x0102",NULL,"\\x"}`, arr(change.Value{Bytes: []byte{1, 2}}, null, change.Value{Bytes: []byte{}}), nil},
		{"timestamptzs", tstzs, `{"2024-01-01 00:00:00+00",infinity,NULL}`,
			arr(ival(micros(2024, 1, 1, 0, 0, 0, 0, time.UTC)), ival(change.TimestampInfinity), null), nil},
		{"boxes use semicolons", boxes, "{(1,1),(0,0);(2,2),(1,1)}", arr(str("(1,1),(0,0)"), str("(2,2),(1,1)")), nil},
		{"jsons", jsons, `{"{\"a\": \"b\"}","[1,2]"}`, arr(str(`{"a": "b"}`), str("[1,2]")), nil},
		{"floats", f8s, "{1.5,NaN,-Infinity}", arr(flt(1.5), flt(math.NaN()), flt(math.Inf(-1))), nil},
		{"bools", bools, "{t,f,NULL}", arr(ival(1), ival(0), null), nil},
		{"enums", enumArrayInfo, `{sad,happy,NULL,"with space"}`, arr(str("sad"), str("happy"), null, str("with space")), nil},
	})
}

// TestDecodeArrayBounds: an array whose lower bound is not 1, or with more than one dimension,
// used to be published like '{7,8,9}' (the bounds dropped, or refused as an unsupported
// type). Renumbering the elements changes the value, so such a value is refused as not
// representable, with the bounds and the fix in the message. Texts are array_out's.
func TestDecodeArrayBounds(t *testing.T) {
	ints, texts := mustBuiltin(t, 1007, -1), mustBuiltin(t, 1009, -1)
	for _, tc := range []struct {
		t          *typeInfo
		text, want string // want: a part of the message
	}{
		{ints, "[0:2]={7,8,9}", "[0:2]"},
		{ints, "[-1:1]={1,2,3}", "[-1:1]"},
		{ints, "[-2147483648:-2147483646]={1,2,3}", "[-2147483648:-2147483646]"},
		{ints, "[2:2]={NULL}", "[2:2]"},
		{texts, `[5:5]={"a b"}`, "[5:5]"},
		{ints, "{{1,2},{3,4}}", "2 dimensions"},
		{ints, "{{{1}},{{2}}}", "3 dimensions"},
		{ints, "[0:1][5:6]={{7,7},{7,7}}", "[0:1][5:6]"},
		{ints, "[1:2][1:1]={{1},{2}}", "[1:2][1:1]"},
	} {
		v, err := decodeColumn("a", tc.t, []byte(tc.text))
		if !errors.Is(err, errNotRepresentable) {
			t.Errorf("%s %q = %+v, %v; want a not-representable error", tc.t.SourceType, tc.text, v, err)
			continue
		}
		var nr interface{ NotRepresentable() bool }
		if !errors.As(err, &nr) || !nr.NotRepresentable() {
			t.Errorf("%q: %v does not say NotRepresentable", tc.text, err)
		}
		for _, part := range []string{`column "a"`, tc.t.SourceType, tc.want, "fix:"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%q: error %q does not mention %q", tc.text, err, part)
			}
		}
	}
	// Lower bound 1, spelled out or not, is what an Avro array means.
	runDecodeCases(t, []decodeCase{
		{"default bound", ints, "{7,8,9}", arr(ival(7), ival(8), ival(9)), nil},
		{"explicit bound 1", ints, "[1:3]={7,8,9}", arr(ival(7), ival(8), ival(9)), nil},
		{"empty explicit bound", ints, "[1:0]={}", arr(), nil},
		{"bounds mismatch", ints, "[0:3]={7,8,9}", change.Value{}, errMalformedValue},
		{"bounds mismatch 2-D", ints, "[1:2][1:3]={{1,2},{3,4}}", change.Value{}, errMalformedValue},
		{"unbalanced 2-D", ints, "{{1,2},{3}", change.Value{}, errMalformedValue},
	})
}

func TestDecodeHugeArray(t *testing.T) {
	elem := strings.Repeat(`a"b\c,`, 1<<20/6)
	text := `{"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(elem) + `",NULL,x}`
	got, err := decodeText(mustBuiltin(t, 1009, -1), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Arr) != 3 || got.Arr[0].Str != elem || !got.Arr[1].IsNull() || got.Arr[2].Str != "x" {
		t.Fatalf("huge array decoded wrong: %d elements", len(got.Arr))
	}
}

func TestDecodeColumnNamesTheColumn(t *testing.T) {
	_, err := decodeColumn("matrix", mustBuiltin(t, 1007, -1), []byte("{{1,2},{3,4}}"))
	if !errors.Is(err, errNotRepresentable) || !strings.Contains(err.Error(), `column "matrix"`) || !strings.Contains(err.Error(), "integer[]") {
		t.Fatalf("error %q should name the column, its type and that the value is not representable", err)
	}
	_, err = decodeColumn("born", mustBuiltin(t, 1082, -1), []byte("01/02/2024"))
	if !errors.Is(err, errMalformedValue) || !strings.Contains(err.Error(), `column "born"`) || !strings.Contains(err.Error(), "DateStyle") {
		t.Fatalf("error %q should name the column and DateStyle", err)
	}
}

func TestNumericTypmod(t *testing.T) {
	for _, tc := range []struct {
		typmod      int32
		prec, scale int
		sourceType  string
	}{
		{-1, 0, 0, "numeric"},
		{655366, 10, 2, "numeric(10,2)"},      // from a PG 15 server
		{329730, 5, -2, "numeric(5,-2)"},      // PG 15 negative scale
		{196617, 3, 5, "numeric(3,5)"},        // scale > precision
		{(1 << 16) + 4, 1, 0, "numeric(1,0)"}, // numeric(1)
		{(1000<<16 | 1000) + 4, 1000, 1000, "numeric(1000,1000)"},
	} {
		ti := mustBuiltin(t, 1700, tc.typmod)
		if ti.Precision != tc.prec || ti.Scale != tc.scale || ti.SourceType != tc.sourceType || ti.Kind != change.KindDecimal {
			t.Errorf("typmod %d: got %d,%d %q; want %d,%d %q", tc.typmod, ti.Precision, ti.Scale, ti.SourceType, tc.prec, tc.scale, tc.sourceType)
		}
		at := mustBuiltin(t, 1231, tc.typmod)
		if at.Kind != change.KindArray || at.Elem != change.KindDecimal || at.Precision != tc.prec || at.Scale != tc.scale || at.SourceType != tc.sourceType+"[]" {
			t.Errorf("array typmod %d: got %+v", tc.typmod, at)
		}
	}
}

func TestBuiltinSourceTypes(t *testing.T) {
	for _, tc := range []struct {
		oid    uint32
		typmod int32
		want   string
		kind   change.Kind
	}{
		{16, -1, "boolean", change.KindBool},
		{20, -1, "bigint", change.KindInt64},
		{21, -1, "smallint", change.KindInt16},
		{23, -1, "integer", change.KindInt32},
		{26, -1, "oid", change.KindInt64},
		{700, -1, "real", change.KindFloat32},
		{701, -1, "double precision", change.KindFloat64},
		{1043, -1, "character varying", change.KindString},
		{1043, 24, "character varying(20)", change.KindString},
		{1042, -1, "bpchar", change.KindString},
		{1042, 8, "character(4)", change.KindString},
		{1083, 3, "time(3) without time zone", change.KindTime},
		{1266, 2, "time(2) with time zone", change.KindTimeTZ},
		{1114, -1, "timestamp without time zone", change.KindTimestamp},
		{1184, 0, "timestamp(0) with time zone", change.KindTimestampTZ},
		{1186, 458751, "interval year to month", change.KindInterval},
		{1186, 2147418115, "interval(3)", change.KindInterval},
		{1186, 470286338, "interval day to second(2)", change.KindInterval},
		{1560, 5, "bit(5)", change.KindString},
		{1562, 7, "bit varying(7)", change.KindString},
		{18, -1, `"char"`, change.KindString},
		{1007, -1, "integer[]", change.KindArray},
		{1015, 24, "character varying(20)[]", change.KindArray},
		{1185, -1, "timestamp with time zone[]", change.KindArray},
		{2951, -1, "uuid[]", change.KindArray},
		{3807, -1, "jsonb[]", change.KindArray},
	} {
		ti := mustBuiltin(t, tc.oid, tc.typmod)
		if ti.SourceType != tc.want || ti.Kind != tc.kind {
			t.Errorf("OID %d typmod %d: got %q %s; want %q %s", tc.oid, tc.typmod, ti.SourceType, ti.Kind, tc.want, tc.kind)
		}
	}
}

// TestBuiltinOIDsMatchPgx checks the static OIDs against pgx's pgtype constants.
func TestBuiltinOIDsMatchPgx(t *testing.T) {
	for oid, name := range map[uint32]string{
		pgtype.BoolOID: "bool", pgtype.ByteaOID: "bytea", pgtype.QCharOID: "char", pgtype.NameOID: "name",
		pgtype.Int8OID: "int8", pgtype.Int2OID: "int2", pgtype.Int4OID: "int4", pgtype.TextOID: "text",
		pgtype.OIDOID: "oid", pgtype.TIDOID: "tid", pgtype.XIDOID: "xid", pgtype.CIDOID: "cid",
		pgtype.JSONOID: "json", pgtype.XMLOID: "xml", pgtype.XMLArrayOID: "_xml", pgtype.JSONArrayOID: "_json",
		pgtype.XID8ArrayOID: "_xid8", pgtype.PointOID: "point", pgtype.LsegOID: "lseg", pgtype.PathOID: "path",
		pgtype.BoxOID: "box", pgtype.PolygonOID: "polygon", pgtype.LineOID: "line", pgtype.LineArrayOID: "_line",
		pgtype.CIDROID: "cidr", pgtype.CIDRArrayOID: "_cidr", pgtype.Float4OID: "float4", pgtype.Float8OID: "float8",
		pgtype.CircleOID: "circle", pgtype.CircleArrayOID: "_circle", pgtype.Macaddr8OID: "macaddr8",
		pgtype.MacaddrOID: "macaddr", pgtype.InetOID: "inet", pgtype.BoolArrayOID: "_bool",
		pgtype.QCharArrayOID: "_char", pgtype.NameArrayOID: "_name", pgtype.Int2ArrayOID: "_int2",
		pgtype.Int4ArrayOID: "_int4", pgtype.TextArrayOID: "_text", pgtype.TIDArrayOID: "_tid",
		pgtype.ByteaArrayOID: "_bytea", pgtype.XIDArrayOID: "_xid", pgtype.CIDArrayOID: "_cid",
		pgtype.BPCharArrayOID: "_bpchar", pgtype.VarcharArrayOID: "_varchar", pgtype.Int8ArrayOID: "_int8",
		pgtype.PointArrayOID: "_point", pgtype.LsegArrayOID: "_lseg", pgtype.PathArrayOID: "_path",
		pgtype.BoxArrayOID: "_box", pgtype.Float4ArrayOID: "_float4", pgtype.Float8ArrayOID: "_float8",
		pgtype.PolygonArrayOID: "_polygon", pgtype.OIDArrayOID: "_oid", pgtype.MacaddrArrayOID: "_macaddr",
		pgtype.InetArrayOID: "_inet", pgtype.BPCharOID: "bpchar", pgtype.VarcharOID: "varchar",
		pgtype.DateOID: "date", pgtype.TimeOID: "time", pgtype.TimestampOID: "timestamp",
		pgtype.TimestampArrayOID: "_timestamp", pgtype.DateArrayOID: "_date", pgtype.TimeArrayOID: "_time",
		pgtype.TimestamptzOID: "timestamptz", pgtype.TimestamptzArrayOID: "_timestamptz",
		pgtype.IntervalOID: "interval", pgtype.IntervalArrayOID: "_interval", pgtype.NumericArrayOID: "_numeric",
		pgtype.TimetzOID: "timetz", pgtype.TimetzArrayOID: "_timetz", pgtype.BitOID: "bit",
		pgtype.BitArrayOID: "_bit", pgtype.VarbitOID: "varbit", pgtype.VarbitArrayOID: "_varbit",
		pgtype.NumericOID: "numeric", pgtype.UUIDOID: "uuid", pgtype.UUIDArrayOID: "_uuid",
		pgtype.TSVectorOID: "tsvector", pgtype.TSVectorArrayOID: "_tsvector", pgtype.JSONBOID: "jsonb",
		pgtype.JSONBArrayOID: "_jsonb", pgtype.DaterangeOID: "daterange", pgtype.DaterangeArrayOID: "_daterange",
		pgtype.Int4rangeOID: "int4range", pgtype.Int4rangeArrayOID: "_int4range", pgtype.NumrangeOID: "numrange",
		pgtype.NumrangeArrayOID: "_numrange", pgtype.TsrangeOID: "tsrange", pgtype.TsrangeArrayOID: "_tsrange",
		pgtype.TstzrangeOID: "tstzrange", pgtype.TstzrangeArrayOID: "_tstzrange", pgtype.Int8rangeOID: "int8range",
		pgtype.Int8rangeArrayOID: "_int8range", pgtype.JSONPathOID: "jsonpath", pgtype.JSONPathArrayOID: "_jsonpath",
		pgtype.Int4multirangeOID: "int4multirange", pgtype.NummultirangeOID: "nummultirange",
		pgtype.TsmultirangeOID: "tsmultirange", pgtype.TstzmultirangeOID: "tstzmultirange",
		pgtype.DatemultirangeOID: "datemultirange", pgtype.Int8multirangeOID: "int8multirange",
		pgtype.XID8OID: "xid8", pgtype.Int4multirangeArrayOID: "_int4multirange",
		pgtype.NummultirangeArrayOID: "_nummultirange", pgtype.TsmultirangeArrayOID: "_tsmultirange",
		pgtype.TstzmultirangeArrayOID: "_tstzmultirange", pgtype.DatemultirangeArrayOID: "_datemultirange",
		pgtype.Int8multirangeArrayOID: "_int8multirange",
	} {
		ti, ok := builtinInfo(oid, -1)
		if !ok || ti.Name != name {
			t.Errorf("pgtype OID %d is %s; the static table has %+v", oid, name, ti)
		}
	}
	// The requested mapping of the common types.
	for oid, kind := range map[uint32]change.Kind{
		16: change.KindBool, 17: change.KindBytes, 18: change.KindString, 19: change.KindString,
		20: change.KindInt64, 21: change.KindInt16, 23: change.KindInt32, 25: change.KindString,
		26: change.KindInt64, 114: change.KindJSON, 142: change.KindString, 700: change.KindFloat32,
		701: change.KindFloat64, 869: change.KindString, 650: change.KindString, 829: change.KindString,
		774: change.KindString, 1042: change.KindString, 1043: change.KindString, 1082: change.KindDate,
		1083: change.KindTime, 1114: change.KindTimestamp, 1184: change.KindTimestampTZ,
		1186: change.KindInterval, 1266: change.KindTimeTZ, 1700: change.KindDecimal, 2950: change.KindUUID,
		3802: change.KindJSON,
	} {
		if ti := mustBuiltin(t, oid, -1); ti.Kind != kind {
			t.Errorf("OID %d maps to %s; want %s", oid, ti.Kind, kind)
		}
	}
}

// fakeCatalog answers typeCatalogQuery from in-memory pg_type rows, as the server would.
type fakeCatalog struct {
	rows    map[uint32]pgTypeRow
	queries int
	err     error
}

type fakeRow struct {
	js  string
	err error
}

func (r fakeRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*string) = r.js
	return nil
}

func (f *fakeCatalog) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	f.queries++
	if sql != typeCatalogQuery || len(args) != 1 {
		return fakeRow{err: fmt.Errorf("unexpected query %q %v", sql, args)}
	}
	if f.err != nil {
		return fakeRow{err: f.err}
	}
	var out []pgTypeRow
	seen := map[uint32]bool{}
	var walk func(uint32)
	walk = func(oid uint32) {
		r, ok := f.rows[oid]
		if oid == 0 || seen[oid] || !ok {
			return
		}
		seen[oid] = true
		out = append(out, r)
		walk(r.Base)
		walk(r.Elem)
	}
	walk(args[0].(uint32))
	js, _ := json.Marshal(out)
	return fakeRow{js: string(js)}
}

func newFakeCatalog() *fakeCatalog {
	rows := []pgTypeRow{
		{OID: 50001, Name: "mood", Nsp: "public", QName: "public.mood", Type: "e", Category: "E", Len: 4, Delim: ","},
		{OID: 50002, Name: "_mood", Nsp: "public", QName: "public._mood", Type: "b", Category: "A", Len: -1, Elem: 50001, Delim: ","},
		{OID: 50003, Name: "price", Nsp: "public", QName: "public.price", Type: "d", Category: "N", Len: -1, Base: 1700, Typmod: 655366, Delim: ","},
		{OID: 50004, Name: "price2", Nsp: "shop", QName: "shop.price2", Type: "d", Category: "N", Len: -1, Base: 50003, Typmod: -1, Delim: ","},
		{OID: 50005, Name: "_price2", Nsp: "shop", QName: "shop._price2", Type: "b", Category: "A", Len: -1, Elem: 50004, Delim: ","},
		{OID: 50006, Name: "addr", Nsp: "public", QName: "public.addr", Type: "c", Category: "C", Len: -1, Delim: ","},
		{OID: 50007, Name: "_addr", Nsp: "public", QName: "public._addr", Type: "b", Category: "A", Len: -1, Elem: 50006, Delim: ","},
		{OID: 50008, Name: "intlist", Nsp: "public", QName: "public.intlist", Type: "d", Category: "A", Len: -1, Base: 1007, Typmod: -1, Delim: ","},
		{OID: 50009, Name: "_intlist", Nsp: "public", QName: "public._intlist", Type: "b", Category: "A", Len: -1, Elem: 50008, Delim: ","},
		{OID: 50010, Name: "citext", Nsp: "public", QName: "public.citext", Type: "b", Category: "S", Len: -1, Delim: ","},
		{OID: 50011, Name: "floatrange", Nsp: "public", QName: "public.floatrange", Type: "r", Category: "R", Len: -1, Delim: ","},
		{OID: 50012, Name: "Mood", Nsp: "My Schema", QName: `"My Schema"."Mood"`, Type: "e", Category: "E", Len: 4, Delim: ","},
		{OID: 50013, Name: "pseudo", Nsp: "public", QName: "public.pseudo", Type: "p", Category: "P", Len: 4, Delim: ","},
		{OID: 50014, Name: "price_arr", Nsp: "public", QName: "public.price_arr", Type: "d", Category: "A", Len: -1, Base: 50005, Typmod: -1, Delim: ","},
		{OID: 50015, Name: "moodcol", Nsp: "public", QName: "public.moodcol", Type: "d", Category: "E", Len: 4, Base: 50001, Typmod: -1, Delim: ","},
		{OID: 50016, Name: "vchar", Nsp: "public", QName: "public.vchar", Type: "d", Category: "S", Len: -1, Base: 1043, Typmod: 14, Delim: ","},
	}
	f := &fakeCatalog{rows: map[uint32]pgTypeRow{}}
	for _, r := range rows {
		f.rows[r.OID] = r
	}
	return f
}

func TestTypeCatalogResolve(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		oid        uint32
		typmod     int32
		kind, elem change.Kind
		prec, sc   int
		sourceType string
		elemOID    uint32
	}{
		{"enum", 50001, -1, change.KindEnum, 0, 0, 0, "public.mood", 0},
		{"quoted enum", 50012, -1, change.KindEnum, 0, 0, 0, `"My Schema"."Mood"`, 0},
		{"array of enum", 50002, -1, change.KindArray, change.KindEnum, 0, 0, "public.mood[]", 50001},
		{"domain over numeric(10,2)", 50003, -1, change.KindDecimal, 0, 10, 2, "public.price", 0},
		{"domain over domain", 50004, -1, change.KindDecimal, 0, 10, 2, "shop.price2", 0},
		{"array of domain over domain", 50005, -1, change.KindArray, change.KindDecimal, 10, 2, "shop.price2[]", 50004},
		{"domain over array of domain", 50014, -1, change.KindArray, change.KindDecimal, 10, 2, "public.price_arr", 50004},
		{"domain over array", 50008, -1, change.KindArray, change.KindInt32, 0, 0, "public.intlist", 23},
		{"domain over enum", 50015, -1, change.KindEnum, 0, 0, 0, "public.moodcol", 0},
		{"domain over varchar(10)", 50016, -1, change.KindString, 0, 0, 0, "public.vchar", 0},
		{"extension base type", 50010, -1, change.KindString, 0, 0, 0, "public.citext", 0},
		{"range", 50011, -1, change.KindString, 0, 0, 0, "public.floatrange", 0},
		{"builtin", 1700, 655366, change.KindDecimal, 0, 10, 2, "numeric(10,2)", 0},
		{"builtin array", 1231, 655366, change.KindArray, change.KindDecimal, 10, 2, "numeric(10,2)[]", 1700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCatalog()
			c := newTypeCatalog(f)
			ti, err := c.resolve(ctx, tc.oid, tc.typmod)
			if err != nil {
				t.Fatal(err)
			}
			if ti.Kind != tc.kind || ti.Elem != tc.elem || ti.Precision != tc.prec || ti.Scale != tc.sc ||
				ti.SourceType != tc.sourceType || ti.ElemOID != tc.elemOID || ti.OID != tc.oid {
				t.Fatalf("got %+v", ti)
			}
			if (ti.Kind == change.KindArray) != (ti.elem != nil) {
				t.Fatalf("element info %v for kind %s", ti.elem, ti.Kind)
			}
			if want := 1; tc.oid < 10000 {
				if f.queries != 0 {
					t.Fatalf("built-in type cost %d queries", f.queries)
				}
			} else if f.queries != want {
				t.Fatalf("resolving cost %d queries; want %d", f.queries, want)
			}
			again, err := c.resolve(ctx, tc.oid, tc.typmod)
			if err != nil || again != ti || f.queries > 1 {
				t.Fatalf("second resolve: %p %v, %d queries", again, err, f.queries)
			}
		})
	}
}

func TestTypeCatalogCachesRows(t *testing.T) {
	ctx := context.Background()
	f := newFakeCatalog()
	c := newTypeCatalog(f)
	if _, err := c.resolve(ctx, 50005, -1); err != nil { // _price2 -> price2 -> price -> numeric
		t.Fatal(err)
	}
	for _, oid := range []uint32{50004, 50003} { // rows fetched with the array's query
		if _, err := c.resolve(ctx, oid, -1); err != nil {
			t.Fatal(err)
		}
	}
	if f.queries != 1 {
		t.Fatalf("%d queries; want 1", f.queries)
	}
	c.reset()
	if _, err := c.resolve(ctx, 50003, -1); err != nil || f.queries != 2 {
		t.Fatalf("after reset: %v, %d queries", err, f.queries)
	}
}

func TestTypeCatalogErrors(t *testing.T) {
	ctx := context.Background()
	c := newTypeCatalog(newFakeCatalog())
	_, _, err := c.resolveColumn(ctx, "home", 50006, -1)
	if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), `column "home"`) ||
		!strings.Contains(err.Error(), "public.addr") || !strings.Contains(err.Error(), "composite") {
		t.Fatalf("composite: %v", err)
	}
	_, _, err = c.resolveColumn(ctx, "homes", 50007, -1)
	if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), `column "homes"`) || !strings.Contains(err.Error(), "public.addr") {
		t.Fatalf("array of composite: %v", err)
	}
	if _, err := c.resolve(ctx, 50009, -1); !errors.Is(err, errUnsupportedType) {
		t.Fatalf("array of domain over array: %v", err)
	}
	if _, err := c.resolve(ctx, 50013, -1); !errors.Is(err, errUnsupportedType) {
		t.Fatalf("pseudo-type: %v", err)
	}
	if _, err := c.resolve(ctx, 59999, -1); err == nil || errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), "59999") {
		t.Fatalf("missing OID: %v", err)
	}

	boom := errors.New("connection reset")
	f := newFakeCatalog()
	f.err = boom
	c = newTypeCatalog(f)
	if _, err := c.resolve(ctx, 50001, -1); !errors.Is(err, boom) {
		t.Fatalf("query error: %v", err)
	}
	f.err = nil // a failed query is not cached
	if _, err := c.resolve(ctx, 50001, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := newTypeCatalog(nil).resolve(ctx, 50001, -1); err == nil {
		t.Fatal("no querier: want an error")
	}
	col, _, err := newTypeCatalog(nil).resolveColumn(ctx, "total", 1700, 655366)
	if err != nil || col != (change.Column{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: "numeric(10,2)"}) {
		t.Fatalf("resolveColumn: %+v %v", col, err)
	}
}

// quoteArray writes elements as array_out would; nil is NULL.
func quoteArray(elems []*string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if e == nil {
			b.WriteString("NULL")
			continue
		}
		s := *e
		if s == "" || strings.EqualFold(s, "NULL") || strings.ContainsAny(s, "\"\\{},  \t\n\r\v\f") {
			b.WriteByte('"')
			for i := 0; i < len(s); i++ {
				if s[i] == '"' || s[i] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(s[i])
			}
			b.WriteByte('"')
			continue
		}
		b.WriteString(s)
	}
	b.WriteByte('}')
	return b.String()
}

// FuzzArrayRoundTrip quotes arbitrary elements as array_out does and parses them back.
func FuzzArrayRoundTrip(f *testing.F) {
	f.Add("a\x00NULL\x00\x01\x00c,d\x00e\"f\x00g\\h\x00\x00 sp ")
	f.Add("{}\x00{\x00}\x00null\x00é")
	f.Add("")
	texts := mustBuiltin(f, 1009, -1)
	f.Fuzz(func(t *testing.T, data string) {
		var elems []*string
		if data != "" {
			for _, s := range strings.Split(data, "\x00") {
				if s == "\x01" {
					elems = append(elems, nil)
				} else {
					elems = append(elems, &s)
				}
			}
		}
		text := quoteArray(elems)
		got, err := decodeText(texts, []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got.Arr) != len(elems) {
			t.Fatalf("%q: %d elements; want %d", text, len(got.Arr), len(elems))
		}
		for i, e := range elems {
			if (e == nil) != got.Arr[i].IsNull() || (e != nil && got.Arr[i].Str != *e) {
				t.Fatalf("%q: element %d = %+v; want %v", text, i, got.Arr[i], e)
			}
		}
	})
}

// FuzzDecodeText feeds arbitrary text to every kind: decodeText must fail cleanly, never panic.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"t", "-12.50", "2024-01-02 03:04:05.123456+00", "0044-03-15 BC", "{1,NULL,3}",
		`{"a\"b",NULL}`, `\x0102`, `\000\\`, "[0:1]={1,2}", "{{1},{2}}", "[0:1][5:6]={{7,7},{7,7}}", "294247-01-10 04:00:54.775806",
		"P1Y2M3DT4H5M6.5S", "24:00:00+05", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "NaN", "-Infinity",
		"{(1,1),(0,0);(2,2),(1,1)}", `{"2024-01-01 00:00:00+00",infinity}`, "[1:0]={}"} {
		f.Add([]byte(s))
	}
	var types []*typeInfo
	for _, b := range builtinList {
		types = append(types, mustBuiltin(f, b.oid, -1), mustBuiltin(f, b.arrayOID, -1))
	}
	types = append(types, enumInfo, enumArrayInfo)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		for _, ti := range types {
			v, err := decodeText(ti, data)
			if err == nil && ti.Kind == change.KindArray && v.Arr == nil {
				t.Fatalf("%s %q: array without Arr", ti.SourceType, data)
			}
			if err != nil && !errors.Is(err, errMalformedValue) && !errors.Is(err, errUnsupportedType) && !errors.Is(err, errNotRepresentable) {
				t.Fatalf("%s %q: unclassified error %v", ti.SourceType, data, err)
			}
		}
		if !bytes.Equal(orig, data) {
			t.Fatal("decodeText modified its input")
		}
	})
}

func BenchmarkDecodeText(b *testing.B) {
	for _, bc := range []struct {
		name   string
		oid    uint32
		typmod int32
		text   string
	}{
		{"timestamptz", 1184, -1, "2024-01-02 03:04:05.123456+05:30"},
		{"timestamp", 1114, -1, "2024-01-02 03:04:05.123456"},
		{"numeric", 1700, 655366, "-12345678.50"},
		{"int8", 20, -1, "-9223372036854775807"},
		{"float8", 701, -1, "1.2345678901234567e+100"},
		{"date", 1082, -1, "2024-01-02"},
		{"text", 25, -1, "hello, world"},
		{"uuid", 2950, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"interval_iso", 1186, -1, "P1Y2M3DT4H5M6.5S"},
		{"int4_array_10", 1007, -1, "{1,2,3,4,5,6,7,8,9,10}"},
		{"text_array_10", 1009, -1, `{a,b,"c,d",NULL,e,f,g,"h\"i",j,k}`},
	} {
		ti := mustBuiltin(b, bc.oid, bc.typmod)
		text := []byte(bc.text)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := decodeText(ti, text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingQuerier counts catalog queries sent to a real server.
type countingQuerier struct {
	q catalogQuerier
	n int
}

func (c *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n++
	return c.q.QueryRow(ctx, sql, args...)
}

// TestPostgresTypes checks the catalog and decodeText against a real server. It runs only
// when CDCD_TEST_PG_DSN is set, e.g. postgres://postgres@127.0.0.1:55432/postgres.
func TestPostgresTypes(t *testing.T) {
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
	schema := fmt.Sprintf("cdcd_types_test_%d", time.Now().UnixNano())
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE SCHEMA ` + schema)
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	exec(`SET search_path = ` + schema + `, public`)
	exec(`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'NULL')`)
	exec(`CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0)`)
	exec(`CREATE DOMAIN price2 AS price`)
	exec(`CREATE DOMAIN intlist AS int[]`)
	exec(`CREATE TYPE addr AS (street text, no int)`)
	exec(`CREATE TABLE t (
		m mood, ma mood[], p price, p2 price2, pa price2[], il intlist, home addr, homes addr[],
		n numeric(10,2), nn numeric, na numeric(10,2)[], ns numeric(5,-2), v varchar(20), va varchar(20)[],
		c char(4), bp bpchar, tm time(3), ttz timetz(2), ts timestamp, tz timestamptz(0), iv interval,
		ivy interval year to month, ivd interval day to second(2), b bit(5), vb varbit(7), money money,
		pt point, bx box[], r int4range, tsv tsvector, u uuid, j json, jb jsonb[], x xml, o oid,
		mc macaddr8, i inet, cd cidr, f4 real, f8 double precision, by bytea, d date, qc "char")`)

	q := &countingQuerier{q: conn}
	cat := newTypeCatalog(q)

	t.Run("columns", func(t *testing.T) {
		rows, err := conn.Query(ctx, `SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod)
			FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum`)
		if err != nil {
			t.Fatal(err)
		}
		type attr struct {
			name   string
			oid    uint32
			typmod int32
			format string
		}
		var attrs []attr
		for rows.Next() {
			var a attr
			if err := rows.Scan(&a.name, &a.oid, &a.typmod, &a.format); err != nil {
				t.Fatal(err)
			}
			attrs = append(attrs, a)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[string]change.Column{
			"m":  {Kind: change.KindEnum, SourceType: schema + ".mood"},
			"ma": {Kind: change.KindArray, Elem: change.KindEnum, SourceType: schema + ".mood[]"},
			"p":  {Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price"},
			"p2": {Kind: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price2"},
			"pa": {Kind: change.KindArray, Elem: change.KindDecimal, Precision: 10, Scale: 2, SourceType: schema + ".price2[]"},
			"il": {Kind: change.KindArray, Elem: change.KindInt32, SourceType: schema + ".intlist"},
			"n":  {Kind: change.KindDecimal, Precision: 10, Scale: 2},
			"nn": {Kind: change.KindDecimal},
			"na": {Kind: change.KindArray, Elem: change.KindDecimal, Precision: 10, Scale: 2},
			"ns": {Kind: change.KindDecimal, Precision: 5, Scale: -2},
			"tz": {Kind: change.KindTimestampTZ},
			"iv": {Kind: change.KindInterval},
			"o":  {Kind: change.KindInt64},
			"bx": {Kind: change.KindArray, Elem: change.KindString},
			"jb": {Kind: change.KindArray, Elem: change.KindJSON},
		}
		before := q.n
		for _, a := range attrs {
			col, ti, err := cat.resolveColumn(ctx, a.name, a.oid, a.typmod)
			if a.name == "home" || a.name == "homes" {
				if !errors.Is(err, errUnsupportedType) || !strings.Contains(err.Error(), fmt.Sprintf("column %q", a.name)) {
					t.Errorf("%s: want an unsupported-type error naming the column, got %v", a.name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", a.name, err)
				continue
			}
			if a.oid < 10000 && ti.SourceType != a.format {
				t.Errorf("%s: SourceType %q; format_type says %q", a.name, ti.SourceType, a.format)
			}
			if w, ok := want[a.name]; ok {
				if w.SourceType == "" {
					w.SourceType = a.format
				}
				w.Name = a.name
				if col != w {
					t.Errorf("%s: got %+v; want %+v", a.name, col, w)
				}
			}
		}
		// One query per user type OID the table uses: mood, mood[], price, price2, price2[],
		// intlist, addr and addr[] (some come with an earlier query's rows).
		if n := q.n - before; n < 1 || n > 8 {
			t.Errorf("%d catalog queries", n)
		}
		n := q.n
		for _, a := range attrs {
			_, _, _ = cat.resolveColumn(ctx, a.name, a.oid, a.typmod)
		}
		if q.n != n { // results and pg_type rows (also of unsupported types) are cached
			t.Errorf("resolving again cost %d queries", q.n-n)
		}
	})

	t.Run("builtins", func(t *testing.T) {
		for _, b := range builtinList {
			var name, sql, arraySQL string
			var arrayOID uint32
			var delim string
			err := conn.QueryRow(ctx, `SELECT typname, typarray, format_type(oid, -1), format_type(typarray, -1), typdelim::text
				FROM pg_type WHERE oid = $1`, b.oid).Scan(&name, &arrayOID, &sql, &arraySQL, &delim)
			if errors.Is(err, pgx.ErrNoRows) {
				t.Logf("type %s (OID %d) is not in this server", b.name, b.oid)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			ti, at := mustBuiltin(t, b.oid, -1), mustBuiltin(t, b.arrayOID, -1)
			if name != b.name || arrayOID != b.arrayOID || sql != ti.SourceType || arraySQL != at.SourceType || delim != string(ti.delim) {
				t.Errorf("OID %d: server says %s %d %q %q %q; static %+v / %q", b.oid, name, arrayOID, sql, arraySQL, delim, ti, at.SourceType)
			}
		}
	})

	// value returns the output function's text of a SQL expression under the current session
	// settings, as pgoutput would send it. (A cast to text is not always that: bool::text is
	// "true", char(n)::text drops the padding.)
	value := func(t *testing.T, expr string) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT format('%s', `+expr+`)`).Scan(&s); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	resolveExpr := func(t *testing.T, expr string) *typeInfo {
		t.Helper()
		var oid uint32
		if err := conn.QueryRow(ctx, `SELECT pg_typeof(`+expr+`)::oid`).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		ti, err := cat.resolve(ctx, oid, -1)
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}
	decode := func(t *testing.T, expr string) change.Value {
		t.Helper()
		text := value(t, expr)
		v, err := decodeText(resolveExpr(t, expr), []byte(text))
		if err != nil {
			t.Fatalf("%s = %q: %v", expr, text, err)
		}
		return v
	}

	t.Run("temporal", func(t *testing.T) {
		exprs := []string{
			"timestamptz '2024-01-02 03:04:05.123456+00'", "timestamptz '1970-01-01 00:00:00+00'",
			"timestamptz '0001-01-01 00:00:00+00'", "timestamptz '9999-12-31 23:59:59.999999+00'",
			"timestamptz '1850-06-01 12:00:00+00'", "timestamptz '1900-01-01 00:00:00+00'",
			"timestamptz '0044-03-15 12:00:00+00 BC'", "timestamptz '4714-11-24 00:00:00+00 BC'",
			"timestamptz '2024-03-31 01:30:00+00'", "timestamptz '2024-10-27 00:30:00+00'",
			"timestamptz '1969-12-31 23:59:59.999999+00'",
			"timestamp '2024-01-02 03:04:05.123456'", "timestamp '0001-01-01 00:00:00'",
			"timestamp '9999-12-31 23:59:59.999999'", "timestamp '0001-12-31 23:00:00 BC'",
			"timestamp '100000-01-01 00:00:00'", "timestamp '294247-01-10 04:00:54.775806'",
			"timestamptz '294247-01-10 04:00:54.775806+00'", "timestamp '4713-01-01 00:00:00 BC'",
			"time '00:00:00'", "time '24:00:00'", "time '13:14:15.000001'",
		}
		for _, tzName := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "Pacific/Chatham", "America/Sao_Paulo", "Africa/Monrovia"} {
			exec(`SET TimeZone = '` + tzName + `'`)
			for _, e := range exprs {
				var want int64
				if err := conn.QueryRow(ctx, `SELECT (extract(epoch FROM `+e+`) * 1000000)::int8`).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if got := decode(t, e); got.Int != want {
					t.Errorf("%s: %s = %q decodes to %d; want %d", tzName, e, value(t, e), got.Int, want)
				}
			}
		}
		exec(`SET TimeZone = 'UTC'`)
		for _, e := range []string{"timestamp '294247-01-10 04:00:54.775807'", "timestamp '294276-12-31 23:59:59.999999'",
			"timestamptz '294276-12-31 23:59:59.999999+00'", "timestamptz '294247-01-10 04:00:54.775807+00'"} {
			text := value(t, e)
			if v, err := decodeText(resolveExpr(t, e), []byte(text)); !errors.Is(err, errNotRepresentable) {
				t.Errorf("%s = %q decodes to %+v, %v; want a not-representable error", e, text, v, err)
			}
		}
		for _, e := range []string{"date '1970-01-01'", "date '0001-01-01'", "date '9999-12-31'", "date '0044-03-15 BC'",
			"date '0001-02-29 BC'", "date '4713-01-01 BC'", "date '5874897-12-31'", "date '2000-02-29'"} {
			var want int64
			if err := conn.QueryRow(ctx, `SELECT (`+e+` - date '1970-01-01')::int8`).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if got := decode(t, e); got.Int != want {
				t.Errorf("%s decodes to %d; want %d", e, got.Int, want)
			}
		}
		for e, want := range map[string]int64{
			"date 'infinity'": change.DateInfinity, "date '-infinity'": change.DateNegInfinity,
			"timestamp 'infinity'": change.TimestampInfinity, "timestamptz '-infinity'": change.TimestampNegInfinity,
		} {
			if got := decode(t, e); got.Int != want {
				t.Errorf("%s decodes to %d", e, got.Int)
			}
		}
		for e, want := range map[string]string{
			"timetz '10:11:12.5+02'": "10:11:12.5+02:00", "timetz '10:11:12-05:30'": "10:11:12-05:30",
			"timetz '12:00:00+01:02:03'": "12:00:00+01:02:03", "timetz '24:00:00+00'": "24:00:00+00:00",
		} {
			if got := decode(t, e); got.Str != want {
				t.Errorf("%s decodes to %q; want %q", e, got.Str, want)
			}
		}
	})

	t.Run("intervals", func(t *testing.T) {
		// What connectReplication sets passes through verbatim; other styles are refused.
		for _, lit := range []string{"1 year 2 mons 3 days 04:05:06.5", "-1 year -2 mons +3 days -04:05:06.5", "0",
			"-1 sec", "100 hours", "1 mon -1 day", "-0.5 sec", "3 days", "1 year", "-2 days +3 hours",
			"2562047788 hours 54.775807 secs", "178956970 years 7 mons 2147483647 days 2562047788:00:54.775807",
			"-178956970 years -7 mons -2147483647 days -2562047788:00:54.775807",
			"1 microsecond", "-1 microsecond", "5 minutes", "-5 minutes 3 seconds", "1 day -00:00:01", "12 mons",
			"-1 year 1 mon", "1.5 days", "-0.000001 sec", "2 weeks"} {
			expr := "interval '" + lit + "'"
			exec(`SET IntervalStyle = iso_8601`)
			if iso, got := value(t, expr), decode(t, expr); got.Str != iso {
				t.Errorf("%s (%q) decodes to %q", lit, iso, got.Str)
			}
		}
		for _, style := range []string{"postgres", "postgres_verbose", "sql_standard"} {
			exec(`SET IntervalStyle = ` + style)
			text := value(t, "interval '1 year 2 mons 3 days 04:05:06'")
			if _, err := decodeText(mustBuiltin(t, 1186, -1), []byte(text)); !errors.Is(err, errMalformedValue) || !strings.Contains(err.Error(), "IntervalStyle=iso_8601") {
				t.Errorf("%s %q: %v; want a malformed-value error naming IntervalStyle", style, text, err)
			}
		}
		exec(`SET IntervalStyle = iso_8601`)
	})

	t.Run("floats", func(t *testing.T) {
		for _, lit := range []string{"0.1", "1e-05", "3.4028235e38", "1.17549435e-38", "1e-45", "-0", "NaN", "Infinity", "-Infinity", "123456.789", "2.5e+20"} {
			var f4 float32
			var f8 float64
			if err := conn.QueryRow(ctx, `SELECT '`+lit+`'::float4, '`+lit+`'::float8`).Scan(&f4, &f8); err != nil {
				t.Fatal(err)
			}
			g4, g8 := decode(t, "'"+lit+"'::float4"), decode(t, "'"+lit+"'::float8")
			if math.Float64bits(g4.Float) != math.Float64bits(float64(f4)) && !(math.IsNaN(g4.Float) && math.IsNaN(float64(f4))) {
				t.Errorf("float4 %s: %v; want %v", lit, g4.Float, f4)
			}
			if math.Float64bits(g8.Float) != math.Float64bits(f8) && !(math.IsNaN(g8.Float) && math.IsNaN(f8)) {
				t.Errorf("float8 %s: %v; want %v", lit, g8.Float, f8)
			}
		}
	})

	t.Run("bytea", func(t *testing.T) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		for _, style := range []string{"hex", "escape"} {
			exec(`SET bytea_output = ` + style)
			for _, b := range [][]byte{all, {}, []byte(`\x00`), []byte("plain text")} {
				var text string
				if err := conn.QueryRow(ctx, `SELECT $1::bytea::text`, b).Scan(&text); err != nil {
					t.Fatal(err)
				}
				got, err := decodeText(mustBuiltin(t, 17, -1), []byte(text))
				if err != nil || !bytes.Equal(got.Bytes, b) {
					t.Errorf("%s %q: %v %v", style, text, got.Bytes, err)
				}
			}
		}
		exec(`SET bytea_output = hex`)
	})

	t.Run("values", func(t *testing.T) {
		for expr, want := range map[string]string{
			"'happy'::mood": "happy", "12.5::price": "12.50", "12.5::price2": "12.50", "'NaN'::numeric": "NaN",
			"'Infinity'::numeric": "Infinity", "'-Infinity'::numeric": "-Infinity", "12345::numeric(5,-2)": "12300",
			"'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			`'{"b": 1, "a": [1, 2.50]}'::jsonb`:            `{"a": [1, 2.50], "b": 1}`, `'{"b": 1,  "a": 2}'::json`: `{"b": 1,  "a": 2}`,
			"'ab'::char(4)": "ab  ", "'héllo ✓'::text": "héllo ✓", "''::text": "", "'192.168.0.1/24'::inet": "192.168.0.1/24",
			"'[1,5)'::int4range": "[1,5)", "'a fat cat'::tsvector": "'a' 'cat' 'fat'", "B'101'::bit(3)": "101",
			"4294967295::oid::text": "4294967295",
		} {
			if got := decode(t, expr); got.Str != want {
				t.Errorf("%s decodes to %q; want %q", expr, got.Str, want)
			}
		}
		if got, f := decode(t, "true"), decode(t, "false"); got.Int != 1 || f.Int != 0 {
			t.Errorf("bool decodes to %d, %d", got.Int, f.Int)
		}
		if got := decode(t, "'-9223372036854775808'::int8"); got.Int != math.MinInt64 {
			t.Errorf("int8 min decodes to %d", got.Int)
		}
		if got := decode(t, "4294967295::oid"); got.Int != 4294967295 {
			t.Errorf("oid decodes to %d", got.Int)
		}
		huge := strings.Repeat("é\"\\,{} x", 1<<17)
		var text string
		if err := conn.QueryRow(ctx, `SELECT ARRAY[$1::text, NULL]::text`, huge).Scan(&text); err != nil {
			t.Fatal(err)
		}
		got, err := decodeText(mustBuiltin(t, 1009, -1), []byte(text))
		if err != nil || len(got.Arr) != 2 || got.Arr[0].Str != huge || !got.Arr[1].IsNull() {
			t.Errorf("huge text array: %v", err)
		}
	})

	t.Run("arrays", func(t *testing.T) {
		for _, expr := range []string{
			`ARRAY['a', NULL, 'NULL', 'null', 'c,d', 'e"f', 'g\h', '', ' sp ', 'é{}', E'tab\there', 'x;y']::text[]`,
			`ARRAY['sad', NULL, 'with space', 'NULL']::mood[]`,
			`ARRAY['{"a": "b"}', NULL, '"s"', '1.50']::jsonb[]`,
			`ARRAY[1.5, NULL]::numeric[]`,
			`'{}'::text[]`,
		} {
			isJSON := strings.Contains(expr, "json")
			var js string
			if err := conn.QueryRow(ctx, `SELECT coalesce(array_to_json(`+expr+`), '[]')::text`).Scan(&js); err != nil {
				t.Fatal(err)
			}
			var want []any
			if err := json.Unmarshal([]byte(js), &want); err != nil {
				t.Fatal(err)
			}
			got := decode(t, expr)
			if len(got.Arr) != len(want) {
				t.Fatalf("%s: %d elements; want %d", expr, len(got.Arr), len(want))
			}
			for i, w := range want {
				g := got.Arr[i]
				switch {
				case w == nil:
					if !g.IsNull() {
						t.Errorf("%s[%d] = %+v; want NULL", expr, i, g)
					}
				case !isJSON:
					if g.Str != fmt.Sprint(w) {
						t.Errorf("%s[%d] = %q; want %v", expr, i, g.Str, w)
					}
				default: // compare JSON values
					wj, _ := json.Marshal(w)
					var gj any
					if err := json.Unmarshal([]byte(g.Str), &gj); err != nil {
						t.Fatalf("%s[%d] = %q: %v", expr, i, g.Str, err)
					}
					if gb, _ := json.Marshal(gj); !bytes.Equal(gb, wj) {
						t.Errorf("%s[%d] = %s; want %s", expr, i, gb, wj)
					}
				}
			}
		}
		ts := decode(t, `ARRAY[timestamptz '2024-01-01 00:00:00+00', NULL, 'infinity']`)
		if !slices.EqualFunc(ts.Arr, []change.Value{ival(micros(2024, 1, 1, 0, 0, 0, 0, time.UTC)), change.NullValue, ival(change.TimestampInfinity)}, equalValue) {
			t.Errorf("timestamptz[]: %+v", ts.Arr)
		}
		bx := decode(t, `ARRAY[box '((1,1),(0,0))', box '((2,2),(1,1))']`)
		if len(bx.Arr) != 2 || bx.Arr[0].Str != "(1,1),(0,0)" {
			t.Errorf("box[]: %+v", bx.Arr)
		}
		// Values an Avro array cannot hold unchanged: refused, never renumbered or flattened.
		for _, expr := range []string{`'[0:2]={1,2,3}'::int[]`, `'[5:5]={"a b"}'::text[]`, `'{{1,2},{3,4}}'::int[]`,
			`array_fill(7, ARRAY[2,2], ARRAY[0,5])`, `'{{{1}},{{2}}}'::int[]`} {
			text := value(t, expr)
			_, err := decodeColumn("c", resolveExpr(t, expr), []byte(text))
			if !errors.Is(err, errNotRepresentable) || !strings.Contains(err.Error(), `column "c"`) {
				t.Errorf("%s = %q: %v; want a not-representable error naming the column", expr, text, err)
			}
		}
		if got := decode(t, `('[0:2]={1,2,3}'::int[])[:]`); !slices.EqualFunc(got.Arr, []change.Value{ival(1), ival(2), ival(3)}, equalValue) {
			t.Errorf("the suggested fix col[:] does not give lower bound 1: %+v", got.Arr)
		}
	})
}
