package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium returns the headless browser the status page test drives; the test fails (it does
// not skip) when there is none: `make stack-up` installs it (scripts/stack/chromium.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run `make stack-up` (scripts/stack/chromium.sh installs the Debian package chromium)")
	return ""
}

// browse runs headless Chromium on url with args (--dump-dom, --screenshot=...).
func browse(t *testing.T, browser, url string, args ...string) string {
	t.Helper()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1500"}, args...)
	cmd := exec.Command(browser, append(all, url)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", browser, args, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s %v did not finish within 60s\n%s", browser, args, stderr.String())
	}
	return stdout.String()
}

// artifactDir is where tests keep what a person may want to look at (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := env("CDCD_TEST_ARTIFACTS", filepath.Join("..", ".artifacts"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInChromium loads cdcd's status page in headless Chromium while one pipeline
// streams and another one's initial snapshot is in progress (held there by a lock on its
// table), and checks what a person sees: both pipelines, their phases, the snapshot's table and
// progress, lag and the slot. The screenshot is kept in .artifacts/status-page.png.
func TestStatusPageInChromium(t *testing.T) {
	needStack(t) // skips only when the stack was not asked for; then a missing browser fails
	browser := chromium(t)
	db := uniqueName("statuspage")
	s, ctx, dsn, conn := setup(t, 3*time.Minute, db, `CREATE TABLE live (id serial PRIMARY KEY, v text);
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g;
ANALYZE big;`)
	live, bulk := uniqueName("stlive"), uniqueName("stbulk")
	yaml := pipelineYAML(s, live, dsn, []string{"public.live"}, "") + fmt.Sprintf(`  - name: %s
    source:
      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [public.big]
        slot_stats_interval: 1s
    topics:
      prefix: %s
    snapshot: {mode: initial, chunk_size: 500, parallelism: 1}
`, bulk, dsn, bulk, bulk, bulk)
	d := startDaemon(t, yaml)

	// Hold the snapshot in progress: once it is under way, a lock makes its next chunk wait.
	type entry struct {
		Name     string `json:"name"`
		Phase    string `json:"phase"`
		Snapshot []struct {
			Table string `json:"table"`
			Rows  uint64 `json:"rows"`
		} `json:"snapshot"`
	}
	readyz := func() map[string]entry {
		resp, err := http.Get("http://" + d.http + "/readyz")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct{ Pipelines []entry }
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return nil
		}
		out := map[string]entry{}
		for _, e := range body.Pipelines {
			out[e.Name] = e
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if e := readyz()[bulk]; len(e.Snapshot) > 0 && e.Snapshot[0].Rows > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %s never showed its snapshot in /readyz\n%s", bulk, d.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE big IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if e := readyz()[bulk]; len(e.Snapshot) == 0 {
		t.Fatalf("the snapshot of big ended before the lock held it: make the table larger (%+v)", e)
	}

	// The other pipeline streams a change.
	other := pgConnect(t, ctx, dsn)
	if _, err := other.Exec(ctx, "INSERT INTO live (v) VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	for {
		if e := readyz()[live]; e.Phase == "streaming" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %s is not streaming: %+v\n%s", live, readyz()[live], d.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a round of slot statistics

	url := "http://" + d.http + "/"
	dom := browse(t, browser, url, "--dump-dom")
	shot := filepath.Join(artifactDir(t), "status-page.png")
	_ = os.Remove(shot)
	browse(t, browser, url, "--screenshot="+shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("no screenshot at %s (%v)", shot, err)
	} else {
		abs, _ := filepath.Abs(shot)
		t.Logf("screenshot: %s", abs)
	}
	if err := os.WriteFile(filepath.Join(artifactDir(t), "status-page.html"), []byte(dom), 0o644); err != nil {
		t.Error(err)
	}

	// What the browser shows, per pipeline card.
	card := func(name string) string {
		i := strings.Index(dom, `id="pipeline-`+name+`"`)
		if i < 0 {
			t.Fatalf("the page has no pipeline %s:\n%s", name, dom)
		}
		rest := dom[i:]
		if j := strings.Index(rest[1:], `id="pipeline-`); j >= 0 {
			rest = rest[:j+1]
		}
		return rest
	}
	lc := card(live)
	for _, want := range []string{`phase-streaming">streaming<`, "ready", live} {
		if !strings.Contains(lc, want) {
			t.Errorf("pipeline %s's card lacks %q:\n%s", live, want, lc)
		}
	}
	if !regexp.MustCompile(`<th>slot</th>`).MatchString(lc) || !strings.Contains(lc, "<td>"+live+"</td>") {
		t.Errorf("pipeline %s's card shows no slot %s:\n%s", live, live, lc)
	}
	bc := card(bulk)
	for _, want := range []string{`phase-snapshotting">snapshotting<`, "snapshot of", "public.big", "initial", "rows/s"} {
		if !strings.Contains(bc, want) {
			t.Errorf("pipeline %s's card lacks %q:\n%s", bulk, want, bc)
		}
	}
	// The progress: rows read of about a million, as a percentage below 100.
	m := regexp.MustCompile(`([0-9,]+)</td><td class="n">([0-9,]+)</td>\s*<td><span class="bar"><span style="width: ([0-9.]+)%`).FindStringSubmatch(bc)
	if m == nil {
		t.Fatalf("pipeline %s's card shows no snapshot progress:\n%s", bulk, bc)
	}
	if m[2] == "0" || m[3] == "100.0" {
		t.Errorf("snapshot progress %s rows of %s (%s %%): want an estimate and a snapshot in progress", m[1], m[2], m[3])
	}
	if strings.Contains(dom, "password") || strings.Contains(dom, "postgres://") {
		t.Errorf("the page shows a connection string:\n%s", dom)
	}
}
