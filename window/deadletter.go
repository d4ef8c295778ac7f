package window

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers of a job's dead letters; the class and message keys are the pipelines' own.
const (
	HeaderErrorClass   = "cdcd.error.class"
	HeaderErrorMessage = "cdcd.error.message"
	HeaderJob          = "cdcd.window.job"
	HeaderOrigin       = "cdcd.origin"
	HeaderTime         = "cdcd.time"
)

// Classes of input records a job can never process.
const (
	ClassNeedBeforeImage = "need_before_image"       // an update or delete (table mode), or a delete (events mode), without its before image
	ClassFieldMissing    = "field_missing"           // the record's schema lacks a field the job reads
	ClassUndecodable     = "undecodable_value"       // not Avro in the registry's wire format
	ClassTruncate        = "truncate"                // a TRUNCATE in table mode (its rows stay counted)
	ClassEventTime       = "event_time_out_of_range" // ±infinity, or far after the wall clock
)

// wireFormatError: an input record that is not Avro in the schema registry's wire format, or
// names a schema that is not Avro.
type wireFormatError struct{ msg string }

func (e *wireFormatError) Error() string { return e.msg }

// unprocessable returns the class of an input error that reading the record again cannot
// cure, or "" for a failure of a service (the registry, Kafka), which is retried.
func unprocessable(err error) string {
	var nb *ErrNeedBefore
	var fe *fieldError
	var wf *wireFormatError
	switch {
	case errors.As(err, &nb):
		return ClassNeedBeforeImage
	case errors.As(err, &fe):
		return ClassFieldMissing
	case errors.As(err, &wf), errors.Is(err, errUndecodable):
		return ClassUndecodable
	case errors.Is(err, errTruncate):
		return ClassTruncate
	case errors.As(err, new(*eventTimeError)):
		return ClassEventTime
	}
	return ""
}

// deadLetter is the dead letter of input record r: its key, value and headers as they were
// (so it can be read with the registry, and replayed by producing it again), and headers
// naming the class, the cause with its fix, the job and where it came from.
func (j *Job) deadLetter(r *kgo.Record, class string, cause error, now time.Time) *kgo.Record {
	hdr := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	headers := append([]kgo.RecordHeader{
		hdr(HeaderErrorClass, class),
		hdr(HeaderErrorMessage, cause.Error()),
		hdr(HeaderJob, j.spec.Name),
		hdr(HeaderOrigin, fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)),
		hdr(HeaderTime, now.UTC().Format(time.RFC3339Nano)),
	}, r.Headers...)
	return &kgo.Record{Topic: j.spec.DeadLetter, Key: r.Key, Value: r.Value, Headers: headers}
}

// DeadLetterTopicConfig is the configuration a job's dead-letter topic is created with (it
// has one partition, one order): kept forever, as the pipelines' dead-letter topics, taking
// records up to maxMessageBytes (0: the broker's default).
func DeadLetterTopicConfig(maxMessageBytes int) map[string]*string {
	cfg := map[string]*string{"retention.ms": kadm.StringPtr("-1")}
	if maxMessageBytes > 0 {
		cfg["max.message.bytes"] = kadm.StringPtr(strconv.Itoa(maxMessageBytes))
	}
	return cfg
}
