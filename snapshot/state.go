// Package snapshot is the source-neutral engine that reads a pipeline's existing rows: in
// chunks by key, several chunks at once, while the stream keeps flowing, each chunk made
// consistent with the stream by a watermark, and its progress committed in the same Kafka
// transaction as its rows.
//
// # How a chunk stays consistent with the stream
//
// A source implements Worker. For each chunk the engine asks a worker to Read the chunk's rows
// as of one consistent snapshot S of the database, then to write a high watermark W into the
// source's log (Postgres: a transactional logical message). The source's stream, when it
// reaches W, calls Engine.Take: the chunk's rows are emitted right there, inside W's
// transaction, minus every row whose key the stream changed, since tracking began, by a
// transaction S does not see. The proof that the latest record per key then equals the table
// and never goes back in time rests on four facts the source guarantees (see the Postgres
// source's snapshot.go for how it does):
//
//  1. Every transaction S sees commits in the stream before W (S is taken before W is
//     written, and a transaction becomes visible only after its commit is in the log).
//  2. For one key, the transactions that change it are ordered the same way in the stream and
//     in visibility: if S sees a later one it sees every earlier one (writers of one row
//     wait for each other to finish).
//  3. Tracking of a table began before any transaction S does not see could reach the stream:
//     the source's Prepare runs after tracking began and before the table's first snapshot
//     is taken, and waits out every transaction that the stream had already passed but a
//     snapshot could still miss (committed in the log, not yet visible).
//  4. The tracker forgets a key's change only once every snapshot still to be used sees it.
//
// Then, for a chunk row with key k:
//   - If the stream carried, before W, a change of k by a transaction S does not see, that
//     change is newer than the row (2), was emitted already, and the row is dropped (3, 4
//     make sure the tracker knows it).
//   - Otherwise every change of k before W is one S sees (2), so the row is the state after
//     the last of them: emitting it at W repeats the latest state, never an older one. Every
//     change after W is by a transaction S does not see (1): newer, and emitted after the row.
//
// A key missing from the chunk is either absent at S (a later insert reaches the stream) or
// deleted by a transaction S sees (its delete came before W). A truncate S does not see,
// streamed before W, drops the whole chunk.
//
// # Progress
//
// State is the engine's progress, committed in the offsets record with the position of the
// chunk's last row (change.Commit.State): the tables still to read, each with its planning
// cursor and the chunks planned but not published. A restart re-reads the pending chunks and
// plans on from the cursor; a published chunk is never read again. Chunks of one table are
// planned ahead by key (Worker.Plan), so several can be read at once.
package snapshot

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Mode is a pipeline's snapshot setting.
type Mode string

const (
	// Initial snapshots every captured table when the pipeline starts for the first time.
	Initial Mode = "initial"
	// Never reads no existing rows (on-demand requests still work).
	Never Mode = "never"
	// WhenNeeded is Initial, plus a snapshot of each table added to tables: later.
	WhenNeeded Mode = "when_needed"
)

// stateVersion of the JSON; a newer one is refused.
const stateVersion = 1

// State is the progress the offsets record carries.
type State struct {
	Version int `json:"v"`
	// Captured are the tables the pipeline captured when the state was written (so that
	// when_needed knows which tables are new).
	Captured []string `json:"captured,omitempty"`
	// Done are the tables whose snapshot finished at least once.
	Done []string `json:"done,omitempty"`
	// Queue holds the snapshots not finished, in the order they run.
	Queue []*Task `json:"queue,omitempty"`
	// Requests are the ids of the latest on-demand requests taken (a request the stream
	// delivers again after a restart is not queued twice).
	Requests []string `json:"requests,omitempty"`
	NextID   uint64   `json:"next_id"`
}

// maxRequestIDs bounds State.Requests.
const maxRequestIDs = 64

// Task is the snapshot of one table (or of its rows matching Where).
type Task struct {
	ID     uint64 `json:"id"`
	Table  string `json:"table"`
	Where  string `json:"where,omitempty"`
	Reason string `json:"reason"` // initial | added | requested
	// ByPage: the table has no usable key and is read by ranges of pages (Chunk bounds are
	// page numbers, Lo inclusive, Hi exclusive).
	ByPage bool `json:"by_page,omitempty"`
	// Next is where planning goes on: the exclusive lower bound of the next chunk (key
	// values as the source prints them; a page number for ByPage); nil at the start.
	Next []string `json:"next,omitempty"`
	// Planned: every chunk up to the end of the table is planned.
	Planned bool `json:"planned,omitempty"`
	// Pending are the chunks planned and not yet published.
	Pending   []Chunk   `json:"pending,omitempty"`
	NextSeq   uint64    `json:"next_seq"`
	Rows      uint64    `json:"rows"`
	Chunks    uint64    `json:"chunks"`
	Estimated int64     `json:"estimated"`
	Started   time.Time `json:"started"`
}

// Chunk is a key range of a table: (Lo, Hi], nil meaning unbounded. For a table read by
// pages, [Lo, Hi) in page numbers.
type Chunk struct {
	Seq uint64   `json:"seq"`
	Lo  []string `json:"lo,omitempty"`
	Hi  []string `json:"hi,omitempty"`
}

// ParseState decodes a committed state; nil or empty input gives nil.
func ParseState(b []byte) (*State, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding the committed snapshot progress: %w", err)
	}
	if s.Version > stateVersion {
		return nil, fmt.Errorf("the committed snapshot progress has format version %d, newer than this cdcd understands (%d): upgrade cdcd", s.Version, stateVersion)
	}
	return &s, nil
}

// Marshal encodes the state for the offsets record.
func (s *State) Marshal() []byte {
	s.Version = stateVersion
	b, _ := json.Marshal(s)
	return b
}

// Plan decides, at a session's start, what the state becomes for the configured tables:
//   - no committed position (a new pipeline): initial and when_needed queue every table;
//   - when_needed: every table not captured before is queued ("added");
//   - tables no longer captured leave the queue.
//
// committed is whether the pipeline has a committed position; prev the committed state (nil
// when there is none: a pipeline that never recorded one counts its tables as captured).
func Plan(mode Mode, tables []string, committed bool, prev *State, now time.Time) *State {
	s := &State{}
	if prev != nil {
		*s = *prev
		s.Queue = slices.Clone(prev.Queue)
	}
	if prev == nil && committed {
		s.Captured = slices.Clone(tables)
	}
	queued := map[string]bool{}
	for _, t := range s.Queue {
		queued[t.Table] = true
	}
	add := func(table, reason string) {
		if queued[table] {
			return
		}
		s.NextID++
		s.Queue = append(s.Queue, &Task{ID: s.NextID, Table: table, Reason: reason, Started: now})
		queued[table] = true
	}
	switch {
	case !committed && mode != Never:
		for _, t := range tables {
			add(t, "initial")
		}
	case mode == WhenNeeded:
		for _, t := range tables {
			if !slices.Contains(s.Captured, t) {
				add(t, "added")
			}
		}
	}
	s.Queue = slices.DeleteFunc(s.Queue, func(t *Task) bool { return !slices.Contains(tables, t.Table) })
	s.Captured = slices.Clone(tables)
	return s
}

func (s *State) clone() *State {
	c := *s
	c.Captured = slices.Clone(s.Captured)
	c.Done = slices.Clone(s.Done)
	c.Requests = slices.Clone(s.Requests)
	c.Queue = make([]*Task, len(s.Queue))
	for i, t := range s.Queue {
		tc := *t
		tc.Next = slices.Clone(t.Next)
		tc.Pending = slices.Clone(t.Pending)
		c.Queue[i] = &tc
	}
	return &c
}
