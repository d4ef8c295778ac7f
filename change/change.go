// Package change holds the leaf types every stage of a pipeline shares: a source turns the
// database's log into Events, the encoder turns Events into records, the publisher commits
// them together with the Position of the last event.
//
// Invariants that every source must keep:
//   - Events of one source transaction are emitted together, in commit order, and transactions
//     are emitted in commit order; Position is strictly increasing across a pipeline's stream.
//   - An Event's Table is immutable once emitted; a schema change yields a new *Table with a
//     higher Version, so stages may cache work per *Table.
//   - Before and After hold one Value per column of Table, in column order (or are nil).
package change

import (
	"fmt"
	"sync"
	"time"
)

// Op is the kind of row change, spelled as in the Debezium envelope.
type Op byte

const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r' // a row read by a snapshot
	OpTruncate Op = 't'
)

func (o Op) String() string {
	switch o {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
		return string(rune(o))
	}
	return fmt.Sprintf("Op(%d)", byte(o))
}

// Name is the op's long name, used as a bounded metric label.
func (o Op) Name() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpRead:
		return "read"
	case OpTruncate:
		return "truncate"
	}
	return "unknown"
}

// Event is one committed row change (or a truncate of a table).
type Event struct {
	Op    Op
	Table *Table
	// Before is the old row (updates and deletes; only key columns unless the table's
	// replica identity is FULL, the others are then Value{Kind: Absent}).
	Before []Value
	// After is the new row (creates, updates, snapshot reads).
	After []Value
	Pos   Position
	// CommitTime is the source transaction's commit time.
	CommitTime time.Time
	// TxID is the source transaction id (Postgres xid; MySQL GTID or empty).
	TxID string
	// Err is set when the source could not decode a value of the row: the value is kept as
	// State Undecodable with the source's raw text, and the change is a poison record.
	Err error
	// SnapshotLast marks the last row a snapshot of the table emits (op r only): the
	// envelope's source.snapshot is then "last" instead of "true".
	SnapshotLast bool
	// Outbox, if set, makes the event an outbox event: its record is Outbox's, not the
	// change envelope (see OutboxEvent).
	Outbox *OutboxEvent
}

// Commit ends a source transaction in a stream of Items: every Event of the transaction came
// before it, and none after it.
type Commit struct {
	// Pos is the transaction's position: Tx as in its events, Index past every event's index
	// (a source may leave gaps between event indexes, e.g. for changes it does not capture).
	Pos Position
	// AckPosition is the source position to acknowledge (Source.Ack) once the transaction is
	// durable in Kafka, in the source's own terms (PostgreSQL: the end LSN of the commit
	// record; MySQL: Pos.Tx). Zero acknowledges nothing.
	AckPosition uint64
	Time        time.Time
	// State, if set, is the source's own progress to record with this position (the snapshot
	// engine's state, see package snapshot). The offsets record keeps the latest State of the
	// Commits it covers, so a restart resumes it exactly when it resumes the position.
	State []byte
}

// Item is one element of a source's output: an Event, or the Commit closing a transaction.
// Sources emit only committed transactions, but may emit a transaction's events before its
// Commit when the transaction is known to be committed already (Postgres sends
// non-streamed transactions after they commit). If the stream breaks before the Commit, the
// consumer discards the partial transaction and restarts from its last committed position.
type Item struct {
	Commit *Commit // nil for an event
	Event  Event
}

// Position orders everything a pipeline emits. Positions are compared by (Tx, Index).
//
// Tx orders source transactions: for Postgres the LSN of the commit record; for MySQL the
// binlog file sequence number in the high 32 bits and the offset of the transaction's start
// (its GTID or BEGIN event) in the low 32 bits (binlog offsets are 32-bit). Index is the
// event's index inside its transaction. Resume is an opaque, source-specific token needed to
// restart the source there (MySQL: the file, start offset and GTID set before the
// transaction); Postgres leaves it empty.
type Position struct {
	Tx     uint64 `json:"tx"`
	Index  uint32 `json:"index"`
	Resume string `json:"resume,omitempty"`
}

// Compare returns -1, 0 or 1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Tx < q.Tx:
		return -1
	case p.Tx > q.Tx:
		return 1
	case p.Index < q.Index:
		return -1
	case p.Index > q.Index:
		return 1
	}
	return 0
}

// IsZero reports whether p is the zero position (nothing committed yet).
func (p Position) IsZero() bool { return p.Tx == 0 && p.Index == 0 && p.Resume == "" }

func (p Position) String() string {
	return fmt.Sprintf("%X/%X#%d", uint32(p.Tx>>32), uint32(p.Tx), p.Index)
}

// Resume tells a source where the pipeline stands when a session starts.
type Resume struct {
	// Committed is false on a pipeline's first start (no offsets record yet).
	Committed bool
	// Pos is the last published position (see offsets.Record).
	Pos Position
	// AckPosition is the acknowledgement position (Commit.AckPosition) of the last fully
	// published transaction.
	AckPosition uint64
	// State is the source's progress committed with Pos (Commit.State), nil if none.
	State []byte
	// OnStreaming, if set, is called once the source holds its replication stream (the slot
	// or binlog connection is ours), before the first Item is sent. The pipeline initializes
	// its transactional producer only then, so a standby never fences the active instance.
	OnStreaming func(Streaming)
}

// Streaming describes the stream a source holds.
type Streaming struct {
	// AckedPosition is how far the source was acknowledged before this session (Postgres: the
	// slot's confirmed_flush_lsn). A committed position behind it means changes in between
	// were consumed by someone else: the pipeline refuses to go on.
	AckedPosition uint64
}

// ChunkSize is the capacity of a pooled chunk of Items.
const ChunkSize = 512

var chunkPool = sync.Pool{New: func() any { c := make([]Item, 0, ChunkSize); return &c }}

// GetChunk returns an empty chunk from a pool shared by sources and the pipeline.
func GetChunk() []Item { return (*chunkPool.Get().(*[]Item))[:0] }

// PutChunk returns a chunk its receiver has finished with. Its items are cleared so the pool
// holds no row data.
func PutChunk(c []Item) {
	if cap(c) != ChunkSize {
		return
	}
	clear(c[:cap(c)])
	c = c[:0]
	chunkPool.Put(&c)
}
