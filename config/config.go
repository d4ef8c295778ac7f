// Package config is cdcd's configuration: the YAML shape users write, decoded strictly, with
// ${VAR} and ${file:PATH} expansion, defaults applied in one place (applyDefaults), and a
// validation that reports every problem at once, each with the key, its line and the fix.
//
// YAML stays at this edge: the rest of cdcd receives the plain structs below, already
// defaulted and validated.
package config

import (
	"fmt"
	"go.yaml.in/yaml/v3"
	"slices"
	"strings"
	"time"
)

// Config is the whole file.
type Config struct {
	Kafka          Kafka          `yaml:"kafka"`
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	HTTP           HTTP           `yaml:"http"`
	Log            Log            `yaml:"log"`
	// ShutdownTimeout bounds the drain on SIGTERM/SIGINT (default 10s).
	ShutdownTimeout Duration   `yaml:"shutdown_timeout"`
	Pipelines       []Pipeline `yaml:"pipelines"`
	Windows         []Window   `yaml:"windows"`
	// Diagnostics are tools for finding a problem in cdcd itself; all off by default.
	Diagnostics Diagnostics `yaml:"diagnostics"`
	// Fleet spreads the pipelines over every instance that runs this configuration.
	Fleet Fleet `yaml:"fleet"`

	// Set by Parse (unexported, so never decoded from the file).
	secrets  []string  // every secret value the file holds; see Secrets
	warnings []Problem // see Warnings
}

// Secrets returns every secret value the configuration holds: the passwords of connection
// strings and of the registry URL, the registry and SASL passwords, and every value read from
// ${file:...}. cdcd masks them in everything it prints (package redact).
func (c *Config) Secrets() []string { return append([]string(nil), c.secrets...) }

// Warnings returns what is valid but unwise in the file (a password written inline, say),
// each with its key, line and fix. They do not stop cdcd.
func (c *Config) Warnings() []Problem { return append([]Problem(nil), c.warnings...) }

// Kafka is the cluster every pipeline publishes to.
type Kafka struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	// OffsetsTopic is the compacted topic holding each pipeline's committed position.
	OffsetsTopic string `yaml:"offsets_topic"`
	// TransactionTimeout is the broker-side transaction.timeout.ms for transactional producers.
	TransactionTimeout Duration `yaml:"transaction_timeout"`
	// MaxMessageBytes is the producer's record size limit (default 1 MiB, as Kafka's).
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// Compression is the codec of the record batches cdcd produces: none, gzip, snappy, lz4
	// or zstd (default snappy).
	Compression string `yaml:"compression"`
	// TopicPartitions and TopicReplicationFactor apply to topics cdcd creates.
	TopicPartitions        int   `yaml:"topic_partitions"`
	TopicReplicationFactor int   `yaml:"topic_replication_factor"`
	SASL                   *SASL `yaml:"sasl"`
	TLS                    *TLS  `yaml:"tls"`
}

// SASL authenticates to Kafka.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// TLS configures TLS to Kafka.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SchemaRegistry is a Confluent-compatible registry.
type SchemaRegistry struct {
	URL string `yaml:"url"`
	// Compatibility is set on every subject cdcd creates (default BACKWARD).
	Compatibility string   `yaml:"compatibility"`
	Username      string   `yaml:"username"`
	Password      string   `yaml:"password"`
	Timeout       Duration `yaml:"timeout"`
}

// HTTP is the operations endpoint.
type HTTP struct {
	Listen string `yaml:"listen"`
	// FailLivenessAfter: once a pipeline has been failed (stopped on an error retrying cannot
	// fix) this long, /healthz answers 503 so a container platform restarts cdcd (default 5m;
	// 0s: never).
	FailLivenessAfter Duration `yaml:"fail_liveness_after"`
}

// Fleet mode: every instance with the same configuration joins one Kafka consumer group and
// runs only the pipelines the group assigns to it (window jobs keep their own groups).
type Fleet struct {
	Enabled bool `yaml:"enabled"`
	// Group is the consumer group the instances join (required when enabled).
	Group string `yaml:"group"`
	// Topic is the coordination topic: one partition per pipeline (default _cdcd_fleet.<group>).
	Topic string `yaml:"topic"`
	// Instance names this instance in the fleet view (default: the host name, a pod's name).
	Instance string `yaml:"instance"`
	// SessionTimeout: an instance that stops heartbeating this long (SIGKILL, a lost host) is
	// dropped from the group and its pipelines move (default 10s; the brokers allow at least
	// group.min.session.timeout.ms, 6s by default).
	SessionTimeout Duration `yaml:"session_timeout"`
	// HeartbeatInterval (default a fifth of session_timeout).
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
}

