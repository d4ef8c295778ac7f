package verify

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	in := []entry{
		{key: []byte("k1"), partition: -1, offset: 0, pos: 77, cols: []col{{idx: 0, hash: 1}, {idx: 3, hash: 1 << 63}}},
		{key: nil, partition: 2, offset: 1 << 40, deleted: true, pos: 0, cols: nil},
		{key: []byte("k3"), partition: 0, offset: 5, pos: 1 << 62, cols: []col{{idx: 1, unchanged: true}}},
	}
	var b []byte
	for i := range in {
		b = appendEntry(b, &in[i])
	}
	r := bufio.NewReader(bytes.NewReader(b))
	for i := range in {
		var e entry
		if err := readEntry(r, &e); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !reflect.DeepEqual(e, in[i]) {
			t.Errorf("entry %d: got %+v, want %+v", i, e, in[i])
		}
	}
	var e entry
	if err := readEntry(r, &e); err != io.EOF {
		t.Errorf("after the last entry: %v, want EOF", err)
	}
	if err := readEntry(bufio.NewReader(bytes.NewReader(b[:len(b)-3])), &e); err != nil {
		t.Fatalf("first entry of a cut file: %v", err)
	}
}

// An unchanged-TOAST column keeps the key's previous value; a delete clears the key.
func TestStateFoldsUnchangedColumnsAndDeletes(t *testing.T) {
	var s state
	s.apply(&entry{cols: []col{{idx: 1, hash: 20}, {idx: 0, hash: 10}}})
	s.apply(&entry{cols: []col{{idx: 0, hash: 11}, {idx: 1, unchanged: true}}})
	if want := []col{{idx: 0, hash: 11}, {idx: 1, hash: 20}}; !slices.Equal(s.cols, want) {
		t.Fatalf("after an update with an unchanged column: %+v, want %+v", s.cols, want)
	}
	s.apply(&entry{deleted: true})
	if s.present() {
		t.Fatal("a deleted key is present")
	}
	s.apply(&entry{cols: []col{{idx: 0, hash: 12}, {idx: 1, unchanged: true}}})
	if want := []col{{idx: 0, hash: 12}, {idx: 1, hash: 0}}; !slices.Equal(s.cols, want) || !s.present() {
		t.Fatalf("an unchanged column with no earlier value must not take a deleted row's: %+v", s.cols)
	}
}

func TestDiffering(t *testing.T) {
	a := []col{{idx: 0, hash: 1}, {idx: 1, hash: 2}, {idx: 3, hash: 4}}
	b := []col{{idx: 0, hash: 1}, {idx: 1, hash: 9}, {idx: 2, hash: 4}}
	if got := differing(a, b); !slices.Equal(got, []uint16{1, 2, 3}) {
		t.Fatalf("differing: %v", got)
	}
	if got := differing(a, a); got != nil {
		t.Fatalf("equal lists differ in %v", got)
	}
}

// compare matches rows with the topic as of each row's read: a record after the read does not
// count against the row, and each kind of difference is found and counted.
func TestCompareAsOfTheRead(t *testing.T) {
	dir := t.TempDir()
	r := &run{cfg: &Config{Recheck: 100}, tr: &TableReport{}, h: newHasher(), names: map[string]uint16{}, n: 3}
	rows, err := newBuckets(dir, "table", r.n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.close()
	recs, err := newBuckets(dir, "topic", r.n)
	if err != nil {
		t.Fatal(err)
	}
	defer recs.close()
	row := func(k string, pos uint64, h uint64) {
		e := entry{key: []byte(k), partition: -1, pos: pos, cols: []col{{idx: 0, hash: h}}}
		if err := rows.add(r.bucket(e.key), &e); err != nil {
			t.Fatal(err)
		}
	}
	off := int64(0)
	rec := func(k string, pos uint64, h uint64, deleted bool) {
		off++
		e := entry{key: []byte(k), partition: 0, offset: off, pos: pos, deleted: deleted}
		if !deleted {
			e.cols = []col{{idx: 0, hash: h}}
		}
		if err := recs.add(r.bucket(e.key), &e); err != nil {
			t.Fatal(err)
		}
	}
	row("same", 100, 1)
	rec("same", 50, 1, false)
	rec("same", 150, 2, false) // after the read: the row was read before this change
	row("changed", 100, 1)
	rec("changed", 60, 9, false)
	row("missing", 100, 1)
	rec("extra", 70, 1, false)
	rec("gone", 70, 1, false)
	rec("gone", 80, 0, true)
	row("deleted-after-read", 100, 1)
	rec("deleted-after-read", 50, 1, false)
	rec("deleted-after-read", 120, 0, true)
	row("inserted-after-read", 100, 1)
	rec("inserted-after-read", 130, 1, false) // the row was read before its record: missing as of the read
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("many%d", i)
		row(k, 100, uint64(i))
		rec(k, 10, uint64(i), false)
	}
	diffs, err := r.compare(rows, recs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diffs {
		got = append(got, d.kind+" "+string(d.key))
	}
	slices.Sort(got)
	want := []string{"different changed", "extra extra", "missing inserted-after-read", "missing missing"}
	if !slices.Equal(got, want) {
		t.Fatalf("differences: %q, want %q", got, want)
	}
	for _, d := range diffs {
		if d.kind == Different && !slices.Equal(d.columns, []uint16{0}) {
			t.Errorf("different columns: %v", d.columns)
		}
	}
	// Beyond Recheck, differences are counted at once.
	r2 := &run{cfg: &Config{Recheck: 1}, tr: &TableReport{}, h: r.h, names: r.names, n: r.n}
	diffs, err = r2.compare(rows, recs)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(diffs)) + r2.tr.Missing + r2.tr.Extra + r2.tr.Different; len(diffs) != 1 || n != 4 {
		t.Fatalf("with Recheck 1: %d kept, %d in all, want 1 and 4", len(diffs), n)
	}
}
