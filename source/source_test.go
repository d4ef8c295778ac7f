package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/fatal"
	"github.com/cdcd-dev/cdcd/snapshot"
)

// untilDone is a task that runs until its context ends, then returns what it was given.
func untilDone(ret error, stopped *bool) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		if stopped != nil {
			*stopped = true
		}
		return ret
	}
}

func TestSession(t *testing.T) {
	boom := errors.New("engine: chunk failed")
	streamFail := errors.New("stream: connection reset")
	cases := []struct {
		name     string
		stream   func(context.Context) error
		beside   func(context.Context) error
		shutdown bool
		want     error
	}{
		{"the engine fails: the stream is stopped, the engine's error returned",
			untilDone(context.Canceled, nil), func(context.Context) error { return boom }, false, boom},
		{"the stream fails: the engine is stopped, the stream's error returned",
			func(context.Context) error { return streamFail }, untilDone(nil, nil), false, streamFail},
		{"shutdown: the stream's result, not the engine's report of being stopped",
			untilDone(nil, nil), untilDone(context.Canceled, nil), true, nil},
		{"a task ends without an error: the session ends without one",
			untilDone(context.Canceled, nil), func(context.Context) error { return nil }, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.shutdown {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			var stopped bool
			beside := func(ctx context.Context) error {
				err := c.beside(ctx)
				stopped = true
				return err
			}
			done := make(chan error, 1)
			go func() { done <- Session(ctx, c.stream, beside) }()
			select {
			case err := <-done:
				if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
					t.Fatalf("Session = %v, want %v", err, c.want)
				}
				if !stopped {
					t.Fatal("Session returned before the task beside the stream ended")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Session did not end")
			}
		})
	}
}

func TestLostConnection(t *testing.T) {
	prereq := &fatal.Error{Err: errors.New("binlog_format is STATEMENT")}
	down := errors.New("broken pipe")
	if err := LostConnection(prereq, func() error { return down }, "the server"); err == prereq {
		t.Fatal("a fatal error over a broken connection stayed fatal")
	} else if _, ok := fatal.As(err); ok || !errors.Is(err, down) || !strings.Contains(err.Error(), "binlog_format is STATEMENT") || !strings.Contains(err.Error(), "lost the connection to the server") {
		t.Fatalf("reclassified: %v", err)
	}
	if err := LostConnection(prereq, func() error { return nil }, "the server"); err != prereq {
		t.Fatalf("a fatal error over a working connection became %v", err)
	}
	pinged := false
	plain := errors.New("timeout")
	if err := LostConnection(plain, func() error { pinged = true; return down }, "the server"); err != plain || pinged {
		t.Fatalf("a retriable error: %v (pinged %v)", err, pinged)
	}
}

func TestSnapshotConfig(t *testing.T) {
	c := SnapshotConfig{Parallelism: 3, KeylessAccepted: []string{"a.b"}}.WithDefaults()
	if c.Mode != snapshot.Never || c.ChunkRows != snapshot.DefaultChunkRows || c.ChunkBytes != snapshot.DefaultChunkBytes {
		t.Fatalf("defaults: %+v", c)
	}
	e := c.Engine("p", []string{"a.b"}, c.KeylessAccepted)
	if e.Pipeline != "p" || e.Mode != snapshot.Never || e.Parallelism != 3 || len(e.Tables) != 1 || len(e.KeylessAccepted) != 1 || e.ChunkRows != c.ChunkRows {
		t.Fatalf("engine config: %+v", e)
	}
}

// TestForgetIfGone: a worker forgets its description of a table found missing (it may come
// back with another shape), and keeps it on success or on any other error.
func TestForgetIfGone(t *testing.T) {
	descs := map[string]int{"a.b": 1, "a.c": 2}
	for _, err := range []error{nil, errors.New("timeout")} {
		ForgetIfGone(descs, "a.b", &err)
	}
	if len(descs) != 2 {
		t.Fatalf("forgot a description without the table missing: %v", descs)
	}
	gone := fmt.Errorf("a.b: %w", snapshot.ErrTableGone)
	ForgetIfGone(descs, "a.b", &gone)
	if _, ok := descs["a.b"]; ok || len(descs) != 1 {
		t.Fatalf("after the table went missing: %v, want only a.c", descs)
	}
}
