package window

import (
	"slices"
	"sync"
	"time"
)

// Stats is what a job reports for metrics. Counters count what committed: records of an
// aborted transaction are counted again when they are processed again.
type Stats struct {
	RecordsIn   uint64 // input change records consumed
	RecordsOut  uint64 // results written
	RecordsLate uint64 // records written to the late topic
	DeadLetters uint64 // input records written to the dead-letter topic
	Commits     uint64 // transactions committed
	Aborts      uint64 // transactions aborted (they are retried from the committed offsets)
	// Gauges over the partitions this instance owns, as of the last transaction.
	OpenWindows int
	StateBytes  int
	// StreamTime of each owned repartition partition that has one.
	StreamTime map[int32]time.Time
	// Partitions: the repartition partitions whose state this instance holds now, sorted.
	Partitions []int32
	// Restore progress: changelog records and bytes read by every restore so far; partitions
	// being restored now and the records their restore has still to read (an upper bound:
	// compaction may have removed some).
	RestoredRecords, RestoredBytes uint64
	RestoringPartitions            int
	RestoreRemaining               int64
}

// txnCounts are one transaction's records, added to Stats when it commits.
type txnCounts struct {
	in, out, late, dlq uint64
	dlqCause           error // the transaction's first dead letter's cause
}

// stats is written by the run loop and read by Stats from any goroutine.
type stats struct {
	mu sync.Mutex
	s  Stats
}

// Stats returns a copy of the job's counters and gauges; safe for concurrent use.
func (j *Job) Stats() Stats {
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	s := j.stats.s
	s.StreamTime = make(map[int32]time.Time, len(j.stats.s.StreamTime))
	for p, t := range j.stats.s.StreamTime {
		s.StreamTime[p] = t
	}
	s.Partitions = append([]int32(nil), j.stats.s.Partitions...)
	return s
}

// held records the partitions whose state the instance holds; called by the run loop.
func (j *Job) held() {
	owned := j.owned()
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	if !slices.Equal(owned, j.stats.s.Partitions) {
		j.stats.s.Partitions = owned
	}
}

// ended records the end of a transaction and the owned partitions' gauges; called by the run
// loop, which owns procs.
func (j *Job) ended(c txnCounts, committed bool) {
	open, bytes := 0, 0
	st := make(map[int32]time.Time, len(j.procs))
	for p, proc := range j.procs {
		open += proc.OpenWindows()
		bytes += proc.StateBytes()
		if t, ok := proc.StreamTime(); ok {
			st[p] = time.UnixMicro(t)
		}
	}
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	if committed {
		j.stats.s.Commits++
		j.stats.s.RecordsIn += c.in
		j.stats.s.RecordsOut += c.out
		j.stats.s.RecordsLate += c.late
		j.stats.s.DeadLetters += c.dlq
	} else {
		j.stats.s.Aborts++
	}
	j.stats.s.OpenWindows, j.stats.s.StateBytes, j.stats.s.StreamTime = open, bytes, st
}

// restoring records the start (n partitions, left records to read) or, with n = 0, the end
// of a restore.
func (j *Job) restoring(n int, left int64) {
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	j.stats.s.RestoringPartitions, j.stats.s.RestoreRemaining = n, left
}

// restored counts changelog records read by a restore.
func (j *Job) restored(records, bytes uint64, left int64) {
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	j.stats.s.RestoredRecords += records
	j.stats.s.RestoredBytes += bytes
	j.stats.s.RestoreRemaining = left
}
