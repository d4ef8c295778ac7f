package snapshot

import "github.com/cdcd-dev/cdcd/checks"

// KeylessCheck is what `cdcd check` says of a captured table without a usable key, which the
// snapshot refuses unless snapshot.accept_inexact_keyless lists it (KeylessError). The sources
// find such tables and word their key and fix; the verdict is the same for both.
type KeylessCheck struct {
	Table string // as configured
	// NoKey says what the table lacks ("has no key", "has no primary key").
	NoKey string
	// Refused is the failure's detail when the pipeline snapshots the table at start.
	Refused string
	// AddKey is the fix of an accepted table; Fix that of a refused one.
	AddKey, Fix string
	// Accepted: accept_inexact_keyless lists it. Snapshots: the pipeline snapshots at start.
	Accepted, Snapshots bool
}

// Report adds the check's line: a warning for an accepted table or one only an on-demand
// request would snapshot, a failure otherwise.
func (k KeylessCheck) Report(rep *checks.Scoped) {
	item := "snapshot of " + k.Table
	switch {
	case k.Accepted:
		rep.Warn(item, k.NoKey+": its snapshot is accepted as inexact (snapshot.accept_inexact_keyless): a row written during the snapshot can be published stale, again after its delete, twice or not at all", k.AddKey)
	case !k.Snapshots:
		rep.Warn(item, k.NoKey+": an on-demand snapshot of it (cdcd snapshot) is refused", k.Fix)
	default:
		rep.Fail(item, k.Refused, k.Fix)
	}
}

// KeylessUnknown reports that a table's key could not be read, so whether its snapshot will be
// refused is not known.
func KeylessUnknown(rep *checks.Scoped, table string, err error) {
	rep.Warn("snapshot of "+table, "could not read whether it has a key: "+err.Error(),
		"give cdcd's user read access to the catalog (PostgreSQL: pg_class, pg_index; MySQL: information_schema) and run cdcd check again")
}
