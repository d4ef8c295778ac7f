package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// verifyReport is the part of `cdcd verify --output json` the tests read.
type verifyReport struct {
	Equal  bool `json:"equal"`
	Tables []struct {
		Table     string             `json:"table"`
		Rows      int64              `json:"rows"`
		Records   int64              `json:"records"`
		Missing   int64              `json:"missing"`
		Extra     int64              `json:"extra"`
		Different int64              `json:"different"`
		CaughtUp  bool               `json:"caught_up"`
		Phases    map[string]float64 `json:"phases"`
		Error     string             `json:"error"`
		Examples  []struct {
			Kind    string         `json:"kind"`
			Key     map[string]any `json:"key"`
			Columns []string       `json:"columns"`
		} `json:"examples"`
	} `json:"tables"`
}

// lastVerifyMaxRSS is the peak resident memory of the last runVerify's process, in bytes.
var lastVerifyMaxRSS int64

// runVerify runs cdcd verify with --output json and returns the report and the exit code.
func runVerify(t *testing.T, ctx context.Context, cfg string, args ...string) (verifyReport, int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cdcdBin, append([]string{"verify", "--config", cfg, "--output", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		lastVerifyMaxRSS = ru.Maxrss * 1024
	}
	var rep verifyReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("cdcd verify (exit %d) printed no JSON report: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	for _, tr := range rep.Tables {
		t.Logf("verify %v: %s phases %v", args, tr.Table, tr.Phases)
	}
	return rep, code, stderr.String()
}

const verifyDDL = `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2),
  seen timestamptz, body text);
ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO items SELECT g, 'item ' || g, g % 7, g * 1.25, timestamptz '2024-01-01' + g * interval '1 min', NULL
  FROM generate_series(1, 300) g;
UPDATE items SET body = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 500) g) WHERE id = 3;`

// TestVerifyPostgresFindsEachDifference: a clean topic verifies as equal (also after an
// update that leaves a TOASTed value out: the key keeps its earlier value); a row changed, a
// row deleted and a row inserted while the pipeline is stopped, and a record the table never
// had produced straight into the topic, are each found and named; once the pipeline caught up, only the
// planted record is left.
func TestVerifyPostgresFindsEachDifference(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_verify_diff", verifyDDL)
	name := uniqueName("verify")
	topic := name + ".public.items"
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.items"}, "    snapshot: {mode: initial, chunk_size: 100, signal_key: "+testSignalKey+"}\n"))
	stopCleanly(t, d)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	// An update that leaves the TOASTed body out of the record (unchanged_toast: [body]).
	if _, err := db.Exec(ctx, `UPDATE items SET qty = 100 WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "50")
	if code != 0 || !rep.Equal || len(rep.Tables) != 1 || rep.Tables[0].Rows != 300 || !rep.Tables[0].CaughtUp {
		t.Fatalf("a clean pipeline: exit %d, report %+v\n%s", code, rep, stderr)
	}
	if !strings.Contains(stderr, "verify: table equals its topic") || !strings.Contains(stderr, "table=public.items") {
		t.Errorf("no log line for the table:\n%s", stderr)
	}

	// Plant one difference of each kind with the pipeline stopped.
	d.stop(syscall.SIGTERM)
	for _, sql := range []string{`UPDATE items SET name = 'changed' WHERE id = 5`, `DELETE FROM items WHERE id = 6`,
		`INSERT INTO items VALUES (1000, 'unpublished', 1, 1, now(), NULL)`} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, ctx, s, topic, 9999, true)

	metrics := filepath.Join(t.TempDir(), "verify.prom")
	rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "50", "--catch-up", "2s", "--metrics-file", metrics)
	if code != 1 || rep.Equal || len(rep.Tables) != 1 {
		t.Fatalf("planted differences: exit %d, report %+v\n%s", code, rep, stderr)
	}
	prom, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`cdcd_verify_differences{kind="extra",pipeline="` + name + `",table="public.items"} 2`,
		`cdcd_verify_differences{kind="missing",pipeline="` + name + `",table="public.items"} 1`,
		`cdcd_verify_equal{pipeline="` + name + `"} 0`,
		`cdcd_verify_rows{pipeline="` + name + `",table="public.items"} 300`,
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("--metrics-file lacks %s:\n%s", want, prom)
		}
	}
	tr := rep.Tables[0]
	// The deleted row and the planted record are extra (the topic has them, the table not),
	// the inserted row missing, the updated one different in the column it changed.
	if tr.Missing != 1 || tr.Extra != 2 || tr.Different != 1 || tr.CaughtUp {
		t.Fatalf("want 1 missing, 2 extra, 1 different, not caught up; got %+v", tr)
	}
	var found []string
	for _, ex := range tr.Examples {
		found = append(found, fmt.Sprint(ex.Kind, " ", ex.Key["id"], " ", ex.Columns))
	}
	slices.Sort(found)
	if want := []string{"different 5 [name]", "extra 6 []", "extra 9999 []", "missing 1000 []"}; !slices.Equal(found, want) {
		t.Errorf("examples: got %q, want %q", found, want)
	}

	// The pipeline publishes the changes once it runs again; the planted record stays extra,
	// and a tombstone planted for a row makes it missing.
	d.start()
	d.waitReady(90 * time.Second)
	produce(t, ctx, s, topic, 10, false)
	rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name, "--table", "public.items", "--repair")
	if tr := rep.Tables; code != 1 || len(tr) != 1 || tr[0].Extra != 1 || tr[0].Missing != 1 || tr[0].Different != 0 || !tr[0].CaughtUp {
		t.Fatalf("after catching up: exit %d, report %+v\n%s", code, rep, stderr)
	}
	// --repair asked the pipeline to snapshot the missing key again.
	deadline := time.Now().Add(time.Minute)
	for {
		rep, code, stderr = runVerify(t, ctx, d.cfg, "--pipeline", name)
		if tr := rep.Tables; len(tr) == 1 && tr[0].Missing == 0 && tr[0].Extra == 1 && tr[0].Different == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after --repair: exit %d, report %+v\n%s", code, rep, stderr)
		}
		time.Sleep(time.Second)
	}
}

// stopCleanly gives the daemon SIGTERM at the end of the test, before the harness's SIGKILL: a
// killed daemon leaves its Kafka transaction open in the shared offsets topic until it times
// out, and read_committed readers of that topic (other tests' pipelines starting, verify on
// MySQL) see nothing committed after it meanwhile.
func stopCleanly(t *testing.T, d *daemon) {
	t.Cleanup(func() { d.stop(syscall.SIGTERM) })
}

// produce writes a record for key id straight into the topic, framed with the schema ids the
// pipeline's records carry: a copy of the first record's value (create), or a tombstone.
func produce(t *testing.T, ctx context.Context, s stack, topic string, id int32, create bool) {
	t.Helper()
	c := newConsumer(t, s, topic)
	recs := c.read(t, 1, 30*time.Second, 0)
	if len(recs) == 0 {
		t.Fatalf("no record in %s", topic)
	}
	r := recs[0]
	key := append(bytes.Clone(r.Key[:5]), binary.AppendVarint(nil, int64(id))...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: topic, Key: key}
	if create {
		rec.Value = r.Value
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyPostgresEqualUnderLiveWriter: with writers inserting, updating and deleting rows
// the whole time, a pipeline that keeps up verifies as equal: differences seen while the
// pipeline is behind the table read are read again, not reported.
func TestVerifyPostgresEqualUnderLiveWriter(t *testing.T) {
	s, ctx, dsn, _ := setup(t, 4*time.Minute, "cdcd_verify_live", verifyDDL)
	name := uniqueName("verifylive")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.items"}, "    snapshot: {mode: initial, chunk_size: 100, signal_key: "+testSignalKey+"}\n"))
	stopCleanly(t, d)
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := pgConnect(t, ctx, dsn)
			for wctx.Err() == nil {
				id := rand.IntN(400) + 1
				var err error
				switch rand.IntN(3) {
				case 0:
					_, err = conn.Exec(wctx, `UPDATE items SET name = name || '+', qty = qty + 1 WHERE id = $1`, id)
				case 1:
					_, err = conn.Exec(wctx, `DELETE FROM items WHERE id = $1`, id)
				default:
					_, err = conn.Exec(wctx, `INSERT INTO items VALUES ($1, 'new', 1, 2.5, now(), NULL) ON CONFLICT (id) DO UPDATE SET qty = 0`, id)
				}
				if err != nil && wctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	rep, code, stderr := runVerify(t, ctx, d.cfg, "--pipeline", name, "--chunk-rows", "20")
	stop()
	wg.Wait()
	if code != 0 || !rep.Equal || len(rep.Tables) != 1 || !rep.Tables[0].CaughtUp {
		t.Fatalf("live writer: exit %d, report %+v\n%s", code, rep, stderr)
	}
	t.Logf("verified %d rows against %d records under writers", rep.Tables[0].Rows, rep.Tables[0].Records)
}
