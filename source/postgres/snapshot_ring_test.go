package postgres

import "testing"

// The ring remembers the last 65,536 xids and forgets older ones.
func TestXidRingRemembersTheLatest(t *testing.T) {
	var r xidRing
	if r.has(0) {
		t.Fatal("an empty ring has xid 0")
	}
	for x := uint32(1); x <= 1<<16+10; x++ {
		r.add(x)
	}
	if r.has(5) || !r.has(11) || !r.has(1<<16+10) {
		t.Fatalf("after wrapping: has(5)=%v has(11)=%v has(last)=%v", r.has(5), r.has(11), r.has(1<<16+10))
	}
}
