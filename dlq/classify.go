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

// Classify is the one place that decides whether a failure to publish one change is a poison
// record and of which class. ok is false for failures that retrying may fix.
func Classify(err error) (class string, ok bool) {
	if err == nil {
		return "", false
	}
	if encode.Retriable(err) {
		return "", false
	}
	var ee *encode.Error
	if errors.As(err, &ee) {
		return string(ee.Class), true
	}
	var nr notRepresentable
	if errors.As(err, &nr) && nr.NotRepresentable() {
		return ClassValueNotRepresentable, true
	}
	var de decodeError
	if errors.As(err, &de) && de.Undecodable() {
		return ClassUndecodable, true
	}
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return ClassRecordTooLarge, true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		// A per-record rejection by the broker (invalid record, policy violation, ...).
		switch ke {
		case kerr.InvalidRecord, kerr.CorruptMessage, kerr.PolicyViolation:
			return ClassOther, true
		}
	}
	return "", false
}
