package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/dlq"
)

// dlqReplay re-publishes the dead letters of pipeline name (cdcd dlq replay).
func dlqReplay(ctx context.Context, path, name string, from int64, class string, stdout, stderr io.Writer) error {
	if class != "" {
		known := false
		for _, c := range dlq.Classes {
			known = known || c == class
		}
		if !known {
			return &exitError{2, fmt.Errorf("unknown class %q; use one of %v", class, dlq.Classes)}
		}
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return &exitError{1, err}
	}
	var p *config.Pipeline
	for i := range cfg.Pipelines {
		if cfg.Pipelines[i].Name == name {
			p = &cfg.Pipelines[i]
		}
	}
	if p == nil {
		return fmt.Errorf("no pipeline named %q in %s", name, path)
	}
	log := newLogger(cfg.Log, stderr)
	enc, err := newEncoder(cfg, p, connectorName(p), log)
	if err != nil {
		return err
	}
	opts, err := kafkaOpts(cfg)
	if err != nil {
		return err
	}
	st, err := dlq.Replay(ctx, dlq.ReplayConfig{Pipeline: p.Name, KafkaOpts: opts, DLQTopic: p.DLQ.Topic, OffsetsTopic: cfg.Kafka.OffsetsTopic,
		From: from, Class: class, Tombstones: p.TombstonesEnabled(), TransactionTimeout: cfg.Kafka.TransactionTimeout.D, Encoder: enc,
		PayloadSchemas: payloadSchemas(p), Log: log.With("pipeline", p.Name)})
	fmt.Fprintf(stdout, "pipeline %s: replayed %d dead letter(s) from %s; %d already replayed earlier; %d of other classes\n",
		p.Name, st.Replayed, p.DLQ.Topic, st.AlreadyDone, st.Filtered)
	if err != nil {
		return fmt.Errorf("replay stopped (what was replayed before stays replayed; fix the cause and run it again): %w", err)
	}
	return nil
}

// payloadSchemas are the pipeline's outbox payload schemas by qualified table.
func payloadSchemas(p *config.Pipeline) map[string]string {
	out := map[string]string{}
	for t, r := range p.ShapeRules() {
		if r.Outbox != nil {
			out[t] = r.Outbox.PayloadSchema
		}
	}
	return out
}
