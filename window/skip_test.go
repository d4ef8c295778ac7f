package window

import (
	"encoding/binary"
	"testing"

	"github.com/hamba/avro/v2"
)

// A value of a recursive named type nested deeper than the compiled skip plan is skipped
// whole, by plans compiled as its levels are reached.
func TestSkipRecursiveValue(t *testing.T) {
	s := avro.MustParse(`{"type":"record","name":"Node","fields":[{"name":"v","type":"string"},{"name":"next","type":["null","Node"]}]}`)
	var v any
	for i := range 60 {
		n := map[string]any{"v": string(rune('a' + i%26))}
		if v != nil {
			n["next"] = map[string]any{"Node": v}
		} else {
			n["next"] = nil
		}
		v = n
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	b = binary.AppendVarint(b, 12345) // what follows the value
	d := newDecoder()
	d.reset(b)
	compileSkip(s, 0).skip(d)
	if got := d.r.ReadLong(); d.done() != nil || got != 12345 {
		t.Fatalf("after the value: %d (%v), want 12345", got, d.done())
	}
}
