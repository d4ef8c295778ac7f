package change

import (
	"testing"
	"time"
)

// TestDaysFromCivil checks the day number against Go's calendar (proleptic Gregorian, with a
// year 0) for every first, leap and last day of the month over years -4800..10000.
func TestDaysFromCivil(t *testing.T) {
	for y := int64(-4800); y <= 10000; y += 7 {
		for m := 1; m <= 12; m++ {
			last := time.Date(int(y), time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
			for _, d := range []int{1, 28, last} {
				want := time.Date(int(y), time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix()
				// floor division: days before 1970 end on a day boundary too
				if got := DaysFromCivil(y, m, d); got*86400 != want {
					t.Fatalf("DaysFromCivil(%d, %d, %d) = %d, want %d", y, m, d, got, want/86400)
				}
			}
		}
	}
	if got := DaysFromCivil(1970, 1, 1); got != 0 {
		t.Fatalf("the epoch is day %d", got)
	}
	if got := DaysFromCivil(2000, 2, 29); got != 11016 {
		t.Fatalf("2000-02-29 is day %d, want 11016", got)
	}
}
