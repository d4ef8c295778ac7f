package encode

import "math/big"

// The Avro binary primitives cdcd writes with, for the other Avro writers of the module
// (package window's results): one encoding of longs, strings, doubles and decimals.

// AppendLong appends an Avro long (or int): zigzag varint.
func AppendLong(dst []byte, v int64) []byte { return appendLong(dst, v) }

// AppendString appends an Avro string: its length, then its bytes.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendDouble appends an Avro double.
func AppendDouble(dst []byte, v float64) []byte { return appendDouble(dst, v) }

// AppendBool appends an Avro boolean.
func AppendBool(dst []byte, v bool) []byte { return appendBool(dst, v) }

// AppendBigDecimal appends the unscaled value of an Avro decimal (bytes): minimal big-endian
// two's complement.
func AppendBigDecimal(dst []byte, unscaled *big.Int) []byte {
	if unscaled.IsInt64() {
		return appendInt64Decimal(dst, unscaled.Int64())
	}
	return appendMagnitude(dst, unscaled.Bytes(), unscaled.Sign() < 0) // Bytes is a fresh copy
}
