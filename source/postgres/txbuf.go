package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// streamBuffers hold the raw pgoutput messages of in-progress (streamed) transactions until
// their stream commit, when they are decoded and emitted in order, or their stream abort, when
// they are dropped. Raw messages are compact and decoding them at commit applies Relation
// messages in the order the transaction saw them.
//
// Memory is bounded: when the messages held in memory exceed limit, the largest buffer is
// written to a file in dir and its memory released. A buffer's file holds its oldest
// messages; its memory the newest.
type streamBuffers struct {
	limit int64
	dir   string
	inMem int64
	byXid map[uint32]*txBuffer
	// free holds emptied blocks (written to a spill file, or of a finished transaction) for
	// reuse, at most what the buffers may hold in memory: a transaction far larger than the limit then cycles
	// through the same blocks instead of leaving a limit's worth of garbage per spill, which
	// would let the heap (and RSS) grow to twice the limit between collections.
	free    [][]byte
	onSpill func()
	// create opens a new spill file (os.CreateTemp; tests inject failing disks).
	create func(dir, pattern string) (spillFile, error)
}

// spillFile is what a spill needs of an *os.File.
type spillFile interface {
	io.ReadWriteSeeker
	io.Closer
	Name() string
}

// blockSize is the unit of in-memory buffering: buffers grow block by block, never by
// doubling one slice, so memory in use stays close to what is buffered.
const blockSize = 1 << 20

type txBuffer struct {
	xid     uint32
	mem     [][]byte // blocks of [u32 length][message]...; a message larger than a block gets its own
	memLen  int
	file    spillFile
	w       *bufio.Writer
	spilled int64
	msgs    int
	aborted map[uint32]bool // aborted subtransactions
}

func newStreamBuffers(limit int64, dir string) *streamBuffers {
	return &streamBuffers{limit: limit, dir: dir, byXid: map[uint32]*txBuffer{},
		create: func(dir, pattern string) (spillFile, error) { return os.CreateTemp(dir, pattern) }}
}

func (s *streamBuffers) get(xid uint32) *txBuffer {
	b := s.byXid[xid]
	if b == nil {
		b = &txBuffer{xid: xid}
		s.byXid[xid] = b
	}
	return b
}

// add appends one message (copied) to the transaction's buffer, spilling if memory is over.
func (s *streamBuffers) add(xid uint32, msg []byte) error {
	b := s.get(xid)
	need := 4 + len(msg)
	if n := len(b.mem); n == 0 || cap(b.mem[n-1])-len(b.mem[n-1]) < need {
		b.mem = append(b.mem, s.block(need))
	}
	last := &b.mem[len(b.mem)-1]
	*last = binary.BigEndian.AppendUint32(*last, uint32(len(msg)))
	*last = append(*last, msg...)
	b.msgs++
	b.memLen += need
	s.inMem += int64(need)
	for s.inMem > s.limit {
		var big *txBuffer
		for _, x := range s.byXid {
			if big == nil || x.memLen > big.memLen {
				big = x
			}
		}
		if big == nil || big.memLen == 0 {
			break
		}
		if err := s.spill(big); err != nil {
			return err
		}
	}
	return nil
}

// block returns an empty block that holds need bytes, reusing a free one if it can.
func (s *streamBuffers) block(need int) []byte {
	if n := len(s.free); n > 0 && need <= blockSize {
		blk := s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		return blk
	}
	return make([]byte, 0, max(blockSize, need))
}

// recycle keeps emptied blocks of the standard size for reuse, as many as the buffers may
// hold in memory (the limit plus the block being filled).
func (s *streamBuffers) recycle(blks [][]byte) {
	for _, blk := range blks {
		if cap(blk) == blockSize && int64(len(s.free))*blockSize <= s.limit {
			s.free = append(s.free, blk[:0])
		}
	}
}

func (s *streamBuffers) spill(b *txBuffer) error {
	if b.file == nil {
		f, err := s.create(s.dir, fmt.Sprintf("cdcd-tx-%d-*.spill", b.xid))
		if err != nil {
			return spillError("creating", b.xid, s.dir, err)
		}
		// The file is only ever read through this handle: unlink it now so a crash leaves
		// nothing behind.
		_ = os.Remove(f.Name())
		b.file = f
		b.w = bufio.NewWriterSize(f, 1<<20)
		if s.onSpill != nil {
			s.onSpill()
		}
	}
	for _, blk := range b.mem {
		if _, err := b.w.Write(blk); err != nil {
			return spillError("writing", b.xid, s.dir, err)
		}
	}
	b.spilled += int64(b.memLen)
	s.inMem -= int64(b.memLen)
	s.recycle(b.mem)
	b.mem, b.memLen = nil, 0
	return nil
}

// spillError is a failure of the spill file of transaction xid, with the fix: every one of
// them (no space, no permission, an I/O error) is cured by a spill folder that works.
func spillError(doing string, xid uint32, dir string, err error) error {
	return fmt.Errorf("%s the spill file of in-progress transaction %d in %s: %w (fix: set source.postgres.spill_dir to a writable folder with space for the largest transaction, or raise source.postgres.tx_memory_limit)", doing, xid, dir, err)
}

// abortSub marks a subtransaction of xid aborted: its messages are skipped at commit.
func (s *streamBuffers) abortSub(xid, subxid uint32) {
	b := s.get(xid)
	if b.aborted == nil {
		b.aborted = map[uint32]bool{}
	}
	b.aborted[subxid] = true
}

// drop forgets a transaction (aborted, or emitted).
func (s *streamBuffers) drop(xid uint32) {
	b := s.byXid[xid]
	if b == nil {
		return
	}
	s.inMem -= int64(b.memLen)
	s.recycle(b.mem)
	if b.file != nil {
		_ = b.file.Close()
	}
	delete(s.byXid, xid)
}

// closeAll releases every buffer (the stream ended; unfinished transactions are re-sent by
// the server on restart).
func (s *streamBuffers) closeAll() {
	for xid := range s.byXid {
		s.drop(xid)
	}
}

// replay calls fn with each message of xid in order, skipping those of aborted
// subtransactions. msg is valid only during the call.
func (s *streamBuffers) replay(xid uint32, fn func(msg []byte) error) error {
	b := s.byXid[xid]
	if b == nil {
		return nil
	}
	skip := func(msg []byte) bool {
		// Every in-stream change message carries its (sub)transaction id after the type byte.
		return len(b.aborted) > 0 && len(msg) >= 5 && b.aborted[binary.BigEndian.Uint32(msg[1:5])]
	}
	if b.file != nil {
		if err := b.w.Flush(); err != nil {
			return spillError("writing", xid, s.dir, err)
		}
		if _, err := b.file.Seek(0, io.SeekStart); err != nil {
			return spillError("rewinding", xid, s.dir, err)
		}
		r := bufio.NewReaderSize(b.file, 1<<20)
		var hdr [4]byte
		var buf []byte
		for read := int64(0); read < b.spilled; {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return spillError("reading", xid, s.dir, err)
			}
			n := int(binary.BigEndian.Uint32(hdr[:]))
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(r, buf); err != nil {
				return spillError("reading", xid, s.dir, err)
			}
			read += int64(4 + n)
			if !skip(buf) {
				if err := fn(buf); err != nil {
					return err
				}
			}
		}
	}
	for _, blk := range b.mem {
		for m := blk; len(m) >= 4; {
			n := int(binary.BigEndian.Uint32(m))
			msg := m[4 : 4+n]
			m = m[4+n:]
			if !skip(msg) {
				if err := fn(msg); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
