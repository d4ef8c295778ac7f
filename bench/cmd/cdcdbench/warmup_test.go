package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The warm-up runs rounds until one leaves the broker's compiler under jitSettled seconds.
func TestWarmUntilSettledStopsWhenTheJITSettles(t *testing.T) {
	readings := []float64{40, 52, 55.5, 55.8, 70} // cumulative compiler seconds
	n := 0
	jit := func() (float64, bool) { v := readings[n]; n++; return v, true }
	rounds := 0
	w, err := warmUntilSettled(context.Background(), time.Hour, 1, jit, func(context.Context, int) error { rounds++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rounds != 3 || w.rounds != 3 || !w.settled || math.Abs(w.jitS-15.8) > 1e-9 || w.lastJIT > 0.31 || w.lastJIT < 0.29 {
		t.Fatalf("rounds %d, warm-up %+v; want 3 rounds, settled after 15.8 s of compilation", rounds, w)
	}
	if s := w.String(); !strings.Contains(s, "3 rounds") || !strings.Contains(s, "settled") || strings.Contains(s, "not settled") {
		t.Errorf("report: %s", s)
	}
}

// With a cycle of 3 phases, a quiet round followed by a busy one does not settle it: three
// quiet rounds in a row do.
func TestWarmUntilSettledWholeCycle(t *testing.T) {
	readings := []float64{0, 0.1, 3, 3.1, 3.2, 3.3, 9} // quiet, busy, quiet, quiet, quiet
	n := 0
	jit := func() (float64, bool) { v := readings[n]; n++; return v, true }
	w, err := warmUntilSettled(context.Background(), time.Hour, 3, jit, func(context.Context, int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if w.rounds != 5 || !w.settled {
		t.Fatalf("warm-up %+v: want settled after 5 rounds", w)
	}
}

// Without the compiler's counters, or while it keeps compiling, the warm-up runs until its
// limit and says so.
func TestWarmUntilSettledLimit(t *testing.T) {
	round := func(context.Context, int) error { time.Sleep(5 * time.Millisecond); return nil }
	w, err := warmUntilSettled(context.Background(), 20*time.Millisecond, 1, func() (float64, bool) { return 0, false }, round)
	if err != nil {
		t.Fatal(err)
	}
	if w.settled || w.jitKnown || w.rounds < 3 || !strings.Contains(w.String(), "could not be read") {
		t.Errorf("unknown compiler: %+v %s", w, w)
	}
	busy := 0.0
	w, err = warmUntilSettled(context.Background(), 20*time.Millisecond, 1, func() (float64, bool) { busy += 2; return busy, true }, round)
	if err != nil {
		t.Fatal(err)
	}
	if w.settled || !w.jitKnown || !strings.Contains(w.String(), "had not settled") {
		t.Errorf("busy compiler: %+v %s", w, w)
	}
}

// A round that fails ends the warm-up with its error.
func TestWarmUntilSettledRoundError(t *testing.T) {
	boom := errors.New("insert failed")
	_, err := warmUntilSettled(context.Background(), time.Hour, 1, func() (float64, bool) { return 0, true }, func(context.Context, int) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// The catch-up's warm-up says what it ran and that it came before the catch-up, not the
// steady phases.
func TestCatchupWarmupReport(t *testing.T) {
	readings := []float64{0, 9, 9.2, 9.3}
	n := 0
	jit := func() (float64, bool) { v := readings[n]; n++; return v, true }
	w, err := warmUntilSettled(context.Background(), time.Hour, 2, jit, func(context.Context, int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	w.catchup = true
	s := w.String()
	if w.rounds != 3 || !w.settled || !strings.Contains(s, "3 rounds of 200k rows") || !strings.Contains(s, "before its catch-up") || strings.Contains(s, "steady") {
		t.Errorf("warm-up %+v: %s", w, s)
	}
}
