package integration

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVerifyPostgresSpeed measures verify's rate against the snapshot's on the same table
// (CDCD_VERIFY_BENCH_ROWS rows; skipped when unset): verify must read a table and its topic at
// least at half the snapshot's rate.
func TestVerifyPostgresSpeed(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CDCD_VERIFY_BENCH_ROWS"))
	if n <= 0 {
		t.Skip("set CDCD_VERIFY_BENCH_ROWS to measure verify against the snapshot")
	}
	s, ctx, dsn, db := setup(t, 20*time.Minute, "cdcd_verify_speed", `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2),
  seen timestamptz, body text)`)
	if _, err := db.Exec(ctx, `INSERT INTO items SELECT g, 'item ' || g, g % 7, g * 1.25, timestamptz '2024-01-01' + g * interval '1 min', md5(g::text)
  FROM generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE items`); err != nil {
		t.Fatal(err)
	}
	// The snapshot's rate end to end: from the start until its records are committed.
	name := uniqueName("verifyspeed")
	t0 := time.Now()
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.items"}, "    snapshot: {mode: initial}\n"))
	stopCleanly(t, d)
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	waitFor(t, d, "the snapshot's records", 15*time.Minute, func() bool {
		ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, name+".public.items")
		var sum int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		}
		return sum >= int64(n)
	})
	snapTook := time.Since(t0)
	snapRate := float64(n) / snapTook.Seconds()
	m := regexp.MustCompile(`msg="snapshot finished".* rows_per_second=(\d+)`).FindStringSubmatch(d.Logs())
	if m != nil {
		t.Logf("the snapshot engine's own rate (reading, before Kafka): %s rows/s", m[1])
	}
	start := time.Now()
	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name)
	took := time.Since(start)
	if code != 0 || !rep.Equal || rep.Tables[0].Rows != int64(n) {
		t.Fatalf("verify: exit %d, report %+v\n%s", code, rep, stderr)
	}
	rate := float64(n) / took.Seconds()
	t.Logf("%d rows: snapshot %.0f rows/s end to end (%s), verify %.0f rows/s (%.2f of the snapshot's rate) in %s, peak RSS %d MiB; phases %v",
		n, snapRate, snapTook.Round(time.Millisecond), rate, rate/snapRate, took.Round(time.Millisecond), lastVerifyMaxRSS>>20, rep.Tables[0].Phases)
	if rate < snapRate/2 {
		t.Errorf("verify reads %.0f rows/s, less than half the snapshot's %.0f", rate, snapRate)
	}
}
