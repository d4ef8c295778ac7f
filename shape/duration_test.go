package shape

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// A MySQL TIME column (change.KindDuration) carries its value in Int. Its hash mask hashed the
// empty text, giving every row the same hash, and an outbox header from it was empty.
func TestDurationHashAndHeader(t *testing.T) {
	col := change.Column{Name: "d", Kind: change.KindDuration}
	m, _, err := planMask(col, "hash", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := change.Value{Int: 3600_000_000}, change.Value{Int: -90_061_000_001}
	m.apply(&a)
	m.apply(&b)
	if a.Str == "" || a.Str == b.Str {
		t.Fatalf("two durations hash to %q and %q", a.Str, b.Str)
	}
	h, ok := headerText(col, change.Value{Int: -90_061_000_001})
	if !ok || string(h) != "-25:01:01.000001" {
		t.Fatalf("header %q, want -25:01:01.000001", h)
	}
}
