package main

import (
	"strings"
	"testing"
)

// In a fleet, --wait follows one instance: when the pipeline runs on (or moved to) another,
// the error says so and how to find it.
func TestSnapshotWaitPipelineOnAnotherFleetInstance(t *testing.T) {
	f := &fakeDaemon{
		steps: []string{
			step("snapshotting", "", progress(100, 1, 3)),
			`{"ready":true,"fleet":{"group":"prod","instance":"cdcd-1","joined":true,"pipelines":[]},"pipelines":[]}`,
		},
		chunks: []float64{1, 1},
	}
	out, err := runWait(t, f, false)
	if err == nil || !strings.Contains(err.Error(), "instance cdcd-1 of fleet prod") || !strings.Contains(err.Error(), "cdcd fleet status") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
