package window

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// A job's state holds what its spec made of its input: windows of one size, groups of some
// fields, aggregates in some order. Restored under a changed spec it would be read wrong (an
// aggregate in another's place) or mixed with windows of the new shape (a 5m window and a 10m
// window of one group and start, both emitted). So each changelog partition carries the
// spec's fingerprint (keySpec), written with its first state, and a restore under a different
// one stops the job, naming what changed and how to proceed.

// fingerprint is the part of a spec that shapes its state, field by field (config key ->
// value as text).
// partitions, if not 0, is the internal topics' partition count: it decides which partition
// holds a group's state, so it shapes the state as much as the spec does.
func (s *Spec) fingerprint(partitions int32) map[string]string {
	aggs := make([]string, len(s.Aggs))
	for i, a := range s.Aggs {
		aggs[i] = fmt.Sprintf("%s=%s(%s)", a.Name, a.Fn, a.Field)
	}
	groups := make([]string, len(s.GroupBy))
	for i, g := range s.GroupBy {
		groups[i] = g.String()
	}
	topics := append([]string{}, s.Topics...)
	sort.Strings(topics)
	w := s.Window
	fp := map[string]string{
		"input.topics": strings.Join(topics, ","),
		"input.ops":    s.Ops,
		"time":         s.Time.String(),
		"group_by":     strings.Join(groups, ","),
		"mode":         string(s.Mode),
		"window.type":  string(w.Type),
		"window.grace": w.Grace.String(),
		"aggregates":   strings.Join(aggs, ", "),
	}
	if s.TimeZone != nil && s.TimeZone != time.UTC {
		fp["time_zone"] = s.TimeZone.String()
	}
	if partitions > 0 {
		fp["partitions"] = fmt.Sprint(partitions)
	}
	switch w.Type {
	case Tumbling:
		fp["window.size"] = w.Size.String()
	case Hopping:
		fp["window.size"], fp["window.advance"] = w.Size.String(), w.Advance.String()
	case Session:
		fp["window.gap"] = w.Gap.String()
	case Count:
		fp["window.events"] = fmt.Sprint(w.Events)
	}
	return fp
}

// specRecord is the changelog value of the spec's fingerprint.
func (s *Spec) specRecord(partitions int32) []byte {
	b, _ := json.Marshal(s.fingerprint(partitions)) // sorted keys
	return append([]byte{stateFormat}, b...)
}

// SpecChangedError: the job's state was written under another spec.
type SpecChangedError struct {
	Job     string
	Changes []string // "key: old -> new"
}

func (e *SpecChangedError) Error() string {
	return fmt.Sprintf("window job %s: its spec changed since its state was written (%s), and the old state cannot carry over into the new shape; "+
		"fix: run the changed job under a new name (its state starts empty and it reads its input topics from the start), or undo the change; %s",
		e.Job, strings.Join(e.Changes, "; "), dropStateFix(e.Job))
}

// dropStateFix says how to drop a job's state and progress.
func dropStateFix(job string) string {
	return fmt.Sprintf("to drop the old state instead, stop every instance of the job and delete the topics %s and %s and the consumer group %s, then start it again (it recounts its input from the start)",
		RepartitionTopic(job), ChangelogTopic(job), GroupID(job))
}

// InternalPartitionsFix is the fix for internal topics whose partition counts differ or
// changed. A group's state lives in partition hash(group) mod count: adding partitions
// re-hashes the groups and strands their state, so it is never the fix.
func InternalPartitionsFix(job string) string {
	return fmt.Sprintf("never add partitions to %s or %s: a group's state lives in partition hash(group) mod their count, and a new count strands it; "+
		"run the job under a new name with the partitions you want, or %s", RepartitionTopic(job), ChangelogTopic(job), dropStateFix(job))
}

// checkSpec compares a restored fingerprint with the processor's spec.
func (p *Processor) checkSpec(value []byte) error {
	if len(value) == 0 || value[0] != stateFormat {
		return errNewerState
	}
	var old map[string]string
	if err := json.Unmarshal(value[1:], &old); err != nil {
		return fmt.Errorf("changelog spec record: %w", errCorrupt)
	}
	cur := p.spec.fingerprint(p.partitions)
	if p.partitions == 0 || old["partitions"] == "" { // unknown on either side
		delete(old, "partitions")
		delete(cur, "partitions")
	}
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	var changes []string
	for k := range keys {
		if old[k] != cur[k] {
			changes = append(changes, fmt.Sprintf("%s: %s -> %s", k, orNone(old[k]), orNone(cur[k])))
		}
	}
	if len(changes) == 0 {
		p.specSaved = true
		p.bytes += 1 + len(value) - p.specSize
		p.specSize = 1 + len(value)
		return nil
	}
	sort.Strings(changes)
	return &SpecChangedError{Job: p.spec.Name, Changes: changes}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
