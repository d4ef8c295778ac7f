package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
)

// The window jobs' check of before images uses what the pipelines' checks found: it opens no
// connection of its own (a pipeline whose connection failed gets "cannot tell", naming that
// error), reads a MySQL server's binlog_row_image once for all its jobs and tables, and adds
// no warning of its own for a setting other than FULL, which the pipeline's check already
// fails on with the fix (it used to warn again for every job and table).
func TestCheckBeforeImagesUsesThePipelinesChecks(t *testing.T) {
	job := func(name, topics string) string {
		return fmt.Sprintf("  - name: %s\n    input: {topics: [%s]}\n    mode: table\n    time: after.at\n"+
			"    window: {type: tumbling, size: 1m}\n    aggregates: [{name: n, fn: count}]\n    output: {topic: %s_out}\n", name, topics, name)
	}
	cfg, err := config.Parse("c.yaml", []byte(`kafka:
  brokers: [localhost:9092]
schema_registry:
  url: http://localhost:8081
pipelines:
  - name: m
    source: {mysql: {dsn: "u@tcp(h:3306)/db", server_id: 77, tables: [db.a, db.b]}}
    snapshot: never
  - name: down
    source: {mysql: {dsn: "u@tcp(h:3306)/db2", server_id: 78, tables: [db2.c]}}
    snapshot: never
windows:
`+job("ab", "m.db.a, m.db.b")+job("a", "m.db.a")+job("c", "down.db2.c")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	run := func(image string) []checks.Result {
		t.Helper()
		src := newSourceTables(cfg)
		src.rowImage["m"] = image // as read from the pipeline's connection
		src.failed["down"] = errors.New("dial tcp h:3306: connection refused")
		var rep checks.Report
		for i := range cfg.Windows {
			checkBeforeImages(context.Background(), &cfg.Windows[i], src, rep.Scoped("window job "+cfg.Windows[i].Name))
		}
		return rep.Results
	}
	for _, r := range run("MINIMAL") {
		if r.Scope != "window job c" {
			t.Errorf("binlog_row_image MINIMAL, which the pipeline's check fails on, reported again: %s / %s: %s %s", r.Scope, r.Name, r.Status, r.Detail)
		}
	}
	full := run("FULL")
	oks := 0
	for _, r := range full {
		if r.Scope != "window job c" && r.Status == checks.OK && strings.Contains(r.Detail, "binlog_row_image FULL") {
			oks++
		}
	}
	if oks != 3 {
		t.Errorf("binlog_row_image FULL: %d ok results, want one per job and input table (3): %+v", oks, full)
	}
	warned := 0
	for _, r := range full {
		if r.Scope == "window job c" {
			if r.Status != checks.Warn || !strings.Contains(r.Detail, "connection refused") {
				t.Errorf("a pipeline whose connection failed: %s %q, want a warning naming the failure", r.Status, r.Detail)
			}
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("a pipeline whose connection failed: %d results for job c, want one warning", warned)
	}
}
