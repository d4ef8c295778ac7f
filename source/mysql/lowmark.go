package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// lowMarks hands the position of low watermarks (snapshot consistency "watermarks", see
// snapshot.go) from the stream to the snapshot workers waiting for them.
//
// A worker registers its token before it writes the low watermark row, so the stream cannot
// pass the row before anyone waits for it; the stream, at the end of the row's transaction,
// hands the transaction's Tx to the waiter and removes the entry; a waiter that gives up (its
// context ended: the session is over) removes it too. Tokens nobody waits for (another
// pipeline's, an earlier session's) are ignored. So the map holds only the chunks being read,
// at most the snapshot's parallelism. Shared by the stream goroutine and the workers: every
// access holds mu.
type lowMarks struct {
	mu      sync.Mutex
	waiting map[string]chan uint64 // token -> where its Tx goes (buffered: one send, never blocks)
}

func newLowMarks() *lowMarks { return &lowMarks{waiting: map[string]chan uint64{}} }

// newLowToken is a fresh low watermark token of pipeline.
func newLowToken(pipeline string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return pipeline + "/low/" + hex.EncodeToString(b[:])
}

// expect registers token, before its row is written; wait receives its Tx from the channel.
func (l *lowMarks) expect(token string) <-chan uint64 {
	ch := make(chan uint64, 1)
	l.mu.Lock()
	l.waiting[token] = ch
	l.mu.Unlock()
	return ch
}

// reached tells the waiter of token that the stream took up its row, in the transaction tx
// (stream goroutine, at the transaction's end).
func (l *lowMarks) reached(token string, tx uint64) {
	l.mu.Lock()
	ch, ok := l.waiting[token]
	delete(l.waiting, token)
	l.mu.Unlock()
	if ok {
		ch <- tx
	}
}

// wait blocks until the stream reached token (ch is what expect returned for it) and returns
// its Tx, or returns ctx's error once ctx ends. Either way token is forgotten.
func (l *lowMarks) wait(ctx context.Context, token string, ch <-chan uint64) (uint64, error) {
	defer l.forget(token)
	select {
	case tx := <-ch:
		return tx, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// forget drops token (a waiter that will not wait: its row could not be written).
func (l *lowMarks) forget(token string) {
	l.mu.Lock()
	delete(l.waiting, token)
	l.mu.Unlock()
}

// len is the number of tokens waited for.
func (l *lowMarks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting)
}
