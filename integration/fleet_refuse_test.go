package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFleetRefusesOtherPipelines: an instance whose configuration has other pipelines than
// the running fleet's is refused by Kafka; it runs nothing, and its /readyz is 503 with the
// reason and the fix, while the fleet keeps running.
func TestFleetRefusesOtherPipelines(t *testing.T) {
	s := needStack(t)
	ctx := testCtx(t, 3*time.Minute)
	group := uniqueName("fleetref")
	var pipes []fleetPipeline
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("%sp%d", group, i)
		dsn := newDatabase(t, ctx, s, "cdcd_"+name)
		db := pgConnect(t, ctx, dsn)
		if _, err := db.Exec(ctx, kvDDL); err != nil {
			t.Fatal(err)
		}
		pipes = append(pipes, pgFleetPipeline(name, dsn))
		names = append(names, name)
	}
	a := startMySQLDaemon(t, strings.ReplaceAll(fleetYAML(s, group, pipes[:2]), "INSTANCE", "a"))
	waitFleet(t, map[string]*daemon{"a": a}, names[:2], time.Minute)

	b := startMySQLDaemon(t, strings.ReplaceAll(fleetYAML(s, group, pipes), "INSTANCE", "b"))
	deadline := time.Now().Add(30 * time.Second)
	var r fleetReady
	for time.Now().Before(deadline) {
		var err error
		if r, err = b.fleetReady(); err == nil && r.Fleet != nil && r.Fleet.Problem != "" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.Fleet == nil || !strings.Contains(r.Fleet.Problem, "runs different pipelines") || !strings.Contains(r.Fleet.Problem, "fix:") || r.Ready {
		t.Fatalf("b's /readyz: %+v", r)
	}
	if len(r.Pipelines) != 0 || len(r.Fleet.Pipelines) != 0 {
		t.Errorf("the refused instance runs %v", r.Fleet.Pipelines)
	}
	// The fleet is untouched: a still runs its two pipelines.
	if owner := waitFleet(t, map[string]*daemon{"a": a}, names[:2], 10*time.Second); len(owner) != 2 {
		t.Errorf("a runs %v", owner)
	}
}
