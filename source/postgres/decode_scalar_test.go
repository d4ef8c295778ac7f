package postgres

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

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
