package main

import (
	"strings"
	"testing"
	"time"
)

// The output of `go test -run '^$' -bench BenchmarkRestore -benchtime 1x -benchmem ./window/`
// against the stack's broker.
const restoreBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/cdcd-dev/cdcd/window
cpu: AMD EPYC
BenchmarkRestore-2   	       1	2109706908 ns/op	    481953 keys/s	         2.075 s/restore	1031644576 B/op	 8015951 allocs/op
--- BENCH: BenchmarkRestore-2
    restore_bench_test.go:112: 127.0.0.1:19092: wrote 1000000 keys (66 MB) to cdcd-window.restore_bench_1796122792471057924.changelog in 5.652s
    restore_bench_test.go:140: 127.0.0.1:19092: restored 1000006 keys (66 MB of state) in 2.075s
PASS
`

func TestParseRestoreBench(t *testing.T) {
	r, err := parseRestoreBench(restoreBenchOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := restoreResult{Keys: 1_000_000, Restored: 1_000_006, Took: 2075 * time.Millisecond, KeysPerSec: 481953,
		StateMiB: 66, WroteMiB: 66, WroteIn: 5652 * time.Millisecond, AllocBytes: 1031644576}
	if r != want {
		t.Errorf("parsed %+v, want %+v", r, want)
	}
	n := r.note()
	if n != "restore of 1,000,000 keys of window state: 2.08 s (481953 keys/s), 66 MiB of state, 69–70 bytes per key (window.BenchmarkRestore on the stack's broker: one count window per key over 6 partitions, 66 MiB written transactionally in 5.7 s, then restored read_committed by a new job; state in changelog form, in whole MiB as the benchmark logs it); the restore allocated 983.9 MiB on the heap (-benchmem)" {
		t.Errorf("note: %s", n)
	}
	for _, bad := range []string{"", "PASS\n", strings.Replace(restoreBenchOutput, "restored", "read", 1)} {
		if _, err := parseRestoreBench(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestWindowStateNotes(t *testing.T) {
	if got, want := (windowStatePeak{Bytes: 640_000, Open: 3200, MaxOpen: 4000, Samples: 50}).note(),
		"state at its peak (cdcd_window_state_bytes, its changelog form, sampled every 200 ms): 625.0 KiB in 3,200 open windows = 200 bytes per open window (most open windows in a sample: 4,000)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (windowStatePeak{}).note(); !strings.Contains(got, "no scrape") {
		t.Errorf("no samples: %s", got)
	}
	c := changelogStats{Records: 110_000, Tombstones: 10_000, Keys: 10_003, Bytes: 5_000_000, StateBytes: 4_900_000}
	if got, want := c.summary(), "110,000 records (10,000 tombstones) over 10,003 keys, 4.8 MiB: 49 bytes per record with a value, 500 bytes written per key"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %s, want %s", n, got, want)
		}
	}
	if m := restoreTopicRe.FindStringSubmatch("cdcd-window.restore_bench_1796122792471057924.changelog"); m == nil || m[1] != "1796122792471057924" {
		t.Errorf("restore topic not matched: %v", m)
	}
	if restoreTopicRe.MatchString("cdcd-window.restore_bench_x.changelog") || restoreTopicRe.MatchString("cdcd-window.orders.changelog") {
		t.Error("matched a topic that is not the benchmark's")
	}
}
