package encode

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// DefaultTopic is the topic of table schema.name when it has no override:
// <prefix>.<schema>.<table>, or <schema>.<table> without a prefix. Each part is sanitized
// (see the package doc), so it is always a valid topic name unless it is too long.
func DefaultTopic(prefix, schema, name string) string {
	topic := topicPart(schema) + "." + topicPart(name)
	if prefix != "" {
		topic = prefix + "." + topic
	}
	return topic
}

// TableTopic is the topic of table schema.name under a pipeline's topic prefix and
// topics.overrides keyed by OverrideKey: its override, else DefaultTopic. Encoder.Topic and the
// configuration checks (package topics) both name a table's topic with it.
func TableTopic(prefix string, overrides map[string]string, schema, name string) string {
	if topic, ok := overrides[schema+"."+name]; ok {
		return topic
	}
	return DefaultTopic(prefix, schema, name)
}

// OverrideKeys re-keys configured topics.overrides (table names as written, quoted or not) by
// OverrideKey.
func OverrideKeys(configured map[string]string) map[string]string {
	out := make(map[string]string, len(configured))
	for table, topic := range configured {
		out[OverrideKey(table)] = topic
	}
	return out
}

// OverrideKey turns a configured table name ("schema.table", possibly with quoted parts) into
// the key Encoder.Topic looks overrides up by: change.Table's QualifiedName.
func OverrideKey(table string) string {
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		return table
	}
	return schema + "." + name
}

// TopicUse is one writer of a Kafka topic that a configuration names.
type TopicUse struct {
	Topic string
	// What writes it, as the message names it: `table public.orders of pipeline shop`.
	What string
	// Fix says how to give this writer a topic of its own.
	Fix string
}

// CheckTopics refuses a configuration in which two writers share a topic, or whose topics
// Kafka cannot hold side by side. Distinct tables must never share a topic: a delete in one
// writes a tombstone that erases the other's row with the same key from the compacted topic,
// and their subjects (TopicNameStrategy: <topic>-key, <topic>-value) would hold unrelated
// schemas. Topics whose names differ only in '.' and '_' collide in Kafka (their metric names
// are the same, and brokers refuse to create the second). The error names every collision.
func CheckTopics(uses []TopicUse) error {
	byTopic := map[string][]TopicUse{}
	byMetric := map[string][]string{} // '.'->'_' form -> distinct topics
	for _, u := range uses {
		if len(byTopic[u.Topic]) == 0 {
			m := strings.ReplaceAll(u.Topic, ".", "_")
			byMetric[m] = append(byMetric[m], u.Topic)
		}
		byTopic[u.Topic] = append(byTopic[u.Topic], u)
	}
	var problems []string
	for topic, us := range byTopic {
		if len(us) < 2 {
			continue
		}
		whats := make([]string, len(us))
		fixes := make([]string, 0, len(us))
		for i, u := range us {
			whats[i] = u.What
			fixes = appendOnce(fixes, u.Fix)
		}
		problems = append(problems, fmt.Sprintf(
			"topic %s is written by %s; distinct writers never share a topic: a delete in one would write a tombstone that erases the other's row with the same key, and subjects %s-key and %s-value would mix unrelated schemas (fix: %s)",
			topic, joinAnd(whats), topic, topic, strings.Join(fixes, ", or ")))
	}
	for _, topics := range byMetric {
		if len(topics) < 2 {
			continue
		}
		sort.Strings(topics)
		whats := make([]string, 0, len(topics))
		fixes := []string{}
		for _, t := range topics {
			u := byTopic[t][0]
			whats = append(whats, fmt.Sprintf("%s (%s)", t, u.What))
			fixes = appendOnce(fixes, u.Fix)
		}
		problems = append(problems, fmt.Sprintf(
			"topics %s differ only in '.' and '_', which Kafka treats as the same name (the broker refuses to create the second) (fix: %s)",
			joinAnd(whats), strings.Join(fixes, ", or ")))
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	if len(problems) == 1 {
		return fmt.Errorf("topic collision: %s", problems[0])
	}
	return fmt.Errorf("%d topic collisions:\n  %s", len(problems), strings.Join(problems, "\n  "))
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	case 2:
		return s[0] + " and " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
