// Package fatal is the one marker for failures that retrying cannot fix: a prerequisite the
// server lacks, a position that is gone, a job whose state does not fit. Supervisors (the
// pipeline's and the window jobs') stop on them with the error's fix instead of backing off
// and retrying; every other failure is retried. It imports nothing of cdcd's, so every layer
// can mark its failures with it.
package fatal

import "errors"

// Error wraps a failure retrying cannot fix.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Fatal tells a supervisor not to retry (supervisors declare the Fatal() interface they ask
// for, so other packages' error types can say the same).
func (e *Error) Fatal() bool { return true }

// As reports whether err carries an *Error, and returns it.
func As(err error) (*Error, bool) {
	var f *Error
	ok := errors.As(err, &f)
	return f, ok
}
