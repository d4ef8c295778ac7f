package postgres

// Column types and their text decoding.
//
// The code is split by role: types_catalog.go resolves a column's type OID and typmod to a
// typeInfo; decode_scalar.go, decode_time.go and decode_array.go decode the text of each Kind;
// this file holds the entry points and the error classes.
//
// pgoutput sends every column in TEXT format: the output function's text of the value, plus
// the column's type OID and typmod in the Relation message. typeCatalog maps (OID, typmod) to
// a typeInfo (built-in types statically, user types with one pg_type query, cached), and
// decodeText turns the text into a change.Value of the type's Kind.
//
// The text forms depend on session settings of the connection that runs the output functions
// (the replication connection, which connectReplication fixes). decodeText requires
// DateStyle=ISO and IntervalStyle=iso_8601 (passed through verbatim) and accepts bytea_output
// hex or escape. Floats round-trip exactly only with extra_float_digits >= 1 (the default
// since PG 12). timestamptz text carries its own UTC offset, so TimeZone does not change a
// decoded timestamp; it does change the text of tstzrange and tstzmultirange values, which
// are carried as text, so it must stay fixed (UTC) for the same value to encode the same way.
// money's text follows the server's lc_monetary, which the connection does not fix.
//
// A type with no matching Kind is either carried as KindString holding its output text, when
// that text is the type's canonical, lossless representation (ranges, multiranges, geometric
// types, bit strings, tsvector, money, xml, extension base types such as citext), or rejected
// with errUnsupportedType (composite and pseudo types). A value the column's Kind cannot hold
// unchanged (a timestamp past int64 microseconds, an array with another lower bound than 1 or
// more than one dimension) is refused with errNotRepresentable: cdcd never changes a value
// silently.

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cdcd-dev/cdcd/change"
)

// errUnsupportedType marks a column type or value shape cdcd cannot carry without changing
// the value. It is a schema problem: retrying does not help.
var errUnsupportedType = errors.New("unsupported type")

// errMalformedValue marks column text that is not what the type's output function prints
// under the session settings decodeText requires.
var errMalformedValue = errors.New("malformed value")

// errNotRepresentable marks a well-formed value that the column's Kind cannot hold without
// changing it (a timestamp past what int64 microseconds since 1970 can count, an array whose
// lower bound is not 1 or that has more than one dimension). The change is a poison record of
// class value_not_representable: errors.As finds NotRepresentable through any wrapping.
var errNotRepresentable error = notRepresentableError{}

type notRepresentableError struct{}

func (notRepresentableError) Error() string { return "value not representable" }

// NotRepresentable marks the error for the dead-letter classification (class
// value_not_representable, not undecodable_value): the text was understood, and no retry or
// cdcd upgrade changes the outcome; the value itself must change.
func (notRepresentableError) NotRepresentable() bool { return true }

// decodeColumn is decodeText with the column's name in the error.
func decodeColumn(name string, t *typeInfo, text []byte) (change.Value, error) {
	v, err := decodeText(t, text)
	if err != nil {
		return v, fmt.Errorf("column %q: %w", name, err)
	}
	return v, nil
}

// decodeText decodes a column's pgoutput text into a Present value of t.Kind. It allocates
// only the value's own string, bytes or element slice. Errors wrap errMalformedValue (text
// that is not what the output function prints under the session settings), errNotRepresentable
// (a valid value the Kind cannot hold unchanged) or errUnsupportedType; they name the type,
// not the column.
func decodeText(t *typeInfo, text []byte) (change.Value, error) {
	switch t.Kind {
	case change.KindBool:
		return decodeBool(t, text)
	case change.KindInt16, change.KindInt32, change.KindInt64:
		return decodeInt(t, text)
	case change.KindUint64:
		return decodeUint(t, text)
	case change.KindFloat32, change.KindFloat64:
		return decodeFloat(t, text)
	case change.KindDecimal:
		return decodeNumeric(t, text)
	case change.KindString, change.KindJSON, change.KindEnum:
		return change.Value{Str: string(text)}, nil
	case change.KindBytes:
		return decodeBytea(t, text)
	case change.KindUUID:
		return decodeUUID(t, text)
	case change.KindDate:
		return decodeDate(t, text)
	case change.KindTime:
		return decodeTime(t, text)
	case change.KindTimeTZ:
		return decodeTimeTZ(t, text)
	case change.KindTimestamp, change.KindTimestampTZ:
		return decodeTimestamp(t, text)
	case change.KindInterval:
		return decodeInterval(t, text)
	case change.KindArray:
		return decodeArray(t, text)
	}
	return change.Value{}, fmt.Errorf("%w: %s has kind %s, which decodeText does not handle", errUnsupportedType, t.SourceType, t.Kind)
}

func malformed(t *typeInfo, text []byte, why string) error {
	return fmt.Errorf("%w: %s %s: %s", errMalformedValue, t.SourceType, excerpt(text), why)
}

// excerpt quotes the start of a value for an error message.
func excerpt(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return strconv.Quote(string(b[:limit])) + "... (" + strconv.Itoa(len(b)) + " bytes)"
	}
	return strconv.Quote(string(b))
}
