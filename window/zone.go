package window

import (
	"fmt"
	"github.com/twmb/franz-go/pkg/kgo"
	"time"
	_ "time/tzdata" // time_zone works where the system has no zone database (containers)

	"github.com/hamba/avro/v2"
)

// Time zones. Event times are instants (µs since the epoch, UTC). A job's time_zone (default
// UTC) says how to read times without a zone (a PostgreSQL timestamp without time zone, a
// date: the wall-clock time in that zone) and where time windows start: a daily window starts
// at local midnight, and on a day the clocks change it is 23 or 25 hours long.

// isLocalTime reports whether the time field is a timestamp without zone or a date: the Avro
// local-timestamp and date logical types, and in a pipeline's Debezium time modes the plain
// longs and ints Debezium names io.debezium.time.Timestamp, MicroTimestamp, NanoTimestamp and
// Date, and Kafka Connect's Timestamp and Date (time_precision: connect writes a timestamp
// without time zone as Connect's Timestamp; a timestamp with time zone is a ZonedTimestamp
// string in every Debezium mode).
func isLocalTime(env avro.Schema, p Path) bool {
	ft := fieldType(env, p)
	if ft == nil {
		return false
	}
	if u, ok := ft.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		ft = u.Types()[1]
	}
	ft = deref(ft)
	if ps, ok := ft.(avro.PropertySchema); ok {
		switch name, _ := ps.Prop("connect.name").(string); name {
		case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp", "io.debezium.time.Date",
			"org.apache.kafka.connect.data.Timestamp", "org.apache.kafka.connect.data.Date":
			return true
		}
	}
	switch logical(ft) {
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros, avro.Date:
		return true
	}
	return false
}

// zoneFromLocal turns a wall-clock time in zone (µs since 1970-01-01T00:00 local) into an
// instant; in a gap or overlap at a clock change, as time.Date does.
func zoneFromLocal(zone *time.Location, local int64) int64 {
	t := time.UnixMicro(local).UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), zone).UnixMicro()
}

// zoneToLocal turns an instant into the wall-clock time in zone (µs since 1970-01-01T00:00
// local).
func zoneToLocal(zone *time.Location, t int64) int64 {
	_, off := time.UnixMicro(t).In(zone).Zone()
	return t + int64(off)*1_000_000
}

// maxAhead bounds how far after the wall clock an event time may lie: further, it is taken
// for an error (a typo year) that would move stream time to the end of time.
const maxAhead = 365 * 24 * time.Hour

// eventTimeError: an input record's event time is out of range.
type eventTimeError struct{ msg string }

func (e *eventTimeError) Error() string { return e.msg }

// checkEventTimes returns an eventTimeError for the first of recs whose event time is out of
// range: ±infinity, or more than maxAhead after now. r is the input record they came from.
func (j *Job) checkEventTimes(recs []Rec, r *kgo.Record) error {
	for i := range recs {
		t := recs[i].T
		if t == noTime || t != badTime && t <= j.aheadLimit {
			continue
		}
		// The limit only grows with the clock: read the clock when a time passes the
		// cached limit, not for every record.
		if j.aheadLimit = time.Now().Add(maxAhead).UnixMicro(); t != badTime && t <= j.aheadLimit {
			continue
		}
		// Only now: this runs for every input record.
		where := fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
		shown := "±infinity"
		if t != badTime {
			shown = time.UnixMicro(t).UTC().Format(time.RFC3339Nano)
		}
		return &eventTimeError{fmt.Sprintf("window job %s: %s: event time %s (%s) is out of range (±infinity, or more than %s after the wall clock): it would move stream time past every window; "+
			"fix: correct the value at the source, or choose another time field; with on_error: dlq such records are dead-lettered and the job goes on", j.spec.Name, where, j.spec.Time, shown, maxAhead)}
	}
	return nil
}
