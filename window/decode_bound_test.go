package window

import (
	"errors"
	"runtime"
	"testing"

	"github.com/hamba/avro/v2"
)

// A string or bytes value whose length runs past the record's end (a corrupt record, or one
// of another schema) ends the record early without allocating the length it claims.
func TestDecodeLengthBeyondTheRecord(t *testing.T) {
	for _, typ := range []string{`"string"`, `"bytes"`} {
		s := avro.MustParse(typ)
		// zig-zag varint of 1<<30: a gigabyte, in a 6-byte record.
		body := []byte{0x80, 0x80, 0x80, 0x80, 0x08, 'x'}
		d := newDecoder()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d.reset(body)
		value(d, s)
		runtime.ReadMemStats(&after)
		if err := d.done(); !errors.Is(err, errShort) {
			t.Errorf("%s: %v, want the record to end early", typ, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: decoding a 6-byte record allocated %d bytes", typ, grew)
		}
		// A good value still reads.
		good, _ := avro.Marshal(s, map[string]any{`"string"`: "héllo", `"bytes"`: []byte("héllo")}[typ])
		d.reset(good)
		v := value(d, s)
		if err := d.done(); err != nil || v.IsNull() || v.Text() == "" {
			t.Errorf("%s: good value %v, err %v", typ, v, err)
		}
	}
}