// Diagnostics are tools for finding a problem in cdcd itself.
type Diagnostics struct {
	// FlightRecorder, when set, keeps the last seconds of Go's execution trace in memory and
	// writes them to Dir when a change's end-to-end latency passes Threshold.
	FlightRecorder *FlightRecorder `yaml:"flight_recorder"`
}

// FlightRecorder configures the execution-trace flight recorder (package diagnostics).
type FlightRecorder struct {
	Threshold Duration `yaml:"threshold"` // required
	Dir       string   `yaml:"dir"`       // default: <temp dir>/cdcd-flight
	Window    Duration `yaml:"window"`    // default 10s
	MaxBytes  ByteSize `yaml:"max_bytes"` // default 32MiB
	Cooldown  Duration `yaml:"cooldown"`  // default 1m
	MaxFiles  int      `yaml:"max_files"` // default 10
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
}

// Pipeline is one source database streamed into Kafka.
type Pipeline struct {
	Name     string   `yaml:"name"`
	Source   Source   `yaml:"source"`
	Snapshot Snapshot `yaml:"snapshot"`
	Topics   Topics   `yaml:"topics"`
	Delivery string   `yaml:"delivery"`
	OnError  string   `yaml:"on_error"`
	DLQ      DLQ      `yaml:"dlq"`
	Batch    Batch    `yaml:"batch"`
	// Tombstones: a delete is followed by a null-valued record with the same key (default true).
	Tombstones *bool `yaml:"tombstones"`
	// Retry bounds the backoff of retriable failures.
	Retry Retry `yaml:"retry"`
	// StallAfter: a pipeline that delivers nothing for this long while the server shows work
	// for it (rows of its tables changed, or WAL grew past its position) is unready and
	// cdcd_pipeline_stalled is 1 (default 5m).
	StallAfter Duration `yaml:"stall_after"`
	// Shape maps a captured table (as written in tables) to what of it leaves the database
	// (README "Shaping and privacy"): the same on the stream, in snapshots and dead letters.
	Shape map[string]TableShape `yaml:"shape"`
	// MaskKey is the HMAC-SHA-256 key of shape's hash masks (at least 16 characters, e.g.
	// ${file:/run/secrets/cdcd_mask_key}).
	MaskKey string `yaml:"mask_key"`
	// Outbox maps a captured table (as written in tables) to its outbox event routing: its
	// inserts are published as events (README "Shaping and privacy").
	Outbox map[string]TableOutbox `yaml:"outbox"`
	// TransactionMetadata: a BEGIN and an END record of every source transaction on a topic of
	// their own (Debezium's provide.transaction.metadata); off by default.
	TransactionMetadata TransactionMetadata `yaml:"transaction_metadata"`
	// TimePrecision: how dates and times are written (Debezium's time.precision.mode):
	// avro (default: Avro logical types), adaptive, adaptive_time_microseconds or connect.
	TimePrecision string `yaml:"time_precision"`
	// DecimalHandling: how decimals are written (Debezium's decimal.handling.mode): avro
	// (default), precise, double or string.
	DecimalHandling string `yaml:"decimal_handling"`
}

// TransactionMetadata configures transaction metadata records. In YAML it is either a
// boolean (transaction_metadata: true) or a mapping with enabled and topic.
type TransactionMetadata struct {
	Enabled bool   `yaml:"enabled"`
	Topic   string `yaml:"topic"` // default <prefix>.transaction
}

// UnmarshalYAML accepts a boolean or the mapping.
func (m *TransactionMetadata) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&m.Enabled)
	}
	type plain TransactionMetadata
	return n.Decode((*plain)(m))
}

