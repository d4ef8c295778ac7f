package dlq

import (
	"errors"

	"github.com/cdcd-dev/cdcd/encode"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Classes of poison records. Retriable failures (a broker or the registry unavailable,
// timeouts, a lost connection) have no class: they are retried, never dead-lettered.
const (
	ClassValueNotRepresentable = string(encode.ClassValueNotRepresentable)
	ClassSchemaRejected        = string(encode.ClassSchemaRejected)
	ClassRecordTooLarge        = string(encode.ClassRecordTooLarge)
	ClassUndecodable           = string(encode.ClassUndecodable)
	ClassOther                 = "other"
)

// Classes lists every class, for metrics and the replay filter.
var Classes = []string{ClassValueNotRepresentable, ClassSchemaRejected, ClassRecordTooLarge, ClassUndecodable, ClassOther}

// decodeError is what sources return for a value they cannot decode.
type decodeError interface{ Undecodable() bool }

// notRepresentable is what sources return for a value they decoded but cannot carry unchanged
// (an array whose lower bound is not 1, a timestamp past what a long holds): the value is
// fine, the record format cannot hold it.
type notRepresentable interface{ NotRepresentable() bool }

// Verdict is what a failure to turn one change into a record calls for.
type Verdict int

const (
	// Unknown: the failure says nothing about this change alone (a full disk, a plain error).
	// The caller decides by where it came from: a source's error about an event is still that
	// event's poison (ClassOther); an encoder error is about cdcd itself (the registry refusing
	// its credentials) and stops the pipeline.
	Unknown Verdict = iota
	// Retry: transient (the registry or a broker unavailable, a timeout); never dead-lettered.
	Retry
	// Poison: this change alone cannot be published; the class says why.
	Poison
)

// Classify is the one place that decides what a failure to publish one change is: retried,
// a poison record of a class, or unknown (see Verdict).
func Classify(err error) (Verdict, string) {
	if err == nil {
		return Unknown, ""
	}
	if encode.Retriable(err) {
		return Retry, ""
	}
	var ee *encode.Error
	if errors.As(err, &ee) {
		return Poison, string(ee.Class)
	}
	var nr notRepresentable
	if errors.As(err, &nr) && nr.NotRepresentable() {
		return Poison, ClassValueNotRepresentable
	}
	var de decodeError
	if errors.As(err, &de) && de.Undecodable() {
		return Poison, ClassUndecodable
	}
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return Poison, ClassRecordTooLarge
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		// A per-record rejection by the broker (invalid record, policy violation, ...).
		switch ke {
		case kerr.InvalidRecord, kerr.CorruptMessage, kerr.PolicyViolation:
			return Poison, ClassOther
		}
	}
	return Unknown, ""
}
