package window

import (
	"testing"
	"time"
)

// BenchmarkProcessorAdd: tumbling 1m count+sum over 1,000 groups, events from four input
// partitions in runs (as fetches deliver them), a second apart per partition.
func BenchmarkProcessorAdd(b *testing.B) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}, {Name: "sum", Fn: FnSum, Field: Path{"after", "v"}}}
	p := NewProcessor(s)
	groups := make([][]Value, 1000)
	for i := range groups {
		groups[i] = []Value{Long(int64(i))}
	}
	base := int64(1_700_000_000) * sec
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		part := int32(i/100) % 4
		r := Rec{Group: groups[i%1000], T: base + int64(i/4)*1000, Sign: 1, Vals: []Value{Null, Long(int64(i))},
			Origin: Origin{Topic: "in", Partition: part}}
		if err := p.Add(r); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 0 {
			p.TakeResults()
			p.TakeChanges()
		}
	}
}
