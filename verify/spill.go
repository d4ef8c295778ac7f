package verify

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// The comparison is an external hash join: every table row and every topic record is written,
// as its key and one hash per column, to one of n bucket files chosen by the key's hash; then
// each bucket's topic entries are folded into the latest state per key and compared with the
// bucket's table entries. Memory holds one bucket at a time, so it is bounded by the bucket
// size (about one chunk of keys), not by the topic or the table.

// col is one column of an entry: its index in the run's column names, and its value's hash.
type col struct {
	idx       uint16
	hash      uint64
	unchanged bool // the record does not carry the value (unchanged TOAST): keep the previous
}

// entry is one table row or topic record.
type entry struct {
	key       []byte
	partition int32 // -1 for a table row
	offset    int64
	deleted   bool // a delete or tombstone
	// pos is a table row's read position, or a topic record's source position (the commit
	// LSN): a record is part of the state a row was read at when its pos is before it.
	pos  uint64
	cols []col
}

func appendEntry(b []byte, e *entry) []byte {
	b = binary.AppendUvarint(b, uint64(len(e.key)))
	b = append(b, e.key...)
	b = binary.AppendVarint(b, int64(e.partition))
	b = binary.AppendVarint(b, e.offset)
	b = binary.AppendUvarint(b, e.pos)
	var flags byte
	if e.deleted {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.cols)))
	for _, c := range e.cols {
		b = binary.AppendUvarint(b, uint64(c.idx))
		b = binary.LittleEndian.AppendUint64(b, c.hash)
		u := byte(0)
		if c.unchanged {
			u = 1
		}
		b = append(b, u)
	}
	return b
}

func readEntry(r *bufio.Reader, e *entry) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err // io.EOF at an entry's start: the file ended
	}
	e.key = grow(e.key, int(n))
	if _, err := io.ReadFull(r, e.key); err != nil {
		return unexpected(err)
	}
	p, err := binary.ReadVarint(r)
	if err != nil {
		return unexpected(err)
	}
	e.partition = int32(p)
	if e.offset, err = binary.ReadVarint(r); err != nil {
		return unexpected(err)
	}
	if e.pos, err = binary.ReadUvarint(r); err != nil {
		return unexpected(err)
	}
	flags, err := r.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	e.deleted = flags&1 != 0
	nc, err := binary.ReadUvarint(r)
	if err != nil {
		return unexpected(err)
	}
	e.cols = grow(e.cols, int(nc))
	var h [9]byte
	for i := range e.cols {
		idx, err := binary.ReadUvarint(r)
		if err != nil {
			return unexpected(err)
		}
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return unexpected(err)
		}
		e.cols[i] = col{idx: uint16(idx), hash: binary.LittleEndian.Uint64(h[:8]), unchanged: h[8] == 1}
	}
	return nil
}

// grow returns b with length n, reusing its array when it is large enough: readEntry reuses
// the entry's buffers, so a caller that keeps an entry passes a fresh one.
func grow[T any](b []T, n int) []T {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]T, n)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// buckets are n spill files of one side of the join.
type buckets struct {
	files []*os.File
	w     []*bufio.Writer
	buf   []byte
	n     int64 // entries written
}

func newBuckets(dir, side string, n int) (*buckets, error) {
	b := &buckets{}
	for i := 0; i < n; i++ {
		f, err := os.CreateTemp(dir, fmt.Sprintf("cdcd-verify-%s-%03d-*", side, i))
		if err != nil {
			b.close()
			return nil, fmt.Errorf("creating a spill file in %s: %w (fix: point --spill-dir at a writable directory with room for the table's keys)", dir, err)
		}
		b.files = append(b.files, f)
		b.w = append(b.w, bufio.NewWriterSize(f, 16<<10))
	}
	return b, nil
}

func (b *buckets) add(bucket int, e *entry) error {
	b.buf = appendEntry(b.buf[:0], e)
	b.n++
	_, err := b.w[bucket].Write(b.buf)
	return err
}

func (b *buckets) close() {
	for _, f := range b.files {
		name := f.Name()
		f.Close()
		os.Remove(name)
	}
	b.files = nil
}

// state is a key's latest state in the topic: its columns after folding every record in
// offset order (an unchanged column keeps the previous value's hash).
type state struct {
	cols      []col // sorted by idx
	seen      bool  // a record was applied
	deleted   bool
	partition int32
	offset    int64
}

func (s *state) clone() *state {
	c := *s
	c.cols = slices.Clone(s.cols)
	return &c
}

func (s *state) apply(e *entry) {
	wasPresent := s.present()
	s.seen, s.partition, s.offset, s.deleted = true, e.partition, e.offset, e.deleted
	if e.deleted {
		s.cols = nil
		return
	}
	if wasPresent && sameColumns(s.cols, e.cols) {
		// The usual case: the same columns as the previous record; update in place.
		for i, c := range e.cols {
			if !c.unchanged {
				s.cols[i].hash = c.hash
			}
		}
		return
	}
	next := make([]col, 0, len(e.cols))
	for _, c := range e.cols {
		if c.unchanged {
			if i, ok := slices.BinarySearchFunc(s.cols, c.idx, func(a col, idx uint16) int { return int(a.idx) - int(idx) }); ok {
				c.hash = s.cols[i].hash
			}
			// No earlier value known (the key's older records were compacted away): the
			// placeholder's hash stays, and the column compares as different.
		}
		c.unchanged = false
		next = append(next, c)
	}
	slices.SortFunc(next, func(a, b col) int { return int(a.idx) - int(b.idx) })
	s.cols = next
}

func sameColumns(a, b []col) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].idx != b[i].idx {
			return false
		}
	}
	return true
}

// differing returns the column indexes whose hashes differ between two sorted column lists
// (a column on one side only differs).
func differing(a, b []col) []uint16 {
	var out []uint16
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || i < len(a) && a[i].idx < b[j].idx:
			out = append(out, a[i].idx)
			i++
		case i >= len(a) || b[j].idx < a[i].idx:
			out = append(out, b[j].idx)
			j++
		default:
			if a[i].hash != b[j].hash {
				out = append(out, a[i].idx)
			}
			i++
			j++
		}
	}
	return out
}

func spillDir(dir string) string {
	if dir == "" {
		return os.TempDir()
	}
	return filepath.Clean(dir)
}
