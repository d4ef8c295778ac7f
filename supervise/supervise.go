// Package supervise restarts a failed attempt after a capped exponential backoff with jitter:
// the one restart loop of cdcd's pipelines and window jobs.
//
// The n-th wait of a streak of failures is drawn uniformly from [d/2, d], d = min(Initial·2ⁿ⁻¹,
// Max): doubling spreads the load a failing dependency sees, the cap bounds the time to
// recover, and the jitter keeps the instances of a fleet that failed together (a broker
// restart) from retrying together. An attempt that ran for ResetAfter or longer ends the
// streak: the next failure waits Initial again.
package supervise

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is a supervisor's backoff.
type Policy struct {
	Initial time.Duration // first wait of a streak (its upper bound); 0: 500ms
	Max     time.Duration // cap of the waits; below Initial: 30s
	// ResetAfter: an attempt that ran this long ends a streak of failures; 0: 2·Max.
	ResetAfter time.Duration
	// Rand returns a number in [0, n] (tests); nil: uniform.
	Rand func(n int64) int64
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max < p.Initial {
		p.Max = max(30*time.Second, p.Initial)
	}
	if p.ResetAfter <= 0 {
		p.ResetAfter = 2 * p.Max
	}
	if p.Rand == nil {
		p.Rand = func(n int64) int64 { return rand.Int64N(n + 1) }
	}
	return p
}

// Backoff is the state of a streak of failures.
type Backoff struct {
	p        Policy
	next     time.Duration // upper bound of the next wait
	attempts int           // failures in this streak that took a wait (Next)
}

// NewBackoff returns the backoff of p at the start of a streak.
func NewBackoff(p Policy) *Backoff {
	p = p.withDefaults()
	return &Backoff{p: p, next: p.Initial}
}

// Next counts a failure and returns the wait before the next attempt: uniform in [d/2, d],
// d doubling from Initial up to Max.
func (b *Backoff) Next() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.p.Max)
	b.attempts++
	return d/2 + time.Duration(b.p.Rand(int64(d-d/2)))
}

// Attempts is the failures counted by Next in this streak.
func (b *Backoff) Attempts() int { return b.attempts }

// Reset starts a new streak.
func (b *Backoff) Reset() { b.next, b.attempts = b.p.Initial, 0 }

// ErrEnded is the error of an attempt that returned nil while ctx had not ended.
var ErrEnded = errors.New("the session ended without an error before shutdown (its connection closed or a task returned early); it is started again")

// Run runs attempt until ctx ends (then nil) or failed stops it. After each failure (an
// attempt's error, ErrEnded for nil) it calls failed with the error and the streak's backoff:
// failed returns the wait before the next attempt (usually b.Next(); a fixed wait that does
// not count as a failure, say), or a non-nil error to stop with.
func Run(ctx context.Context, p Policy, attempt func(context.Context) error, failed func(err error, b *Backoff) (time.Duration, error)) error {
	b := NewBackoff(p)
	for {
		started := time.Now()
		err := attempt(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = ErrEnded
		}
		if time.Since(started) >= b.p.ResetAfter {
			b.Reset() // it ran well for a while
		}
		wait, stop := failed(err, b)
		if stop != nil {
			return stop
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
