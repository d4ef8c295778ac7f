package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A missed CPU goal points at the profile of its phase from the same run; the profile's file
// is written next to the report, and one an earlier run left there is removed.
func TestGoalProfilesBesideTheReport(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, profilesDir, "mariadb-catchup.txt")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("an earlier run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	catchup := &toolResult{Tool: "cdcd", Rows: 1_000_000, Took: 6 * time.Second, CPU: 4}
	s := &suite{
		o:       options{latest: filepath.Join(dir, "latest.md"), rates: []int{1000}, latDur: 20 * time.Second, repo: ".", goalProfiles: true},
		env:     &benchEnv{cpus: 2, cpuModel: "test cpu", pgVersion: "PostgreSQL 15"},
		dir:     dir,
		started: time.Date(2026, 12, 7, 16, 15, 0, 0, time.UTC), finished: time.Date(2026, 12, 7, 16, 40, 0, 0, time.UTC),
		settings: map[string][]string{},
		scenarios: []*scenarioResult{
			{ID: "1", Kind: "throughput", Title: "catch-up", CDCD: catchup,
				Limit: &toolResult{Tool: "pg_recvlogical", Rows: 1_000_000, Took: 4 * time.Second, CPU: 2}},
			{ID: "3", Kind: "throughput", Title: "snapshot", KafkaLimit: 100_000,
				CDCD: &toolResult{Tool: "cdcd", Rows: 1_000_000, Took: 2 * time.Second, CPU: 1}},
		},
		profiles: []*goalProfile{
			{slug: profPGCatchup, title: "PostgreSQL catch-up (scenario 1, TLS)", measured: catchup,
				r:   &toolResult{Tool: "cdcd", Rows: 1_000_000, Took: 7 * time.Second, CPU: 4.2, Profile: "x.pprof"},
				top: "flat  flat%   sum%\n1.2s 20% 20%  crypto/tls.(*Conn).readRecordOrCCS", cum: "cum view"},
			// The snapshot's goal is met: its profile is written but no row points at it.
			{slug: profPGSnapshot, title: "PostgreSQL snapshot (scenario 3)", r: &toolResult{Tool: "cdcd"}, top: "snapshot top", cum: "c"},
			// No profile (the pass failed there): no file, no link.
			{slug: profPGCatchupNoTLS, title: "no TLS", r: failed("cdcd", os.ErrDeadlineExceeded)},
		},
	}
	if err := s.write(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the earlier run's profile is still beside the report (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, profilesDir, profPGCatchupNoTLS+".txt")); !os.IsNotExist(err) {
		t.Errorf("a profile file was written for a phase without a profile (stat: %v)", err)
	}
	txt, err := os.ReadFile(filepath.Join(dir, profilesDir, profPGCatchup+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cdcd's CPU profile: PostgreSQL catch-up (scenario 1, TLS)",
		"benchmark suite of 2026-12-07 16:15 UTC",
		"The measured phase: 1M rows in 6.00 s = 166667 rows/s, cdcd 4.0 CPU s per million rows",
		"The profiled phase: 1M rows in 7.00 s = 142857 rows/s, cdcd 4.2 CPU s per million rows",
		"## go tool pprof -top\n\nflat  flat%   sum%\n1.2s 20% 20%  crypto/tls.(*Conn).readRecordOrCCS",
		"## go tool pprof -top -cum\n\ncum view",
	} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("%s lacks %q:\n%s", profPGCatchup, want, txt)
		}
	}
	md, err := os.ReadFile(s.o.latest)
	if err != nil {
		t.Fatal(err)
	}
	ref := "cdcd's CPU profile in the phase, from this run: [profiles/pg-catchup.txt](profiles/pg-catchup.txt)"
	for _, row := range []string{"| PostgreSQL catch-up ≤ 2.5 CPU s per million rows |", "| PostgreSQL catch-up ≥ 90 % of pg_recvlogical |"} {
		if line := lineWith(string(md), row); !strings.Contains(line, "**not met**") || !strings.Contains(line, ref) {
			t.Errorf("the missed goal's row does not point at its profile:\n%s", line)
		}
	}
	if line := lineWith(string(md), "| PostgreSQL snapshot ≥ 60 % of a bare transactional producer |"); !strings.HasSuffix(line, "| met |") {
		t.Errorf("the met goal's row: %s", line)
	}
	if !strings.Contains(string(md), "- **CPU profiles**: after the measured scenarios") ||
		!strings.Contains(string(md), "[profiles/pg-catchup.txt](profiles/pg-catchup.txt), [profiles/pg-snapshot.txt](profiles/pg-snapshot.txt).") {
		t.Errorf("latest.md does not list the profiles:\n%s", lineWith(string(md), "CPU profiles"))
	}
}

// A profiling build's catch-up hands its CPU profile over; a plain build's has none to give.
func TestCDCDToolSavesItsProfile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bench/cpu/stop" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("pprof bytes"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	ct := &cdcdTool{o: options{profiling: true}, logPath: filepath.Join(dir, "p1.cdcd.log"), pprofAddr: strings.TrimPrefix(srv.URL, "http://")}
	path, err := ct.saveProfile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "p1.cpu.pprof") {
		t.Errorf("saved to %s", path)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "pprof bytes" {
		t.Errorf("saved %q, %v", b, err)
	}
	plain := &cdcdTool{logPath: filepath.Join(dir, "p2.cdcd.log"), pprofAddr: "127.0.0.1:1"}
	if path, err := plain.saveProfile(context.Background()); path != "" || err != nil {
		t.Errorf("a plain build's tool saved a profile: %q, %v", path, err)
	}
}
