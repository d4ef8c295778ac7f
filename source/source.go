// Package source holds what the change sources (source/postgres, source/mysql) share beyond
// the pipeline's Source contract: their snapshot options, the session runner that keeps the
// snapshot engine and the stream together, and the rule that a failure seen over a broken
// connection is retried, not taken for the server's verdict. A new source gets them by using
// this package.
//
// Invariants:
//   - A session's tasks (the stream, the snapshot engine, helpers such as heartbeats) end
//     together: the first to end ends the others, and Session returns only when all have.
//   - Nothing here connects to a server or decides a source's positions.
package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/fatal"
	"github.com/cdcd-dev/cdcd/snapshot"
	"golang.org/x/sync/errgroup"
)

// SnapshotConfig is a source's snapshot options (see package snapshot); each source adds what
// only it needs in its own Config.
type SnapshotConfig struct {
	Mode        snapshot.Mode
	Parallelism int
	ChunkRows   int
	ChunkBytes  int64
	// Progress, if set, receives every table's progress when it changes.
	Progress func([]snapshot.Progress)
	// KeylessAccepted are tables without a key whose inexact snapshot the user accepts.
	KeylessAccepted []string
	// SignalKey authenticates on-demand requests (snapshot.Signal); nil refuses them.
	SignalKey []byte
}

// WithDefaults fills what is not set: no snapshots, and the engine's chunk sizes.
func (c SnapshotConfig) WithDefaults() SnapshotConfig {
	if c.Mode == "" {
		c.Mode = snapshot.Never
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = snapshot.DefaultChunkRows
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = snapshot.DefaultChunkBytes
	}
	return c
}

// Engine is the snapshot engine's configuration for the captured tables and the accepted
// keyless tables (c.KeylessAccepted), both named as the source names them; the source adds
// its transaction order, logger and metrics.
func (c SnapshotConfig) Engine(pipeline string, tables, keylessAccepted []string) snapshot.Config {
	return snapshot.Config{Pipeline: pipeline, Mode: c.Mode, Tables: tables, Parallelism: c.Parallelism,
		ChunkRows: c.ChunkRows, ChunkBytes: c.ChunkBytes, KeylessAccepted: keylessAccepted, Progress: c.Progress,
		SignalKey: c.SignalKey}
}

// ForgetIfGone drops a snapshot worker's description of table (descs, keyed by table) when
// *err says the table was found missing (snapshot.ErrTableGone): the engine looks for it again
// (snapshot.DefaultTableGoneGrace), and a table dropped and recreated meanwhile may have
// another shape. Workers defer it with the address of their named error result.
func ForgetIfGone[D any](descs map[string]D, table string, err *error) {
	if errors.Is(*err, snapshot.ErrTableGone) {
		delete(descs, table)
	}
}

// errEnded ends a session's other tasks when one returns without an error before the
// session's context ended.
var errEnded = errors.New("a session task ended")

// Session runs a session's stream and the tasks beside it (the snapshot engine, heartbeats)
// under one errgroup: the first to end, with or without an error, ends the others, and
// Session returns once all have. It returns the first error; when ctx ended (shutdown) it
// returns the stream's own result, since the others only report that they were stopped.
func Session(ctx context.Context, stream func(context.Context) error, beside ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	run := func(f func(context.Context) error, res *error) {
		g.Go(func() error {
			err := f(gctx)
			if res != nil {
				*res = err
			}
			if err == nil && gctx.Err() == nil {
				return errEnded
			}
			return err
		})
	}
	var streamErr error
	run(stream, &streamErr)
	for _, f := range beside {
		run(f, nil)
	}
	err := g.Wait()
	switch {
	case errors.Is(err, errEnded):
		return nil // the session ended without a failure
	case ctx.Err() != nil:
		return streamErr
	}
	return err
}

// LostConnection retries a fatal failure that came over a broken connection (the server
// restarting, a network cut): it says nothing about the server, so the next session decides
// on a working connection. ping tests the connection the failure came over; server names the
// server in the message. Other errors are returned as they are.
func LostConnection(err error, ping func() error, server string) error {
	f, ok := fatal.As(err)
	if !ok {
		return err
	}
	if perr := ping(); perr != nil {
		return fmt.Errorf("lost the connection to %s (%w); retrying on a new connection. The error before the connection was lost: %v", server, perr, f.Err)
	}
	return err
}
