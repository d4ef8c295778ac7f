package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/publish"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The advice of a GapError must be true: it never suggests forgetting the committed position
// when the slot would then republish what Kafka already holds.
func TestGapErrorAdviceNeverDuplicates(t *testing.T) {
	cases := []struct {
		name string
		err  GapError
	}{
		{"complete", GapError{AckedPosition: 0x500, Committed: offsets.Record{Pos: change.Position{Tx: 0x300, Index: 4}, Complete: true, AckPosition: 0x301}}},
		// The slot was confirmed past earlier transactions but not past the split one that
		// is partly in Kafka: forgetting the position would republish its first 100 events.
		{"partial ahead of the slot", GapError{AckedPosition: 0x500, Committed: offsets.Record{Pos: change.Position{Tx: 0x600, Index: 99}, AckPosition: 0x301}}},
		{"hanging transaction", GapError{AckedPosition: 0x500, Committed: offsets.Record{Pos: change.Position{Tx: 0x300, Index: 4}, Complete: true, AckPosition: 0x301},
			Hanging: &publish.HangingTransaction{Topic: "_cdcd_offsets", Partition: 0, StartOffset: 406664, ProducerID: 4248}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			if strings.Contains(msg, "reset-offsets --config FILE --pipeline NAME`") {
				t.Errorf("advises forgetting the position, which republishes the slot's backlog: %s", msg)
			}
			if !strings.Contains(msg, "--accept-slot 0/500") {
				t.Errorf("does not give the command that accepts the slot's position: %s", msg)
			}
			if h := tc.err.Hanging; h != nil {
				for _, want := range []string{"hanging transaction", "_cdcd_offsets[0] from offset 406664", "find-hanging", "--start-offset 406664", "re-snapshot"} {
					if !strings.Contains(msg, want) {
						t.Errorf("does not say %q: %s", want, msg)
					}
				}
				if strings.Contains(msg, "another client consumed the slot") {
					t.Errorf("blames another client for a hanging transaction: %s", msg)
				}
			}
		})
	}
}

// Retries are counted by where the error came from: a full spill disk is the source's
// failure (an *os.PathError with ENOSPC is also a "net or system" error, which the registry
// check used to claim first).
func TestCauseLabelByOrigin(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/var/tmp/cdcd-spill-1", Err: syscall.ENOSPC}
	cases := []struct {
		err  error
		want string
	}{
		{sourceErr(fmt.Errorf("spilling transaction: %w", enospc)), "source"},
		{sourceErr(context.DeadlineExceeded), "source"},
		{&publish.KafkaError{Err: fmt.Errorf("flushing records: %w", context.DeadlineExceeded)}, "kafka"},
		{&publish.KafkaError{Err: fmt.Errorf("committing kafka transaction: %w", kerr.CoordinatorNotAvailable)}, "kafka"},
		{fmt.Errorf("x: %w", kerr.CoordinatorNotAvailable), "kafka"},
		{&publish.RegistryError{Err: fmt.Errorf("encoding public.t: %w", errors.New("registry unavailable"))}, "schema_registry"},
		{errors.New("something else"), "other"},
	}
	for _, tc := range cases {
		if got := causeLabel(tc.err); got != tc.want {
			t.Errorf("causeLabel(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
