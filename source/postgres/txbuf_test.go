package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func inStreamMsg(typ byte, xid uint32, body string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, xid)
	return append(b, body...)
}

// Messages come back in order whether they were spilled or not, aborted subtransactions are
// skipped, and memory stays under the limit.
func TestStreamBuffersSpillOrderAndSubAbort(t *testing.T) {
	bufs := newStreamBuffers(10_000, t.TempDir())
	spills := 0
	bufs.onSpill = func() { spills++ }
	const top, sub = 100, 101
	var want []string
	for i := 0; i < 2000; i++ {
		xid := uint32(top)
		if i%10 == 3 {
			xid = sub
		}
		body := fmt.Sprintf("row-%04d", i)
		if err := bufs.add(top, inStreamMsg('I', xid, body)); err != nil {
			t.Fatal(err)
		}
		if xid == top {
			want = append(want, body)
		}
		// an interleaved transaction that aborts entirely
		if err := bufs.add(200, inStreamMsg('I', 200, "other")); err != nil {
			t.Fatal(err)
		}
		if bufs.inMem > bufs.limit+int64(blockSize) {
			t.Fatalf("in-memory %d exceeds the limit", bufs.inMem)
		}
	}
	bufs.abortSub(top, sub)
	bufs.drop(200)
	if spills == 0 {
		t.Fatal("expected a spill to disk")
	}
	var got []string
	err := bufs.replay(top, func(msg []byte) error {
		got = append(got, string(msg[5:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
	bufs.drop(top)
	if bufs.inMem != 0 || len(bufs.byXid) != 0 {
		t.Fatalf("leftover: inMem %d, buffers %d", bufs.inMem, len(bufs.byXid))
	}
}

func TestStreamBuffersUnwritableSpillDir(t *testing.T) {
	bufs := newStreamBuffers(100, "/nonexistent/cdcd-spill")
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = bufs.add(1, inStreamMsg('I', 1, "0123456789"))
	}
	if err == nil {
		t.Fatal("expected an error naming the spill folder")
	}
	if want := "spill_dir"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say how to fix it (%s)", err, want)
	}
}

// fullDisk is a spill file on a disk that is full.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error)      { return 0, syscall.ENOSPC }
func (fullDisk) Read([]byte) (int, error)       { return 0, io.EOF }
func (fullDisk) Seek(int64, int) (int64, error) { return 0, nil }
func (fullDisk) Close() error                   { return nil }
func (fullDisk) Name() string                   { return "/full/cdcd-tx-1.spill" }

// A spill file that cannot be written (disk full) fails with the same fix as one that cannot
// be created: set spill_dir to a folder with space.
func TestStreamBuffersSpillWriteFailure(t *testing.T) {
	bufs := newStreamBuffers(100, t.TempDir())
	bufs.create = func(string, string) (spillFile, error) { return fullDisk{}, nil }
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = bufs.add(1, inStreamMsg('I', 1, "0123456789"))
	}
	if err == nil {
		// Small spills stay in the file's write buffer: the failure shows at the latest when
		// the transaction is read back at its commit.
		err = bufs.replay(1, func([]byte) error { return nil })
	}
	if err == nil {
		t.Fatal("a full disk went unnoticed")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "spill_dir") {
		t.Fatalf("error %q does not keep the cause and say how to fix it (spill_dir)", err)
	}
}

// A transaction many times larger than the memory limit spills block after block without
// allocating a new block each time: the blocks written to disk are reused, so the Go heap
// does not churn (and the process's RSS does not double) while a huge transaction streams.
func TestStreamBuffersReuseSpilledBlocks(t *testing.T) {
	const limit = 4 * blockSize
	bufs := newStreamBuffers(limit, t.TempDir())
	t.Cleanup(bufs.closeAll)
	msg := inStreamMsg('I', 7, strings.Repeat("x", 1000))
	added := 0
	add := func(bytes int) {
		for n := 0; n < bytes; n += len(msg) + 4 {
			if err := bufs.add(7, msg); err != nil {
				t.Fatal(err)
			}
			added++
		}
	}
	add(2 * limit) // warm up: the first blocks and the spill file exist
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	add(10 * limit)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > limit/2 {
		t.Fatalf("adding %d MiB through a %d MiB buffer allocated %d MiB: spilled blocks are not reused", 10*limit>>20, limit>>20, grew>>20)
	}
	n := 0
	if err := bufs.replay(7, func(m []byte) error {
		if string(m) != string(msg) {
			return fmt.Errorf("message %d differs", n)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != added {
		t.Fatalf("replayed %d messages, added %d", n, added)
	}
}
