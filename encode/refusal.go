package encode

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
)

// maxVersionsCompared bounds how many earlier versions a transitive refusal is compared with.
const maxVersionsCompared = 20

// explainRefusal turns a registry's 409 into cdcd's words: which column changed how, which
// rule of the subject's level that breaks, and what to do, ending with the registry's text.
// What cannot be read from the registry (its level, the registered schema) is left out, never
// guessed.
func (r *SRRegistry) explainRefusal(ctx context.Context, subject, schema string, re *sr.ResponseError) error {
	levelName := "its compatibility level"
	var level sr.CompatibilityLevel
	known := false
	if l, ok, err := r.subjectLevel(ctx, subject, true); err == nil && ok {
		level, known = l, true
		levelName = "compatibility level " + l.String()
	}
	var b strings.Builder
	b.WriteString("the schema registry refused the new schema: ")
	breaking, other, against, encodingOnly, diffErr := r.refusalChanges(ctx, subject, schema, level, known)
	switch {
	case diffErr != nil:
		fmt.Fprintf(&b, "it is not compatible under the subject's %s (cdcd could not compare it with the registered schema: %v)", levelName, diffErr)
	case len(breaking) > 0:
		b.WriteString(strings.Join(breaking, "; "))
		fmt.Fprintf(&b, ", compared with %s. The subject's %s requires %s", against, levelName, levelRule(level))
	case len(other) > 0:
		fmt.Fprintf(&b, "compared with %s, %s; by Avro's rules none of that breaks %s, so the registry checks more than Avro does (for example logical types)", against, strings.Join(other, "; "), levelName)
	default:
		fmt.Fprintf(&b, "cdcd finds no difference from %s that breaks the subject's %s", against, levelName)
	}
	restore := "the previous level"
	if known {
		restore = level.String()
	}
	if encodingOnly {
		b.WriteString(". The database type of a column that changed is the same as before: only how cdcd writes it changed, as when a pipeline's time_precision or decimal_handling is changed (docs/record-format.md#type-modes); set it back, or write the pipeline to new topics (a new topics.prefix)")
	}
	fmt.Fprintf(&b, ". What to do: make the table change compatible (add columns as nullable or with a default; never drop a NOT NULL column or change a column's type in place: add a new column, backfill it, drop the old one later). If consumers are ready for the incompatible change, either publish the table to a new topic with topics.overrides (its subjects start a new history), or relax the subject for this one change: %s, then restart cdcd (with on_error: dlq the table is retried within a minute; replay the dead-lettered rows with cdcd dlq replay), and restore the level once the new schema is registered: %s",
		r.relaxCommand(subject), r.setLevelCommand(subject, restore))
	fmt.Fprintf(&b, ". The registry said (HTTP %d, error code %d): %s", re.StatusCode, re.ErrorCode, registryMessage(re))
	return errors.New(b.String())
}

// refusalChanges compares schema with the subject's latest version, and, under a transitive
// level when that shows nothing breaking, with earlier versions. breaking holds the changes
// that break the level, each with the reason; other the rest.
func (r *SRRegistry) refusalChanges(ctx context.Context, subject, schema string, level sr.CompatibilityLevel, known bool) (breaking, other []string, against string, encodingOnly bool, err error) {
	latest, err := r.cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return nil, nil, "", false, fmt.Errorf("reading the latest version: %w", err)
	}
	against = fmt.Sprintf("the registered version %d", latest.Version)
	breaking, other, encodingOnly, err = classifyChanges(latest.Schema.Schema, schema, level, known)
	if err != nil || len(breaking) > 0 || !known || levelChecks[level]&(checkBackwardTransitive|checkForwardTransitive) == 0 {
		return breaking, other, against, encodingOnly, err
	}
	versions, verr := r.cl.SubjectVersions(ctx, subject)
	if verr != nil {
		return breaking, other, against, false, nil
	}
	for i, n := len(versions)-1, 0; i >= 0 && n < maxVersionsCompared; i-- {
		if versions[i] == latest.Version {
			continue
		}
		n++
		s, err := r.cl.SchemaByVersion(ctx, subject, versions[i])
		if err != nil {
			break
		}
		if b, _, enc, err := classifyChanges(s.Schema.Schema, schema, level, known); err == nil && len(b) > 0 {
			return b, other, fmt.Sprintf("the registered version %d (%s checks every earlier version)", versions[i], level), enc, nil
		}
	}
	return breaking, other, against, false, nil
}

// classifyChanges diffs old and new and describes each change with the rule it breaks.
// encodingOnly reports a breaking change of a column whose database type did not change.
func classifyChanges(old, new string, level sr.CompatibilityLevel, known bool) (breaking, other []string, encodingOnly bool, err error) {
	changes, err := diffSchemas(old, new)
	if err != nil {
		return nil, nil, false, err
	}
	checks := levelChecks[level]
	for _, c := range changes {
		var why []string
		if c.breaksBackward && (!known || checks&checkBackward != 0) {
			why = append(why, "consumers on the new schema could not read the records already written")
		}
		if c.breaksForward && (!known || checks&checkForward != 0) {
			why = append(why, "consumers still on the previous schema could not read the new records")
		}
		if len(why) == 0 {
			other = append(other, c.what)
			continue
		}
		breaking = append(breaking, c.what+" ("+strings.Join(why, ", and ")+")")
		encodingOnly = encodingOnly || c.encodingOnly
	}
	return breaking, other, encodingOnly, nil
}

// levelRule states what a compatibility level requires.
func levelRule(l sr.CompatibilityLevel) string {
	const back = "that consumers using the new schema can read every record written with the previous"
	const fwd = "that consumers still using the previous schema can read records written with the new one"
	switch l {
	case sr.CompatBackward:
		return back + " one"
	case sr.CompatBackwardTransitive:
		return back + " and every earlier version"
	case sr.CompatForward:
		return fwd
	case sr.CompatForwardTransitive:
		return fwd + ", for every earlier version"
	case sr.CompatFull:
		return "both " + back + " one and " + fwd
	case sr.CompatFullTransitive:
		return "both " + back + " and every earlier version, and " + fwd + ", for every earlier version"
	case sr.CompatNone:
		return "no check at all, yet the registry refused: it may apply a global or group rule of its own"
	}
	return "compatibility with the registered versions"
}
