package main

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/snapshot"
)

// checkSnapshotRequest refuses, before anything is written, a request the pipeline would
// ignore: no key to sign it with, or a condition outside the grammar.
func checkSnapshotRequest(p *config.Pipeline, where string) error {
	if p.SignalKey() == nil {
		return fmt.Errorf("pipeline %s: %w; fix: set snapshot.signal_key in its configuration (at least %d characters, e.g. ${file:/run/secrets/cdcd_signal_key}) and restart it, or give its source a password",
			p.Name, snapshot.ErrNoSignalKey, config.MinSignalKeyLen)
	}
	if where != "" {
		if _, err := snapshot.ParseCondition(where); err != nil {
			return &exitError{2, fmt.Errorf("--where %q: %w", where, err)}
		}
	}
	return nil
}
