package mysql

import "testing"

// TestMeasure: lag counts the bytes after the read position; the purge distance the bytes
// and files before the committed position; a committed file older than the oldest binlog is
// purged.
func TestMeasure(t *testing.T) {
	names := []string{"b.000003", "b.000004", "b.000005"}
	sizes := []uint64{1000, 2000, 500}
	st := measure(names, sizes, txOf(4, 1500), txOf(4, 1200))
	if st.lagBytes != 500+500 || st.purgeBytes != 1000+1200 || st.purgeFiles != 1 || st.purged || st.retained != 3500 || st.files != 3 {
		t.Fatalf("got %+v", st)
	}
	if st := measure(names, sizes, txOf(5, 500), txOf(2, 10)); !st.purged || st.lagBytes != 0 {
		t.Fatalf("committed in a purged file: got %+v", st)
	}
	if st := measure(names, sizes, 0, 0); st.lagKnown || st.committedKnown {
		t.Fatalf("unknown positions: got %+v", st)
	}
}