// TableShape is one table's shaping.
type TableShape struct {
	// Columns keeps only Include, or all but Exclude (one of the two).
	Columns ColumnSelection `yaml:"columns"`
	// Mask rewrites kept columns: column -> hash | redact | truncate(n).
	Mask map[string]string `yaml:"mask"`
	// HashKey allows hash on key columns (the record key becomes the keyed hash).
	HashKey bool `yaml:"hash_key"`
	// Key are the columns of the record key, instead of the table's primary key or replica
	// identity (a table without one, or keyed otherwise).
	Key []string `yaml:"key"`
	// Filter publishes only the rows matching a condition (columns compared with literals,
	// IN, BETWEEN, LIKE, IS NULL, AND/OR/NOT), with PostgreSQL's semantics for updates that
	// move a row into or out of it.
	Filter string `yaml:"filter"`
}

// ColumnSelection lists columns to include or to exclude.
type ColumnSelection struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Keeps reports whether the selection publishes column col.
func (c ColumnSelection) Keeps(col string) bool {
	return !slices.Contains(c.Exclude, col) && (len(c.Include) == 0 || slices.Contains(c.Include, col))
}

// Snapshot configures how a pipeline reads existing rows. In YAML it is either the mode alone
// (snapshot: initial) or a mapping with the mode and the tuning knobs.
type Snapshot struct {
	// Mode: initial (every table at the pipeline's first start; the default), when_needed
	// (initial, plus each table added to tables: later), never.
	Mode string `yaml:"mode"`
	// Parallelism is how many chunks are read at once (default 2).
	Parallelism int `yaml:"parallelism"`
	// ChunkSize is how many rows a chunk plans to hold (default 8192).
	ChunkSize int `yaml:"chunk_size"`
	// ChunkMaxBytes bounds the row data of one chunk (default 32MiB): a chunk of huge rows
	// ends early and the rest of its key range becomes the next chunk.
	ChunkMaxBytes ByteSize `yaml:"chunk_max_bytes"`
	// AcceptInexactKeyless lists tables without a key (no primary key or replica identity
	// index) whose snapshot may be inexact under writes (README "Snapshots"); the snapshot of
	// any other keyless table is refused.
	AcceptInexactKeyless []string `yaml:"accept_inexact_keyless"`
	// SignalKey signs on-demand snapshot requests (`cdcd snapshot`): the pipeline takes only
	// requests signed with it. Default: derived from the source's password; a source without
	// one needs it set (e.g. ${file:/run/secrets/cdcd_signal_key}) for on-demand snapshots.
	SignalKey string `yaml:"signal_key"`
}

// UnmarshalYAML accepts the mode alone or the mapping.
func (s *Snapshot) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Mode = n.Value
		return nil
	}
	type plain Snapshot
	return n.Decode((*plain)(s))
}

// Source names exactly one database.
type Source struct {
	Postgres *Postgres `yaml:"postgres"`
	MySQL    *MySQL    `yaml:"mysql"`
}

// Postgres is a logical-replication source.
type Postgres struct {
	DSN         string   `yaml:"dsn"`
	Slot        string   `yaml:"slot"`
	Publication string   `yaml:"publication"`
	Tables      []string `yaml:"tables"`
	// HeartbeatInterval: how often a transactional logical message is written so the slot
	// advances while captured tables are idle (default 10s; 0s disables).
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// StatusInterval: how often standby status is sent to the server (default 5s).
	StatusInterval Duration `yaml:"status_interval"`
	// TxMemoryLimit bounds memory used to buffer one in-progress transaction; beyond it the
	// transaction is spilled to SpillDir (default 16MiB).
	TxMemoryLimit ByteSize `yaml:"tx_memory_limit"`
	SpillDir      string   `yaml:"spill_dir"`
	// SlotStatsInterval: how often slot statistics are polled for metrics (default 15s).
	SlotStatsInterval Duration `yaml:"slot_stats_interval"`
}

// MySQL is a binlog source.
type MySQL struct {
	DSN      string   `yaml:"dsn"`
	ServerID uint32   `yaml:"server_id"`
	Tables   []string `yaml:"tables"`
	// Flavor is mysql or mariadb (default: detected).
	Flavor string `yaml:"flavor"`
	// HeartbeatInterval is the period of the server's heartbeat events, and the longest the
	// committed position lags transactions of tables not captured (default 5s).
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// SignalTable is db.table of the table snapshots write their watermarks and requests
	// into (created if missing). Default: cdcd_signal in the first table's database.
	SignalTable string `yaml:"signal_table"`
	// SnapshotConsistency is how a snapshot chunk is placed in the binlog: binlog_snapshot
	// (the binlog position MariaDB reports for a consistent snapshot; MariaDB only),
	// watermarks (a low watermark row written before each chunk; any server), or auto (the
	// default: binlog_snapshot on MariaDB, watermarks on MySQL).
	SnapshotConsistency string `yaml:"snapshot_consistency"`
	// XARecover: check (the default) takes a new pipeline's first position only while XA
	// RECOVER lists no prepared branch, and stops if the user may not run it; skip starts
	// without asking (docs/mysql.md).
	XARecover string `yaml:"xa_recover"`
}

