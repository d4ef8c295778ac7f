package verify

import (
	"encoding/binary"
	"testing"
)

// BenchmarkCompare: 200,000 keys, each with a row and two records, in 20 buckets.
func BenchmarkCompare(b *testing.B) {
	dir := b.TempDir()
	r := &run{cfg: &Config{Recheck: 100}, tr: &TableReport{}, h: newHasher(), names: map[string]uint16{}, n: 20}
	rows, _ := newBuckets(dir, "table", r.n)
	defer rows.close()
	recs, _ := newBuckets(dir, "topic", r.n)
	defer recs.close()
	cols := make([]col, 6)
	for i := range cols {
		cols[i].idx = uint16(i)
	}
	const keys = 200000
	for k := 0; k < keys; k++ {
		key := binary.AppendVarint(nil, int64(k))
		for i := range cols {
			cols[i].hash = uint64(k*7 + i)
		}
		e := entry{key: key, partition: 0, offset: int64(k), pos: 10, cols: cols}
		_ = recs.add(r.bucket(key), &e)
		_ = recs.add(r.bucket(key), &e)
		e.partition, e.pos = -1, 100
		_ = rows.add(r.bucket(key), &e)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.tr = &TableReport{}
		diffs, err := r.compare(rows, recs)
		if err != nil || len(diffs) != 0 {
			b.Fatal(err, len(diffs))
		}
	}
	b.ReportMetric(float64(keys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
