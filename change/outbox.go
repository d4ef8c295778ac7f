package change

// OutboxEvent is what an event of an outbox table becomes (package shape's outbox router):
// one record on Topic, keyed by Key, whose value is Payload alone, with Headers.
type OutboxEvent struct {
	// Topic is the record's topic; empty when the row named none (RouteColumn NULL or empty).
	Topic string
	// RouteColumn names the column Topic was made from, for messages.
	RouteColumn string
	// Key is the record key's value (Null: a null key), of column KeyColumn.
	Key       Value
	KeyColumn Column
	// Payload is the record value (Null: a null value), of column PayloadColumn.
	Payload       Value
	PayloadColumn Column
	// PayloadSchema, if set, is an Avro schema the payload (JSON text) is parsed against;
	// otherwise the value is the payload column as it is (a JSON column: an Avro string).
	PayloadSchema string
	// Headers of the record, in order (the row's id first).
	Headers []Header
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte // nil: a NULL column
}
