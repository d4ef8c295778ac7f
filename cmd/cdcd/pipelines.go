package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/diagnostics"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/cdcd-dev/cdcd/publish"
	"github.com/cdcd-dev/cdcd/shape"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/cdcd-dev/cdcd/source"
	"github.com/cdcd-dev/cdcd/source/postgres"
	"github.com/twmb/franz-go/pkg/sr"
)

// pipelineRunner is one configured pipeline: its supervisor, and the watchers that live as
// long as the process (also after the pipeline failed: slot retention matters most then).
type pipelineRunner struct {
	name string
	// run supervises the pipeline until ctx ends (nil) or a fatal error stops it.
	run func(context.Context) error
	// watch are run until ctx ends.
	watch []func(context.Context)
}

// newPipeline builds the runner of one configured pipeline.
func newPipeline(cfg *config.Config, p *config.Pipeline, d deps) (*pipelineRunner, error) {
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return nil, err
	}
	sinkDrain, sourceDrain := pipeline.DrainTimes(cfg.ShutdownTimeout.D)
	var src pipeline.Source
	var watch []func(context.Context)
	switch {
	case p.Source.Postgres != nil:
		pg := p.Source.Postgres
		src = postgres.New(postgres.Config{
			Pipeline: p.Name, DSN: pg.DSN, Slot: pg.Slot, Publication: pg.Publication, Tables: pg.Tables,
			HeartbeatInterval: pg.HeartbeatInterval.D, StatusInterval: pg.StatusInterval.D,
			TxMemoryLimit: pg.TxMemoryLimit.N, SpillDir: pg.SpillDir, DrainTimeout: sourceDrain, Log: d.log, Metrics: d.metrics,
			Snapshot: snapshotConfig(p, d), Shapes: publishShapes(p),
		})
	case p.Source.MySQL != nil:
		if src, watch, err = newMySQLSource(p, d, sourceDrain); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the %s source is not available in this version of cdcd", p.SourceKind())
	}
	if rules := p.ShapeRules(); len(rules) > 0 {
		src = shape.WrapLogged(src, rules, d.log)
	}
	enc, err := newEncoder(cfg, p, connectorName(p), d.log)
	if err != nil {
		return nil, err
	}
	pl := pipeline.New(pipeline.Config{
		Name: p.Name,
		Sink: publish.Config{KafkaOpts: kopts, OffsetsTopic: cfg.Kafka.OffsetsTopic,
			TransactionTimeout: cfg.Kafka.TransactionTimeout.D, MaxMessageBytes: int(cfg.Kafka.MaxMessageBytes.N),
			TopicPartitions: int32(cfg.Kafka.TopicPartitions), TopicReplication: int16(cfg.Kafka.TopicReplicationFactor),
			ExactlyOnce: p.Delivery == "exactly_once", Tombstones: p.TombstonesEnabled(),
			DeadLetter: p.OnError == "dlq", DLQTopic: p.DLQ.Topic, DLQMaxMessageBytes: int(p.DLQ.MaxMessageBytes.N), Version: version,
			BatchMaxEvents: p.Batch.MaxEvents, BatchMaxBytes: int(p.Batch.MaxBytes.N), BatchInterval: p.Batch.Interval.D,
			DrainTimeout: sinkDrain, Latency: flightTrigger(d.flight, p.Name),
			TransactionTopic: transactionTopic(p)},
		InitialBackoff: p.Retry.InitialBackoff.D, MaxBackoff: p.Retry.MaxBackoff.D, MaxAttempts: p.Retry.MaxAttempts,
		Log: d.log, Metrics: d.metrics, Health: d.health,
	}, src, enc)
	r := &pipelineRunner{name: p.Name, run: pl.Run, watch: watch}
	if pg := p.Source.Postgres; pg != nil {
		mon := postgres.MonitorConfig{Pipeline: p.Name, DSN: pg.DSN, Slot: pg.Slot, Tables: pg.Tables,
			Interval: pg.SlotStatsInterval.D, StallAfter: p.StallAfter.D, Published: pl.Published,
			Metrics: d.metrics, Health: d.health, Log: d.log}
		r.watch = append(r.watch, func(ctx context.Context) { postgres.Monitor(ctx, mon) })
	}
	return r, nil
}

// transactionTopic is the pipeline's transaction metadata topic ("" when off).
func transactionTopic(p *config.Pipeline) string {
	if !p.TransactionMetadata.Enabled {
		return ""
	}
	return p.TransactionMetadata.Topic
}

// flightTrigger hands each committed batch's worst end-to-end latency to the flight recorder
// (nil when it is off).
func flightTrigger(fr *diagnostics.FlightRecorder, pipeline string) func(time.Duration) {
	if fr == nil {
		return nil
	}
	return func(d time.Duration) { fr.Observe(pipeline, d) }
}

// snapshotConfig is a pipeline's snapshot options, the same for every source.
func snapshotConfig(p *config.Pipeline, d deps) source.SnapshotConfig {
	return source.SnapshotConfig{Mode: snapshot.Mode(p.Snapshot.Mode), Parallelism: p.Snapshot.Parallelism,
		ChunkRows: p.Snapshot.ChunkSize, ChunkBytes: p.Snapshot.ChunkMaxBytes.N, Progress: snapshotProgress(d, p.Name),
		KeylessAccepted: p.Snapshot.AcceptInexactKeyless, SignalKey: p.SignalKey()}
}

// snapshotProgress reports a pipeline's snapshot progress on /readyz.
func snapshotProgress(d deps, pipeline string) func([]snapshot.Progress) {
	return func(ps []snapshot.Progress) {
		if d.health == nil {
			return
		}
		tables := make([]health.SnapshotTable, len(ps))
		for i, p := range ps {
			tables[i] = health.SnapshotTable{Table: p.Table, Reason: p.Reason, Where: p.Where, Rows: p.Rows,
				RowsEstimated: p.Estimated, Chunks: p.Chunks, ChunksPending: p.Pending, Started: p.Started}
		}
		d.health.SetSnapshot(pipeline, tables)
	}
}

// newEncoder builds the encoder of a pipeline, with its schema registry client.
func newEncoder(cfg *config.Config, p *config.Pipeline, connector string, log *slog.Logger) (*encode.Encoder, error) {
	srOpts := []sr.ClientOpt{sr.URLs(cfg.SchemaRegistry.URL), sr.HTTPClient(&http.Client{Timeout: cfg.SchemaRegistry.Timeout.D}),
		sr.UserAgent("cdcd/" + version)}
	if cfg.SchemaRegistry.Username != "" {
		srOpts = append(srOpts, sr.BasicAuth(cfg.SchemaRegistry.Username, cfg.SchemaRegistry.Password))
	}
	srcl, err := sr.NewClient(srOpts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return encode.New(encode.Config{Pipeline: p.Name, Connector: connector, Version: version, TopicPrefix: p.Topics.Prefix,
		TopicOverrides: p.Topics.Overrides, Compatibility: cfg.SchemaRegistry.Compatibility, Logger: log,
		TimePrecision: p.TimePrecision, DecimalHandling: p.DecimalHandling}, encode.NewSRRegistry(srcl))
}

// connectorName is the envelope's source.connector for a pipeline's source.
func connectorName(p *config.Pipeline) string {
	if p.Source.MySQL != nil {
		return "mysql"
	}
	return "postgresql"
}
