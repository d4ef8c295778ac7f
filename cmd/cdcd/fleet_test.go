package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/fleet"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func fleetConfig(t *testing.T, brokers string, pipelines ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\nschema_registry:\n  url: http://127.0.0.1:18081\nfleet:\n  enabled: true\n  group: g1\npipelines:\n", brokers)
	for _, p := range pipelines {
		fmt.Fprintf(&b, "  - name: %s\n    source:\n      postgres:\n        dsn: postgres://postgres@127.0.0.1:1/%s\n        tables: [public.t]\n", p, p)
	}
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cdcd fleet status prints which instance runs which pipeline, from the group's description.
func TestFleetStatus(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pipes := []string{"p1", "p2", "p3", "p4"}
	path := fleetConfig(t, c.ListenAddrs()[0], pipes...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan string, 16)
	members := map[string]*fleet.Fleet{}
	done := make(chan struct{}, 2)
	for _, inst := range []string{"i1", "i2"} {
		f := fleet.New(fleet.Config{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Group: "g1", Topic: "_cdcd_fleet.g1",
			Instance: inst, Pipelines: pipes, Replication: 1, SessionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond,
			DrainTimeout: time.Second, Run: func(ctx context.Context, p string) { runs <- p; <-ctx.Done() }})
		members[inst] = f
		go func() { _ = f.Run(ctx); done <- struct{}{} }()
	}
	defer func() { cancel(); <-done; <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for len(members["i1"].Status().Pipelines) != 2 || len(members["i2"].Status().Pipelines) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not spread: %+v %+v", members["i1"].Status(), members["i2"].Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out, errb bytes.Buffer
	var status string
	for time.Now().Before(deadline) { // the description can lag the members' view by a rebalance
		out.Reset()
		if err := runMain(context.Background(), []string{"fleet", "status", "--config", path}, &out, &errb); err == nil {
			status = out.String()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status == "" {
		t.Fatalf("fleet status never succeeded: %s %s", out.String(), errb.String())
	}
	for _, inst := range []string{"i1", "i2"} {
		want := inst + " "
		line := ""
		for _, l := range strings.Split(status, "\n") {
			if strings.HasPrefix(l, want) {
				line = l
			}
		}
		for _, p := range members[inst].Status().Pipelines {
			if !strings.Contains(line, p) {
				t.Errorf("instance %s runs %s, status says: %q\n%s", inst, p, line, status)
			}
		}
	}
	if !strings.Contains(status, "2 instance(s), 4 pipeline(s)") || !strings.Contains(status, "every pipeline runs on one instance") {
		t.Errorf("status:\n%s", status)
	}

	// A configuration with other pipelines: warned, and what it names is not running.
	other := fleetConfig(t, c.ListenAddrs()[0], "p1", "p2", "p3", "p4", "p5")
	out.Reset()
	err = runMain(context.Background(), []string{"fleet", "status", "--config", other}, &out, &errb)
	if err == nil || !strings.Contains(out.String(), "other pipelines") || !strings.Contains(out.String(), "not running on any instance: p5") {
		t.Errorf("other pipelines: err %v\n%s", err, out.String())
	}
}

func TestFleetStatusNeedsFleetMode(t *testing.T) {
	path := fleetConfig(t, "127.0.0.1:1", "p1")
	data, _ := os.ReadFile(path)
	_ = os.WriteFile(path, bytes.Replace(data, []byte("enabled: true"), []byte("enabled: false"), 1), 0o600)
	var out, errb bytes.Buffer
	err := runMain(context.Background(), []string{"fleet", "status", "--config", path}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "fleet mode is off") || !strings.Contains(err.Error(), "fleet.enabled: true") {
		t.Fatalf("err %v", err)
	}
}

// cdcd check refuses a fleet file whose pipelines differ from those of the running instances.
func TestCheckFleet(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(path string) (string, bool) {
		cfg, err := loadValid(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep checks.Report
		checkFleet(ctx, cfg, rep.Scoped("fleet"))
		var b bytes.Buffer
		rep.Print(&b)
		return b.String(), rep.Failed()
	}
	path := fleetConfig(t, c.ListenAddrs()[0], "p1", "p2")
	if out, failed := run(path); failed || !strings.Contains(out, "no instance runs yet") || !strings.Contains(out, "creates it with 2 partitions") {
		t.Fatalf("empty fleet: failed=%v\n%s", failed, out)
	}
	fctx, fcancel := context.WithCancel(ctx)
	f := fleet.New(fleet.Config{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Group: "g1", Topic: "_cdcd_fleet.g1",
		Instance: "i1", Pipelines: []string{"p1", "p2"}, Replication: 1, SessionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond,
		DrainTimeout: time.Second, Run: func(ctx context.Context, _ string) { <-ctx.Done() }})
	done := make(chan struct{})
	go func() { _ = f.Run(fctx); close(done) }()
	defer func() { fcancel(); <-done }()
	for len(f.Status().Pipelines) != 2 {
		if ctx.Err() != nil {
			t.Fatal("the instance never ran its pipelines")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, failed := run(path); failed || !strings.Contains(out, "1 instance(s) running this file's pipelines") {
		t.Fatalf("same pipelines: failed=%v\n%s", failed, out)
	}
	other := fleetConfig(t, c.ListenAddrs()[0], "p1", "p2", "p3")
	out, failed := run(other)
	if !failed || !strings.Contains(out, "have other pipelines") || !strings.Contains(out, "stop every instance") || !strings.Contains(out, "2 partitions for 3 pipelines") {
		t.Fatalf("other pipelines: failed=%v\n%s", failed, out)
	}
}

// A fleet no instance runs: every pipeline runs nowhere, exit 1.
func TestFleetStatusEmpty(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out, errb bytes.Buffer
	err = runMain(context.Background(), []string{"fleet", "status", "--config", fleetConfig(t, c.ListenAddrs()[0], "p1", "p2")}, &out, &errb)
	if err == nil || !strings.Contains(out.String(), "0 instance(s), 2 pipeline(s)") || !strings.Contains(out.String(), "not running on any instance: p1, p2") {
		t.Fatalf("err %v\n%s%s", err, out.String(), errb.String())
	}
}