// Topics names the Kafka topics of a pipeline.
type Topics struct {
	// Prefix: topics are <prefix>.<schema>.<table> (default: the pipeline's name).
	Prefix string `yaml:"prefix"`
	// Overrides maps a captured table (schema.table) to a topic of its own.
	Overrides map[string]string `yaml:"overrides"`
}

// DLQ configures the dead-letter topic.
type DLQ struct {
	Topic string `yaml:"topic"` // default <prefix>.dlq
	// MaxMessageBytes is the largest dead letter (the whole change as JSON) and the dead-letter
	// topic's max.message.bytes when cdcd creates it (default 16MiB).
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
}

// Batch bounds a Kafka transaction.
type Batch struct {
	MaxEvents int      `yaml:"max_events"` // default 10000
	MaxBytes  ByteSize `yaml:"max_bytes"`  // default 16MiB
	Interval  Duration `yaml:"interval"`   // default 100ms
}

// Retry bounds backoff for retriable failures.
type Retry struct {
	InitialBackoff Duration `yaml:"initial_backoff"` // default 500ms
	MaxBackoff     Duration `yaml:"max_backoff"`     // default 30s
	// MaxAttempts: 0 retries forever (default).
	MaxAttempts int `yaml:"max_attempts"`
}

// Kind of the pipeline's source: "postgres" or "mysql".
func (p *Pipeline) SourceKind() string {
	switch {
	case p.Source.Postgres != nil:
		return "postgres"
	case p.Source.MySQL != nil:
		return "mysql"
	}
	return ""
}

// TombstonesEnabled reports whether deletes are followed by tombstones.
func (p *Pipeline) TombstonesEnabled() bool { return p.Tombstones == nil || *p.Tombstones }

// Tables captured by the pipeline's source.
func (p *Pipeline) Tables() []string {
	switch {
	case p.Source.Postgres != nil:
		return p.Source.Postgres.Tables
	case p.Source.MySQL != nil:
		return p.Source.MySQL.Tables
	}
	return nil
}

// Duration is a time.Duration written as "10s", "500ms", "1m30s". A value that does not
// parse is kept in Raw and reported by validation with its line, together with every other
// problem, instead of aborting the decode.
type Duration struct {
	D   time.Duration
	Raw string
	Bad bool // not a duration, or negative (then Neg is set too): D is 0
	Neg bool
}

// Dur returns a set Duration.
func Dur(d time.Duration) Duration { return Duration{D: d, Raw: d.String()} }

func (d *Duration) set(raw string) {
	d.Raw = raw
	v, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil || v < 0 {
		d.Bad, d.Neg = true, err == nil
		return
	}
	d.D = v
}

// IsSet reports whether the key was present.
func (d Duration) IsSet() bool { return d.Raw != "" }

// ByteSize is a size written as 1048576, "64KiB", "16MiB", "1GiB", "500kB", "2MB".
type ByteSize struct {
	N   int64
	Raw string
	Bad bool
}

// Bytes returns a set ByteSize.
func Bytes(n int64) ByteSize { return ByteSize{N: n, Raw: fmt.Sprint(n)} }

// IsSet reports whether the key was present.
func (b ByteSize) IsSet() bool { return b.Raw != "" }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}, {"", 1},
}

func (b *ByteSize) set(raw string) {
	b.Raw = raw
	s := strings.TrimSpace(raw)
	for _, u := range sizeUnits {
		if !strings.HasSuffix(s, u.suffix) {
			continue
		}
		num := strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
		var n int64
		if _, err := fmt.Sscan(num, &n); err != nil || n < 0 || fmt.Sprint(n) != num {
			break
		}
		b.N = n * u.mult
		return
	}
	b.Bad = true
}
