package encode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/sr"
)

// Class names why a record could not be published as it should. It is the value of the
// dead-letter error-class header and a bounded metric label.
type Class string

const (
	// ClassValueNotRepresentable: the schema cannot hold the value (a decimal out of range, NaN
	// in numeric(P,S), NULL in a NOT NULL column).
	ClassValueNotRepresentable Class = "value_not_representable"
	// ClassSchemaRejected: the registry refused the schema (incompatible or invalid), or cdcd
	// cannot derive a valid schema for the table (colliding column names).
	ClassSchemaRejected Class = "schema_rejected"
	// ClassUndecodable: the source handed over something cdcd cannot interpret (an unknown
	// kind, malformed decimal text, a missing value).
	ClassUndecodable Class = "undecodable_value"
	// ClassRecordTooLarge: the encoded record exceeds the topic's size limit. The publisher
	// raises it; it is defined here so every class lives in one place.
	ClassRecordTooLarge Class = "record_too_large"
)

// Error is a classified, non-retriable failure to encode one event. Its message names the
// table, the column or subject, the problem and the fix.
type Error struct {
	Class   Class
	Table   string // qualified "schema.table"
	Subject string // registry subject, for ClassSchemaRejected
	Column  string // source column name, for value problems
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Table)
	what, name := "column ", e.Column
	if name == "" {
		what, name = "subject ", e.Subject
	}
	if name != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(what)
		b.WriteString(name)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(string(e.Class))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of the first *Error in err's chain, or "" if there is none.
func ClassOf(err error) Class {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Class
	}
	return ""
}

// Retriable reports whether err is a transient schema registry failure worth retrying with
// backoff: a *RegistryError whose cause is a 5xx, 408 or 429 answer, a connection failure or
// a timeout. Anything that did not come from the registry is not (a full disk, a Kafka
// error), nor are classified *Errors (poison records), refusals (409/422), authorization
// failures, certificate errors and cancellation.
func Retriable(err error) bool {
	if err == nil {
		return false
	}
	var ce *Error
	if errors.As(err, &ce) {
		return false
	}
	var re *RegistryError
	if !errors.As(err, &re) {
		return false
	}
	return transient(re.Err)
}

// transient classifies the cause of a failed registry request.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == 408 || re.StatusCode == 429
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return false // retrying does not fix a certificate
	}
	var ne net.Error // *url.Error and *net.OpError: refused, reset, timed out
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// RegistryError is a failed schema registry request: the registry could not be reached, timed
// out, or answered with an error other than a refusal of the schema (a refusal is an *Error
// of class ClassSchemaRejected). Every error that comes from a Registry reaches the caller
// wrapped in one, so Retriable can tell registry trouble from anything else.
type RegistryError struct {
	Op      string // what was being done, e.g. "registering schema"
	Subject string // the subject concerned, if any
	Err     error
}

func (e *RegistryError) Error() string {
	if e.Subject != "" {
		return fmt.Sprintf("schema registry: %s for subject %s: %v", e.Op, e.Subject, e.Err)
	}
	return fmt.Sprintf("schema registry: %s: %v", e.Op, e.Err)
}

func (e *RegistryError) Unwrap() error { return e.Err }
