package integration

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// loggedSeed returns the seed of a randomized test and logs it, so a failure can be replayed:
// set CDCD_TEST_SEED to the logged value to run the same schedule again.
func loggedSeed(t *testing.T, what string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CDCD_TEST_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CDCD_TEST_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("%s seed %d (replay with CDCD_TEST_SEED=%d)", what, seed, seed)
	return seed
}
