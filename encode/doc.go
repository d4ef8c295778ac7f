// Package encode turns change.Events into Kafka records: it derives Avro schemas per table
// version, registers them with a Confluent-compatible schema registry, and writes each event
// as a Debezium-compatible envelope in the Confluent wire format (magic byte 0, 4-byte
// big-endian schema id, Avro binary).
//
// Invariants:
//
//   - Encoding is pure: an event becomes (topic, key, value) or a classified *Error; nothing
//     is dropped, rounded, truncated or replaced by a made-up value. A value the schema cannot
//     hold is an *Error of class ClassValueNotRepresentable, never a silent conversion.
//   - Schemas are derived once per *change.Table (tables are immutable) and are deterministic:
//     the same table shape yields byte-identical schema JSON, so re-registering is a no-op.
//   - The registry is called only when a table version is first seen; rows are encoded from a
//     compiled per-table plan straight into a reused buffer, without reflection or maps.
//   - The same row encodes to the same key bytes and the same `after` bytes whether it came
//     from a snapshot (op "r") or the stream (op "c"/"u").
//   - Nullable columns are unions with null first and "default": null, so adding a nullable
//     column keeps BACKWARD compatibility.
//   - cdcd sets the configured compatibility level on every subject without a level of its
//     own (joined with the global level, so nothing in force is lowered), never changes a
//     level a subject has of its own, and reads Apicurio's NONE-for-no-rule correctly (see
//     SRRegistry.EnsureCompatibility).
//   - A registry refusal says in cdcd's words which column changed how, which rule of the
//     subject's level that breaks and what to do, with commands that work on the registry in
//     use; the registry's own text comes last.
//   - Every failure of a registry request is a *RegistryError; Retriable answers only for
//     those.
//   - Distinct tables never share a topic (nor, by TopicNameStrategy, a subject): CheckTopics
//     refuses a configuration whose tables, dead-letter and offsets topics collide, and an
//     Encoder refuses a second table on a topic it already writes.
//
// # The envelope
//
// op is c, u, d, r (snapshot read) or t (truncate); ts_ms is the encoder's clock
// (Config.Now). source carries version, connector, name (the pipeline), ts_ms (the source
// commit time; 0 when unknown), snapshot ("true" for op r, "last" for the last row of a
// table's snapshot, else "false"), db, schema, table, txId (a
// numeric transaction id: the Postgres xid), lsn (Postgres only: the commit LSN,
// Position.Tx), gtid (a non-numeric transaction id: a MySQL or MariaDB GTID) and sequence
// (the event's cdcd Position as {"tx":N,"index":I}, which totally orders a pipeline's
// events). transaction is {id: TxID, total_order: the event's position among its
// transaction's events, data_collection_order: its position among the transaction's events
// of its table (both from 1, see TxTracker; Encode alone uses the in-transaction index + 1
// for both)} when the event has a TxID. BEGIN and END records of each transaction, on a
// topic of their own, are EncodeTxBoundary's (Debezium's transaction metadata, with its
// schema names). unchanged_toast lists the columns
// of after whose value was not sent (see "Unchanged TOAST"); null otherwise.
//
// Records of a table without a key, and truncates, have a null key; a delete of a keyed
// table is followed by the tombstone Record.Tombstone returns, unless the caller disables
// tombstones.
//
// # The before image
//
// `before` and `after` share one Value record, whose NOT NULL columns are plain (non-union)
// Avro types (except those described under "Unchanged TOAST"). When the source did not send every old column (change.Absent: Postgres replica
// identity DEFAULT/INDEX, MySQL binlog_row_image MINIMAL/NOBLOB), writing NULL or a default
// for those columns would claim values the database never stated. So the rule is:
//
//	before is emitted only when it is complete; if any value of the old row is Absent,
//	before is null.
//
// The old key is still in the record key. Consumers that need old values set REPLICA
// IDENTITY FULL (Postgres) or binlog_row_image=FULL (MySQL). An Absent value in `after` or in
// a key column is a source bug and yields ClassUndecodable.
//
// # Unchanged TOAST
//
// Postgres does not resend an unchanged out-of-line (TOASTed) value on update
// (change.Unchanged) unless the table has REPLICA IDENTITY FULL, in which case the source
// fills it from the old row. A legal UPDATE must never stop a pipeline, and a consumer must
// always be able to tell "unchanged, not sent" from NULL, for every type. So:
//
//   - text, varchar, json, jsonb, bytea and unconstrained numeric (Avro string or bytes)
//     hold UnchangedPlaceholder, "__debezium_unavailable_value" (its UTF-8 bytes for bytes),
//     the placeholder Debezium writes and existing sinks recognise;
//   - an array of those holds a one-element array of the placeholder, as Debezium writes
//     text arrays;
//   - any other column (an array of integers or timestamps, numeric(P,S)) has no honest
//     placeholder and is null. Such a column is therefore nullable in the schemas of Postgres
//     pipelines even when the database declares it NOT NULL, unless its values can never be
//     stored out of line (fixed-size types; numeric of up to 28 digits);
//   - the envelope's unchanged_toast field lists, in column order, the Avro names of every
//     column of after whose value was not sent; it is null when all were. A consumer that
//     applies changes keeps its current value for the listed columns. The list, not the
//     placeholder, is authoritative: a text can legitimately equal the placeholder.
//
// A key column is never guessed: an unchanged marker in a key column is ClassUndecodable.
// before is written only when complete, so an old row with an unchanged value gives a null
// before. A primary-key change is published as a delete of the old key and a create of the
// new one; that create can carry unchanged columns (op "c" with unchanged_toast set), whose
// values are in the row under the old key. Consumers carry them over from the old row, or the
// table gets REPLICA IDENTITY FULL so the source sends them.
//
// # Type mapping
//
// Config.TimePrecision and Config.DecimalHandling choose Debezium's encodings instead of the
// default (ModeAvro) below: see modes.go and the type tables of docs/record-format.md.
//
// bool->boolean; int16,int32->int; int64->long; uint64->bytes decimal(20,0); float32->float;
// float64->double; numeric(P,S)->bytes decimal(P,S); unconstrained numeric->string (carries
// NaN, ±Infinity and any scale exactly); string, enum, timetz, interval->string; uuid->string
// uuid; json->string with connect.name io.debezium.data.Json; bytes->bytes; date->int date;
// time->long time-micros; duration (MySQL TIME)->long with connect.name
// io.debezium.time.MicroTime (a time-micros is a time of day, and standard readers refuse one
// below zero or past 24 h); timestamp->long local-timestamp-micros; timestamptz->long
// timestamp-micros; array->array of ["null", element]. Postgres ±infinity dates and
// timestamps travel as their sentinel values (change.TimestampInfinity etc.). A numeric with
// negative scale (PG15+) numeric(P,-N) becomes decimal(P+N,0); one with scale above its
// precision numeric(P,S>P) becomes decimal(S,S): both hold every value the column can.
//
// # Names
//
// Avro names must match [A-Za-z_][A-Za-z0-9_]*. A table, column or topic segment that does
// not is sanitized (invalid characters become '_', a leading digit gets a '_' prefix) and,
// because sanitizing can merge distinct names, gets '_' plus 8 hex digits of the FNV-1a hash
// of the original name appended. Two columns that still collide are an error.
package encode
