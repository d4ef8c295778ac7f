package postgres

import (
	"strconv"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// benchSnapTable is the benchmark table of bench/: id bigint key, a int, b text, c timestamptz.
func benchSnapTable(tb testing.TB) *snapTable {
	return &snapTable{
		shape: &snapShape{
			msg:   relationMsg{namespace: "public", name: "bench_rows", cols: []relationCol{{key: true, name: "id"}, {name: "a"}, {name: "b"}, {name: "c"}}},
			types: []*typeInfo{mustBuiltin(tb, 20, -1), mustBuiltin(tb, 23, -1), mustBuiltin(tb, 25, -1), mustBuiltin(tb, 1184, -1)},
		},
		keyCols: []int{0},
	}
}

func benchSnapRowText(i int) [][]byte {
	return [][]byte{[]byte(strconv.Itoa(i)), []byte(strconv.Itoa(i % 1000)), []byte("payload-0123456789-0123456789-0123456789"),
		[]byte(time.Date(2026, 12, 7, 3, 0, 0, i*1000, time.UTC).Format("2006-01-02 15:04:05.999999-07"))}
}

// Rows decoded from one chunk's slab keep their own values: writing one row's values leaves
// every other row as it was decoded, and appending to a row never reaches its neighbour.
func TestSnapRowsFromASlabAreIndependent(t *testing.T) {
	d := benchSnapTable(t)
	var slab valueSlab
	var rows [][]change.Value
	for i := range 600 { // more than one slab
		row, _ := decodeSnapRow(d, "public.bench_rows", benchSnapRowText(i), &slab)
		if row.Err != nil {
			t.Fatal(row.Err)
		}
		rows = append(rows, row.Vals)
	}
	rows[10][1] = change.Value{Int: -1}
	rows[11] = append(rows[11], change.Value{Int: -2})
	for i, r := range rows {
		want := 4
		if i == 11 {
			want = 5
		}
		if len(r) != want || r[0].Int != int64(i) {
			t.Fatalf("row %d: %+v", i, r)
		}
		if i != 10 && r[1].Int != int64(i%1000) {
			t.Fatalf("row %d column a = %d, want %d", i, r[1].Int, i%1000)
		}
	}
	if rows[12][0].Int != 12 {
		t.Fatalf("an append to row 11 overwrote row 12: %+v", rows[12])
	}
}

func BenchmarkDecodeSnapRow(b *testing.B) {
	d := benchSnapTable(b)
	const chunk = 8192
	texts := make([][][]byte, chunk)
	for i := range texts {
		texts[i] = benchSnapRowText(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		var slab valueSlab
		for i := range texts {
			row, _ := decodeSnapRow(d, "public.bench_rows", texts[i], &slab)
			if row.Err != nil {
				b.Fatal(row.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunk), "ns/row")
}
