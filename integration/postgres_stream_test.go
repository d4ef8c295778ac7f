package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rssPeak samples a process's resident memory until stop is closed and returns the peak.
func rssPeak(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb := vmRSSKB(pid); kb > peak {
				peak = kb
			}
			select {
			case <-stop:
				out <- peak * 1024
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

func vmRSSKB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestPostgresHugeTransaction: a 2-million-row transaction is streamed by the server while in
// progress, buffered by cdcd with bounded memory (spilling to disk), and published whole after
// its commit, with the daemon's RSS under 300 MB. A big transaction that rolls back emits
// nothing.
func TestPostgresHugeTransaction(t *testing.T) {
	s, ctx, dsn, db := setup(t, 10*time.Minute, "cdcd_huge", `CREATE TABLE big (id bigint PRIMARY KEY, note text); CREATE TABLE marker (id int PRIMARY KEY)`)
	name := uniqueName("huge")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.big", "public.marker"},
		"    batch:\n      max_events: 50000\n")+"")
	d.waitReady(90 * time.Second)
	stop := make(chan struct{})
	peak := rssPeak(d.cmd.Process.Pid, stop)

	// Rolled back: must never appear.
	if _, err := db.Exec(ctx, `BEGIN; INSERT INTO big SELECT -g, 'aborted' FROM generate_series(1, 300000) g; ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	const rows = 2_000_000
	if _, err := db.Exec(ctx, fmt.Sprintf(`INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, %d) g`, rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO marker VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	// Wait for the marker (committed after the big transaction), then count the big topic.
	mc := newConsumer(t, s, name+".public.marker")
	if got := mc.read(t, 1, 8*time.Minute, 0); len(got) != 1 {
		t.Fatalf("marker not published; logs:\n%s", d.Logs())
	}
	close(stop)
	rss := <-peak
	if n := d.metric("cdcd_source_transactions_spilled_total"); n < 1 {
		t.Errorf("the big transaction was not streamed in progress and spilled (spilled_total = %v)", n)
	}
	c := newConsumer(t, s, name+".public.big")
	var n, aborted int64
	seen := make(map[int64]bool, rows)
	deadline := time.Now().Add(3 * time.Minute)
	for n < rows && time.Now().Before(deadline) {
		for _, r := range c.read(t, 1, 10*time.Second, 0) {
			id := avroLong(r.Key, 5)
			if id < 0 {
				aborted++
			}
			if seen[id] {
				t.Fatalf("row %d published twice", id)
			}
			seen[id] = true
			n++
		}
	}
	if aborted > 0 {
		t.Errorf("%d rows of a rolled-back transaction were published", aborted)
	}
	if n != rows {
		t.Fatalf("published %d of %d rows", n, rows)
	}
	t.Logf("2M-row transaction published; peak RSS %.0f MB", float64(rss)/(1<<20))
	if rss > 300<<20 {
		t.Errorf("peak RSS %.0f MB, want under 300 MB", float64(rss)/(1<<20))
	}
	if !strings.Contains(d.Logs(), "pipeline streaming") {
		t.Errorf("no streaming log line")
	}
}

// avroLong decodes the zigzag long at offset skip (the first field of a Confluent-framed key).
func avroLong(b []byte, skip int) int64 {
	var u uint64
	var shift uint
	for i := skip; i < len(b); i++ {
		u |= uint64(b[i]&0x7f) << shift
		if b[i] < 0x80 {
			break
		}
		shift += 7
	}
	return int64(u>>1) ^ -int64(u&1)
}

// TestPostgresKafkaOutage stops the Kafka broker for 30 s while the writer goes on: nothing is
// lost or duplicated, and the pipeline recovers.
func TestPostgresKafkaOutage(t *testing.T) {
	s, ctx, dsn, db := setup(t, 8*time.Minute, "cdcd_outage", kvDDL)
	name := uniqueName("outage")
	yaml := strings.Replace(pipelineYAML(s, name, dsn, []string{"public.kv"}, ""), "topic_partitions: 3", "topic_partitions: 1", 1)
	d := startDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	w := &kvWriter{}
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, t, db, 60_000, 200, 1000, 300, 11) }()
	time.Sleep(5 * time.Second)
	kafka := func(cmd string) {
		t.Helper()
		out, err := exec.Command("../scripts/stack/kafka.sh", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
		}
	}
	kafka("down")
	var restarted atomic.Bool
	defer func() {
		if !restarted.Load() {
			kafka("up")
		}
	}()
	t.Logf("broker stopped at %d rows", w.written())
	time.Sleep(30 * time.Second)
	kafka("up")
	restarted.Store(true)
	t.Logf("broker started at %d rows", w.written())
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.waitReady(3 * time.Minute)
	c, recs := readKV(t, s, name+".public.kv", len(w.changes), 3*time.Minute)
	verifyKV(t, c, recs, w.changes)
	if d.stop(syscall.SIGTERM) > 10*time.Second {
		t.Errorf("slow shutdown")
	}
}
