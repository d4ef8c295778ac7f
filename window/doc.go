// Package window runs window jobs: windowed aggregates over cdcd's change topics, computed
// exactly once inside cdcd by Kafka consumer groups (no cluster of its own).
//
// A job has two stages in one consumer group and one Kafka transaction per poll (txn.go):
//   - ingest: an input change becomes Recs (extract.go), written to the repartition topic
//     by group (records.go), followed by one watermark record per input partition read to
//     every repartition partition (watermark.go);
//   - aggregate: a repartition partition's Recs go into its Processor's windows
//     (processor.go, assign.go, sessions.go, rows.go); closed windows become results, records
//     for closed windows late records, and changed state changelog records (state.go).
//
// Invariants:
//   - What commits together: the consumed input and repartition offsets, the repartition
//     records they produced, and the results, late records, dead letters and changelog
//     records of the windows they changed, all in one transaction (EOS v2). An abort rewinds
//     the consumer, and the state is restored from the changelog (restore.go): state, output
//     and progress never part.
//   - A partition is processed only with its state restored, read_committed, after every
//     transaction of a previous owner ended (restore.go).
//   - Stream time of a repartition partition is the minimum over the job's input partitions of
//     the largest event time each has reached (watermark.go); it never goes back. A record is
//     late only if that stream time has passed its window's end + grace (sessions: the end
//     of a session it would merge with, closed or open, + gap + grace).
//   - The state on record carries the fingerprint of the spec that shaped it (fingerprint.go);
//     a changed spec never reads old state.
//   - The repartition topic keeps records until the group's committed offsets pass them; then
//     the job deletes them (topics.go). The changelog is compacted.
//   - Idle ticks and releases that move stream time without input are records in the
//     repartition partition itself, processed and committed like any other (idle.go,
//     watermark.go), so a replay gives the same results. Only a partition's owner writes them:
//     the group's callbacks say which partitions that is, and the coordinator's assignment
//     confirms it before any tick (owner.go).
package window
