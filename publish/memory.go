package publish

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// Memory is what a pipeline's sink remembers across sessions. Safe for concurrent use where
// noted; the rest belongs to the session goroutine (one session at a time).
type Memory struct {
	// tooLarge holds positions the broker refused as too large (MESSAGE_TOO_LARGE arrives
	// after the record was produced, failing its transaction). The broker refuses a whole
	// producer batch, so a refusal only makes its records suspects; the next session produces
	// each suspect in a batch of its own, and a record refused alone is confirmed, then
	// dead-lettered up front. Written by produce callbacks, read by the session goroutine.
	tooLargeMu sync.Mutex
	tooLarge   map[change.Position]refusal
	tooLargeN  atomic.Int32 // len(tooLarge)

	published atomic.Uint64 // events committed to Kafka (dead letters included)

	dlLogs map[[2]string]*dlLog // session goroutine only
}

// NewMemory returns an empty memory.
func NewMemory() *Memory { return &Memory{tooLarge: map[change.Position]refusal{}} }

// refusal is what the broker said of a position's record: nothing, that a batch holding it
// was too large, or that the record alone was.
type refusal uint8

const (
	notRefused refusal = iota
	refusedInBatch
	refusedAlone
)

// Published is how many events were committed to Kafka (safe for concurrent use).
func (m *Memory) Published() uint64 { return m.published.Load() }

func (m *Memory) refused(pos change.Position) refusal {
	if m.tooLargeN.Load() == 0 { // the common case, without a lock per event
		return notRefused
	}
	m.tooLargeMu.Lock()
	defer m.tooLargeMu.Unlock()
	return m.tooLarge[pos]
}

// markTooLarge records a refusal of pos's record: alone, or in a batch with others.
func (m *Memory) markTooLarge(pos change.Position, alone bool) {
	m.tooLargeMu.Lock()
	if alone {
		m.tooLarge[pos] = refusedAlone
	} else if m.tooLarge[pos] != refusedAlone {
		m.tooLarge[pos] = refusedInBatch
	}
	m.tooLargeN.Store(int32(len(m.tooLarge)))
	m.tooLargeMu.Unlock()
}

func (m *Memory) tooLargePositions() []string {
	m.tooLargeMu.Lock()
	defer m.tooLargeMu.Unlock()
	var at []string
	for pos := range m.tooLarge {
		at = append(at, pos.String())
	}
	return at
}

// deadLetterLogEvery bounds dead-letter log lines to one per table and class per interval: a
// table whose schema the registry refuses dead-letters every row, and the log must stay
// readable. The metric counts every one.
const deadLetterLogEvery = 10 * time.Second

type dlLog struct {
	at         time.Time
	suppressed int
}

// logDeadLetter reports whether to log a dead letter now, and how many were not logged since
// the last line.
func (m *Memory) logDeadLetter(table, class string) (int, bool) {
	if m.dlLogs == nil {
		m.dlLogs = map[[2]string]*dlLog{}
	}
	k := [2]string{table, class}
	l := m.dlLogs[k]
	if l == nil {
		l = &dlLog{}
		m.dlLogs[k] = l
	}
	if time.Since(l.at) < deadLetterLogEvery {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.at, l.suppressed = time.Now(), 0
	return n, true
}
