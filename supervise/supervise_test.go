package supervise

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The waits of a streak: each within [d/2, d], d doubling from Initial to Max; the jitter
// spans that range; Reset starts over.
func TestBackoffBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		rnd  func(int64) int64
	}{
		{"lowest", func(int64) int64 { return 0 }},
		{"highest", func(n int64) int64 { return n }},
		{"uniform", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBackoff(Policy{Initial: 100 * time.Millisecond, Max: time.Second, Rand: tc.rnd})
			d := 100 * time.Millisecond
			for i := 0; i < 10; i++ {
				w := b.Next()
				if w < d/2 || w > d {
					t.Fatalf("wait %d: %v, want within [%v, %v]", i+1, w, d/2, d)
				}
				if tc.name == "lowest" && w != d/2 || tc.name == "highest" && w != d {
					t.Fatalf("wait %d: %v, want %v at the bound", i+1, w, d)
				}
				d = min(2*d, time.Second)
			}
			if b.Attempts() != 10 {
				t.Fatalf("attempts %d, want 10", b.Attempts())
			}
			b.Reset()
			if w := b.Next(); w > 100*time.Millisecond || b.Attempts() != 1 {
				t.Fatalf("after Reset: wait %v, attempts %d", w, b.Attempts())
			}
		})
	}
	// Jitter: many waits at the cap spread over [Max/2, Max], not one value.
	b := NewBackoff(Policy{Initial: time.Second, Max: time.Second})
	lo, hi := time.Hour, time.Duration(0)
	for i := 0; i < 1000; i++ {
		w := b.Next()
		lo, hi = min(lo, w), max(hi, w)
	}
	if lo < 500*time.Millisecond || hi > time.Second || hi-lo < 400*time.Millisecond {
		t.Fatalf("1000 waits at the cap span [%v, %v], want most of [500ms, 1s]", lo, hi)
	}
}

func TestPolicyDefaults(t *testing.T) {
	b := NewBackoff(Policy{})
	if b.p.Initial != 500*time.Millisecond || b.p.Max != 30*time.Second || b.p.ResetAfter != time.Minute {
		t.Fatalf("defaults %+v", b.p)
	}
	if b := NewBackoff(Policy{Initial: time.Minute}); b.p.Max != time.Minute {
		t.Fatalf("Max below Initial: %v", b.p.Max)
	}
}

// Run restarts a failed attempt after the wait failed returns, stops with the error failed
// returns, and returns nil when ctx ends (also while it waits).
func TestRunRestartsOnError(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	var calls int
	var waits []time.Duration
	err := Run(ctx, Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		func(context.Context) error {
			calls++
			if calls == 3 {
				return nil // an attempt that ends without an error is a failure too
			}
			return boom
		},
		func(err error, b *Backoff) (time.Duration, error) {
			if calls == 3 && !errors.Is(err, ErrEnded) || calls != 3 && !errors.Is(err, boom) {
				t.Errorf("attempt %d: failed with %v", calls, err)
			}
			if calls == 5 {
				return 0, err
			}
			w := b.Next()
			waits = append(waits, w)
			if b.Attempts() != calls {
				t.Errorf("attempt %d: backoff counts %d", calls, b.Attempts())
			}
			return w, nil
		})
	if !errors.Is(err, boom) || calls != 5 || len(waits) != 4 {
		t.Fatalf("Run: %v after %d attempts, waits %v", err, calls, waits)
	}

	// A long attempt resets the streak.
	calls = 0
	err = Run(ctx, Policy{Initial: time.Millisecond, Max: 8 * time.Millisecond, ResetAfter: 20 * time.Millisecond},
		func(context.Context) error {
			calls++
			if calls == 3 {
				time.Sleep(25 * time.Millisecond)
			}
			return boom
		},
		func(_ error, b *Backoff) (time.Duration, error) {
			if calls == 3 && b.Attempts() != 0 {
				t.Errorf("after a long attempt the streak holds %d failures, want 0", b.Attempts())
			}
			if calls == 4 {
				return 0, boom
			}
			return b.Next(), nil
		})
	if calls != 4 {
		t.Fatalf("%d attempts", calls)
	}

	// ctx ends during the wait: nil, no further attempt.
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	done := make(chan error, 1)
	go func() {
		done <- Run(cctx, Policy{}, func(context.Context) error { calls++; return boom },
			func(error, *Backoff) (time.Duration, error) { return time.Hour, nil })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil || calls != 1 {
			t.Fatalf("Run after cancel: %v, %d attempts", err, calls)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when ctx ended during a wait")
	}
}
