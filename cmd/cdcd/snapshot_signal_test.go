package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

func TestCheckSnapshotRequest(t *testing.T) {
	p := &config.Pipeline{Name: "shop", Source: config.Source{Postgres: &config.Postgres{DSN: "postgres://cdcd@db/shop"}}}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", "/nonexistent")
	if err := checkSnapshotRequest(p, ""); err == nil || !strings.Contains(err.Error(), "snapshot.signal_key") {
		t.Fatalf("no key: %v", err)
	}
	p.Snapshot.SignalKey = "0123456789abcdef0123"
	if err := checkSnapshotRequest(p, "k < 10 AND region = 'eu'"); err != nil {
		t.Fatal(err)
	}
	err := checkSnapshotRequest(p, "k < 10; DROP TABLE t")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "allowed grammar") {
		t.Fatalf("SQL in --where: %v", err)
	}
}
