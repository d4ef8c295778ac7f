// Package topics checks, before anything connects, that every Kafka topic a configuration
// names has exactly one writer across all of its pipelines and window jobs: each captured
// table, each dead-letter topic in use, the offsets topic, and each window job's output, late,
// dead-letter and internal topics. Topic names are derived exactly as the
// encoder derives them (encode.DefaultTopic, topics.overrides), so what passes here is what
// runs.
package topics

import (
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/window"
)

// Check refuses a configuration in which two writers share a topic (or subject), naming both
// and the fix. cdcd validate, check and run call it.
func Check(cfg *config.Config) error {
	return encode.CheckTopics(append(Uses(cfg), WindowUses(cfg)...))
}

// WindowUses lists the topics cfg's window jobs write: output, late and dead-letter topics,
// and the repartition topic and changelog cdcd keeps for each job.
func WindowUses(cfg *config.Config) []encode.TopicUse {
	var uses []encode.TopicUse
	for _, w := range cfg.Windows {
		fix := fmt.Sprintf("give window job %s output, late and dead-letter topics of its own", w.Name)
		internal := "rename the other writer's topic: cdcd-window.* is cdcd's"
		uses = append(uses,
			encode.TopicUse{Topic: w.Output.Topic, What: fmt.Sprintf("the output of window job %s", w.Name), Fix: fix},
			encode.TopicUse{Topic: w.Late.Topic, What: fmt.Sprintf("the late topic of window job %s", w.Name), Fix: fix},
			encode.TopicUse{Topic: window.RepartitionTopic(w.Name), What: fmt.Sprintf("the repartition topic of window job %s", w.Name), Fix: internal},
			encode.TopicUse{Topic: window.ChangelogTopic(w.Name), What: fmt.Sprintf("the changelog of window job %s", w.Name), Fix: internal})
		if w.DLQ.Topic != "" {
			uses = append(uses, encode.TopicUse{Topic: w.DLQ.Topic, What: fmt.Sprintf("the dead-letter topic of window job %s", w.Name), Fix: fix})
		}
	}
	return uses
}

// Uses lists every topic cfg's pipelines (and the offsets topic) write, and who writes it.
func Uses(cfg *config.Config) []encode.TopicUse {
	uses := []encode.TopicUse{{Topic: cfg.Kafka.OffsetsTopic, What: "the offsets topic (kafka.offsets_topic)",
		Fix: "set kafka.offsets_topic to a topic no pipeline writes"}}
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		for _, t := range p.Tables() {
			topic, ok := TableTopic(p, t)
			if !ok {
				continue // config validation reports it
			}
			uses = append(uses, encode.TopicUse{Topic: topic,
				What: fmt.Sprintf("table %s of pipeline %s", t, p.Name),
				Fix:  fmt.Sprintf("add %s: <a topic of its own> under topics.overrides of pipeline %s", yamlKey(t), p.Name)})
		}
		if tm := p.TransactionMetadata; tm.Enabled {
			uses = append(uses, encode.TopicUse{Topic: tm.Topic,
				What: fmt.Sprintf("the transaction metadata topic of pipeline %s", p.Name),
				Fix:  fmt.Sprintf("set transaction_metadata.topic of pipeline %s to a topic of its own", p.Name)})
		}
		if p.OnError == "dlq" {
			uses = append(uses, encode.TopicUse{Topic: p.DLQ.Topic,
				What: fmt.Sprintf("the dead-letter topic of pipeline %s", p.Name),
				Fix:  fmt.Sprintf("set dlq.topic of pipeline %s to a topic of its own", p.Name)})
		}
	}
	return uses
}

// TableTopic is the change topic pipeline p writes table t (a name in p's tables) to, as the
// encoder names it; false if t is no valid table name.
func TableTopic(p *config.Pipeline, t string) (string, bool) {
	schema, name, err := change.ParseTableName(t)
	if err != nil {
		return "", false
	}
	return encode.TableTopic(p.Topics.Prefix, encode.OverrideKeys(p.Topics.Overrides), schema, name), true
}

// yamlKey writes a configured table name as a YAML mapping key.
func yamlKey(t string) string {
	if strings.ContainsAny(t, "\"' :#{}[],&*!|>%@`") {
		return "'" + strings.ReplaceAll(t, "'", "''") + "'"
	}
	return t
}
