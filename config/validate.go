package config

import (
	"errors"
	"fmt"
	"github.com/cdcd-dev/cdcd/diagnostics"
	"github.com/cdcd-dev/cdcd/source/mysql/dsn"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults, in one place. Documented in config.example.yaml.
const (
	DefaultOffsetsTopic      = "_cdcd_offsets"
	DefaultCompatibility     = "BACKWARD"
	DefaultHTTPListen        = "127.0.0.1:9187"
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultStatusInterval    = 5 * time.Second
	DefaultSlotStatsInterval = 15 * time.Second
	DefaultTxMemoryLimit     = 8 << 20
	DefaultBatchMaxEvents    = 10000

	DefaultMySQLHeartbeatInterval = 5 * time.Second

	DefaultSnapshotParallelism   = 2
	DefaultSnapshotChunkSize     = 8192
	DefaultSnapshotChunkMaxBytes = 32 << 20
	DefaultBatchMaxBytes         = 16 << 20
	DefaultBatchInterval         = 100 * time.Millisecond
	DefaultMaxMessageBytes       = 1 << 20
	DefaultDLQMaxMessageBytes    = 16 << 20
	DefaultTransactionTimeout    = 60 * time.Second
	DefaultCompression           = "snappy"
	DefaultRegistryTimeout       = 10 * time.Second
	DefaultInitialBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff            = 30 * time.Second
	DefaultStallAfter            = 5 * time.Minute
	DefaultFleetSessionTimeout   = 10 * time.Second
)

func (c *Config) applyDefaults() {
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = "cdcd"
	}
	if c.Kafka.OffsetsTopic == "" {
		c.Kafka.OffsetsTopic = DefaultOffsetsTopic
	}
	defDur(&c.Kafka.TransactionTimeout, DefaultTransactionTimeout)
	defSize(&c.Kafka.MaxMessageBytes, DefaultMaxMessageBytes)
	if c.Kafka.Compression == "" {
		c.Kafka.Compression = DefaultCompression
	}
	if c.Kafka.TopicPartitions == 0 {
		c.Kafka.TopicPartitions = 1
	}
	if c.Kafka.TopicReplicationFactor == 0 {
		c.Kafka.TopicReplicationFactor = -1 // the broker's default.replication.factor
	}
	if c.SchemaRegistry.Compatibility == "" {
		c.SchemaRegistry.Compatibility = DefaultCompatibility
	}
	c.SchemaRegistry.Compatibility = strings.ToUpper(c.SchemaRegistry.Compatibility)
	defDur(&c.SchemaRegistry.Timeout, DefaultRegistryTimeout)
	defDur(&c.HTTP.FailLivenessAfter, 5*time.Minute)
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	defDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if fr := c.Diagnostics.FlightRecorder; fr != nil {
		if fr.Dir == "" {
			fr.Dir = filepath.Join(os.TempDir(), "cdcd-flight")
		}
		defDur(&fr.Window, diagnostics.DefaultFlightWindow)
		defSize(&fr.MaxBytes, diagnostics.DefaultFlightMaxBytes)
		defDur(&fr.Cooldown, diagnostics.DefaultFlightCooldown)
		if fr.MaxFiles == 0 {
			fr.MaxFiles = diagnostics.DefaultFlightMaxFiles
		}
	}
	if f := &c.Fleet; f.Enabled {
		if f.Topic == "" && f.Group != "" {
			f.Topic = "_cdcd_fleet." + f.Group
		}
		defDur(&f.SessionTimeout, DefaultFleetSessionTimeout)
		defDur(&f.HeartbeatInterval, f.SessionTimeout.D/5)
	}
	for i := range c.Windows {
		c.Windows[i].applyDefaults()
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Snapshot.Mode == "" {
			p.Snapshot.Mode = "initial"
		}
		if p.Snapshot.Parallelism == 0 {
			p.Snapshot.Parallelism = DefaultSnapshotParallelism
		}
		if p.Snapshot.ChunkSize == 0 {
			p.Snapshot.ChunkSize = DefaultSnapshotChunkSize
		}
		defSize(&p.Snapshot.ChunkMaxBytes, DefaultSnapshotChunkMaxBytes)
		if p.Topics.Prefix == "" {
			p.Topics.Prefix = p.Name
		}
		if p.DLQ.Topic == "" {
			p.DLQ.Topic = p.Topics.Prefix + ".dlq"
		}
		if p.TransactionMetadata.Enabled && p.TransactionMetadata.Topic == "" {
			p.TransactionMetadata.Topic = p.Topics.Prefix + ".transaction"
		}
		defSize(&p.DLQ.MaxMessageBytes, DefaultDLQMaxMessageBytes)
		if p.Delivery == "" {
			p.Delivery = "exactly_once"
		}
		if p.OnError == "" {
			p.OnError = "fail"
		}
		if p.Batch.MaxEvents == 0 {
			p.Batch.MaxEvents = DefaultBatchMaxEvents
		}
		defSize(&p.Batch.MaxBytes, DefaultBatchMaxBytes)
		defDur(&p.Batch.Interval, DefaultBatchInterval)
		defDur(&p.Retry.InitialBackoff, DefaultInitialBackoff)
		defDur(&p.Retry.MaxBackoff, DefaultMaxBackoff)
		defDur(&p.StallAfter, DefaultStallAfter)
		if my := p.Source.MySQL; my != nil {
			defDur(&my.HeartbeatInterval, DefaultMySQLHeartbeatInterval)
			if my.SnapshotConsistency == "" {
				my.SnapshotConsistency = "auto"
			}
			if my.XARecover == "" {
				my.XARecover = "check"
			}
		}
		if pg := p.Source.Postgres; pg != nil {
			if pg.Slot == "" {
				pg.Slot = "cdcd_" + identPart(p.Name)
			}
			if pg.Publication == "" {
				pg.Publication = "cdcd_" + identPart(p.Name)
			}
			defDur(&pg.HeartbeatInterval, DefaultHeartbeatInterval)
			defDur(&pg.StatusInterval, DefaultStatusInterval)
			defDur(&pg.SlotStatsInterval, DefaultSlotStatsInterval)
			defSize(&pg.TxMemoryLimit, DefaultTxMemoryLimit)
		}
	}
}

func identPart(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return '_'
	}, s)
}

func defDur(d *Duration, v time.Duration) {
	if !d.IsSet() {
		*d = Dur(v)
	}
}

func defSize(b *ByteSize, v int64) {
	if !b.IsSet() {
		*b = Bytes(v)
	}
}

type problems []Problem

func (ps *problems) add(path, msg, fix string) {
	*ps = append(*ps, Problem{Path: path, Message: msg, Fix: fix})
}

var (
	pipelineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	pgIdentRE      = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	topicRE        = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	compatLevels   = []string{"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"}
)

// Compressions are the values kafka.compression takes.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// validate reports every problem at once. Paths are resolved to lines by the loader.
func (c *Config) validate() []Problem {
	var ps problems
	if len(c.Kafka.Brokers) == 0 {
		ps.add("kafka.brokers", "no Kafka brokers are listed", `list at least one, e.g. brokers: ["127.0.0.1:19092"]`)
	}
	for i, b := range c.Kafka.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			ps.add(fmt.Sprintf("kafka.brokers[%d]", i), fmt.Sprintf("%s is not host:port", quote(b)), "write it as host:port, e.g. 127.0.0.1:19092")
		}
	}
	if !topicRE.MatchString(c.Kafka.OffsetsTopic) {
		ps.add("kafka.offsets_topic", fmt.Sprintf("%s is not a valid Kafka topic name", quote(c.Kafka.OffsetsTopic)), "use letters, digits, '.', '_' and '-' only")
	}
	checkDur(&ps, "kafka.transaction_timeout", c.Kafka.TransactionTimeout, time.Second)
	checkSize(&ps, "kafka.max_message_bytes", c.Kafka.MaxMessageBytes, 1024)
	if !oneOf(c.Kafka.Compression, Compressions...) {
		ps.add("kafka.compression", fmt.Sprintf("unknown compression %s", quote(c.Kafka.Compression)), "use none, gzip, snappy, lz4 or zstd")
	}
	if c.Kafka.TopicPartitions < 1 {
		ps.add("kafka.topic_partitions", "must be at least 1", "set topic_partitions: 1 or more")
	}
	if s := c.Kafka.SASL; s != nil {
		if !oneOf(s.Mechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") {
			ps.add("kafka.sasl.mechanism", fmt.Sprintf("unknown SASL mechanism %s", quote(s.Mechanism)), "use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		if s.Username == "" {
			ps.add("kafka.sasl.username", "SASL needs a username", "set username (and password, e.g. ${file:/run/secrets/kafka_password})")
		}
	}
	if c.SchemaRegistry.URL == "" {
		ps.add("schema_registry.url", "no schema registry URL", `set url, e.g. url: "http://127.0.0.1:18081"`)
	} else if u, err := url.Parse(c.SchemaRegistry.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.add("schema_registry.url", fmt.Sprintf("%s is not an http(s) URL", quote(c.SchemaRegistry.URL)), `write it like "http://host:8081" (with the ccompat path if your registry needs one)`)
	}
	if !oneOf(c.SchemaRegistry.Compatibility, compatLevels...) {
		ps.add("schema_registry.compatibility", fmt.Sprintf("unknown compatibility level %s", quote(c.SchemaRegistry.Compatibility)), "use one of "+strings.Join(compatLevels, ", "))
	}
	checkDur(&ps, "schema_registry.timeout", c.SchemaRegistry.Timeout, time.Millisecond)
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || port == "" {
		ps.add("http.listen", fmt.Sprintf("%s is not host:port", quote(c.HTTP.Listen)), `write it like "127.0.0.1:9187" or ":9187"`)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		ps.add("log.level", fmt.Sprintf("unknown log level %s", quote(c.Log.Level)), "use debug, info, warn or error")
	}
	if !oneOf(c.Log.Format, "json", "text") {
		ps.add("log.format", fmt.Sprintf("unknown log format %s", quote(c.Log.Format)), "use json or text")
	}
	checkDur(&ps, "shutdown_timeout", c.ShutdownTimeout, time.Second)
	if fr := c.Diagnostics.FlightRecorder; fr != nil {
		at := "diagnostics.flight_recorder"
		if !fr.Threshold.IsSet() {
			ps.add(at+".threshold", "the flight recorder has no threshold", "set threshold: the end-to-end latency that writes a trace, e.g. 500ms")
		} else {
			checkDur(&ps, at+".threshold", fr.Threshold, time.Millisecond)
		}
		checkDur(&ps, at+".window", fr.Window, time.Second)
		checkDur(&ps, at+".cooldown", fr.Cooldown, time.Second)
		checkSize(&ps, at+".max_bytes", fr.MaxBytes, 1<<20)
		if fr.MaxFiles < 1 {
			ps.add(at+".max_files", fmt.Sprintf("%d traces cannot be kept", fr.MaxFiles), "set max_files: 1 or more (the oldest traces are removed beyond it)")
		}
	}
	c.validateFleet(&ps)
	c.validateWindows(&ps)
	if len(c.Pipelines) == 0 && len(c.Windows) == 0 {
		ps.add("pipelines", "no pipelines are configured", "add at least one pipeline with a postgres or mysql source (see config.example.yaml)")
	}
	names := map[string]int{}
	slots := map[string]int{}
	serverIDs := map[uint32]int{}
	for i := range c.Pipelines {
		c.validatePipeline(&ps, i, names, slots, serverIDs)
	}
	return ps
}

func (c *Config) validatePipeline(ps *problems, i int, names, slots map[string]int, serverIDs map[uint32]int) {
	p := &c.Pipelines[i]
	at := func(k string) string { return join(fmt.Sprintf("pipelines[%d]", i), k) }
	switch {
	case p.Name == "":
		ps.add(at("name"), "the pipeline has no name", "set name: a short lowercase name such as shop (it names the slot, topics and transactional id)")
	case !pipelineNameRE.MatchString(p.Name):
		ps.add(at("name"), fmt.Sprintf("%s is not a valid pipeline name", quote(p.Name)), "use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 63 characters")
	default:
		if j, dup := names[p.Name]; dup {
			ps.add(at("name"), fmt.Sprintf("pipeline name %s is already used by pipelines[%d]", quote(p.Name), j), "give every pipeline its own name")
		} else {
			names[p.Name] = i
		}
	}
	switch {
	case p.Source.Postgres != nil && p.Source.MySQL != nil:
		ps.add(at("source"), "the pipeline has two sources (postgres and mysql)", "keep one source per pipeline; make a second pipeline for the other database")
	case p.Source.Postgres == nil && p.Source.MySQL == nil:
		ps.add(at("source"), "the pipeline has no source", "add source.postgres or source.mysql")
	case p.Source.Postgres != nil:
		validatePostgres(ps, at("source.postgres"), p.Source.Postgres, p.Name, slots, i)
	case p.Source.MySQL != nil:
		validateMySQL(ps, at("source.mysql"), p.Source.MySQL, serverIDs, i)
	}
	validateSnapshot(ps, at("snapshot"), p)
	if !oneOf(p.Delivery, "exactly_once", "at_least_once") {
		ps.add(at("delivery"), fmt.Sprintf("unknown delivery %s", quote(p.Delivery)), "use exactly_once (Kafka transactions) or at_least_once (clusters without transactions)")
	}
	if p.TimePrecision != "" && !oneOf(p.TimePrecision, "avro", "adaptive", "adaptive_time_microseconds", "connect") {
		ps.add(at("time_precision"), fmt.Sprintf("unknown time_precision %s", quote(p.TimePrecision)),
			"use avro (the default: Avro logical types), or Debezium's adaptive, adaptive_time_microseconds or connect (see docs/record-format.md#type-modes)")
	}
	if p.DecimalHandling != "" && !oneOf(p.DecimalHandling, "avro", "precise", "double", "string") {
		ps.add(at("decimal_handling"), fmt.Sprintf("unknown decimal_handling %s", quote(p.DecimalHandling)),
			"use avro (the default), or Debezium's precise, double or string (see docs/record-format.md#type-modes)")
	}
	if !oneOf(p.OnError, "fail", "dlq") {
		ps.add(at("on_error"), fmt.Sprintf("unknown on_error %s", quote(p.OnError)), "use fail (stop the pipeline) or dlq (dead-letter the record and go on)")
	}
	// Names derived from an invalid pipeline name are not reported again.
	nameBad := !pipelineNameRE.MatchString(p.Name)
	if !topicRE.MatchString(p.Topics.Prefix) && !(nameBad && p.Topics.Prefix == p.Name) {
		ps.add(at("topics.prefix"), fmt.Sprintf("%s is not a valid Kafka topic prefix", quote(p.Topics.Prefix)), "use letters, digits, '.', '_' and '-' only")
	}
	if tm := p.TransactionMetadata; tm.Enabled && !topicRE.MatchString(tm.Topic) && !(nameBad && tm.Topic == p.Topics.Prefix+".transaction") {
		ps.add(at("transaction_metadata.topic"), fmt.Sprintf("%s is not a valid Kafka topic name", quote(tm.Topic)), "use letters, digits, '.', '_' and '-' only")
	}
	if !topicRE.MatchString(p.DLQ.Topic) && !(nameBad && p.DLQ.Topic == p.Topics.Prefix+".dlq") {
		ps.add(at("dlq.topic"), fmt.Sprintf("%s is not a valid Kafka topic name", quote(p.DLQ.Topic)), "use letters, digits, '.', '_' and '-' only")
	}
	checkSize(ps, at("dlq.max_message_bytes"), p.DLQ.MaxMessageBytes, 1024)
	tables := map[string]bool{}
	for _, t := range p.Tables() {
		tables[t] = true
	}
	for t, topic := range p.Topics.Overrides {
		k := at("topics.overrides." + t)
		if !tables[t] {
			ps.add(k, fmt.Sprintf("table %s is not captured by this pipeline", quote(t)), "override only tables listed in the source's tables")
		}
		if !topicRE.MatchString(topic) {
			ps.add(k, fmt.Sprintf("%s is not a valid Kafka topic name", quote(topic)), "use letters, digits, '.', '_' and '-' only")
		}
	}
	validateShape(ps, at, p, tables)
	validateMaskKey(ps, at, p)
	validateOutbox(ps, at, p, tables)
	if p.Batch.MaxEvents < 1 {
		ps.add(at("batch.max_events"), "must be at least 1", "set max_events, e.g. 10000")
	}
	checkSize(ps, at("batch.max_bytes"), p.Batch.MaxBytes, 1)
	checkDur(ps, at("batch.interval"), p.Batch.Interval, time.Millisecond)
	checkDur(ps, at("retry.initial_backoff"), p.Retry.InitialBackoff, time.Millisecond)
	checkDur(ps, at("retry.max_backoff"), p.Retry.MaxBackoff, time.Millisecond)
	if !p.Retry.InitialBackoff.Bad && !p.Retry.MaxBackoff.Bad && p.Retry.MaxBackoff.D < p.Retry.InitialBackoff.D {
		ps.add(at("retry.max_backoff"), "is shorter than retry.initial_backoff", "make max_backoff at least initial_backoff")
	}
	checkDur(ps, at("stall_after"), p.StallAfter, time.Second)
	if p.Retry.MaxAttempts < 0 {
		ps.add(at("retry.max_attempts"), "must not be negative", "use 0 to retry forever or a positive count")
	}
}

func validatePostgres(ps *problems, at string, pg *Postgres, name string, slots map[string]int, i int) {
	if pg.DSN == "" {
		ps.add(at+".dsn", "no connection string", `set dsn, e.g. "postgres://cdcd@db:5432/shop?sslmode=require" (password via ${file:...})`)
	} else if cfg, err := pgconn.ParseConfig(pg.DSN); err != nil {
		msg := err.Error()
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && len(pe.ConnString) > maxEcho {
			msg = strings.Replace(msg, pe.ConnString, clip(pe.ConnString), 1) // pgconn echoes it whole
		}
		ps.add(at+".dsn", "the connection string does not parse: "+msg, "use a postgres:// URL or key=value pairs")
	} else if cfg.Database == "" {
		ps.add(at+".dsn", "the connection string names no database", "add the database, e.g. postgres://user@host:5432/shop")
	} else {
		key := cfg.Host + "|" + fmt.Sprint(cfg.Port) + "|" + cfg.Database + "|" + pg.Slot
		if j, dup := slots[key]; dup {
			ps.add(at+".slot", fmt.Sprintf("slot %s on the same database is already used by pipelines[%d]", quote(pg.Slot), j), "give each pipeline its own slot: a slot has one reader")
		} else {
			slots[key] = i
		}
	}
	derived := "cdcd_" + identPart(name)
	for _, id := range []struct{ key, kind, val string }{{"slot", "replication slot", pg.Slot}, {"publication", "publication", pg.Publication}} {
		switch {
		case pgIdentRE.MatchString(id.val):
		case id.val != derived:
			ps.add(at+"."+id.key, fmt.Sprintf("%s is not a valid %s name", quote(id.val), id.kind), "use lowercase letters, digits and '_' (at most 63)")
		case pipelineNameRE.MatchString(name): // else the name's own problem says it all
			// The default, derived from a valid pipeline name, is too long.
			ps.add(at+"."+id.key, fmt.Sprintf("the default %s name %s (cdcd_ and the pipeline's name) is longer than PostgreSQL's 63 characters", id.kind, quote(id.val)),
				fmt.Sprintf("set %s: to a name of at most 63 lowercase letters, digits and '_', or shorten the pipeline's name to at most 58 characters", id.key))
		}
	}
	checkTables(ps, at+".tables", pg.Tables, "public.orders")
	checkDur(ps, at+".heartbeat_interval", pg.HeartbeatInterval, 0)
	if !pg.HeartbeatInterval.Bad && pg.HeartbeatInterval.D > 0 && pg.HeartbeatInterval.D < 100*time.Millisecond {
		ps.add(at+".heartbeat_interval", "is shorter than 100ms", "use 1s or more (10s is a good default), or 0s to disable")
	}
	checkDur(ps, at+".status_interval", pg.StatusInterval, 100*time.Millisecond)
	checkDur(ps, at+".slot_stats_interval", pg.SlotStatsInterval, 100*time.Millisecond)
	checkSize(ps, at+".tx_memory_limit", pg.TxMemoryLimit, 1<<20)
}

func validateMySQL(ps *problems, at string, my *MySQL, serverIDs map[uint32]int, i int) {
	if my.DSN == "" {
		ps.add(at+".dsn", "no connection string", `set dsn, e.g. "cdcd:${MYSQL_PASSWORD}@tcp(db:3306)/inventory"`)
	} else if _, err := dsn.Parse(my.DSN); err != nil {
		ps.add(at+".dsn", err.Error(), `write it as user@tcp(host:port)/database, with :password after the user if it needs one (better: :${file:/run/secrets/mysql_password})`)
	}
	if my.ServerID == 0 {
		ps.add(at+".server_id", "server_id is not set", "choose a number unique among the server's replicas, e.g. server_id: 4242")
	} else if j, dup := serverIDs[my.ServerID]; dup {
		ps.add(at+".server_id", fmt.Sprintf("server_id %d is already used by pipelines[%d]", my.ServerID, j), "give every MySQL pipeline its own server_id")
	} else {
		serverIDs[my.ServerID] = i
	}
	if my.HeartbeatInterval.Bad {
		checkDur(ps, at+".heartbeat_interval", my.HeartbeatInterval, 100*time.Millisecond)
	} else if my.HeartbeatInterval.D < 100*time.Millisecond || my.HeartbeatInterval.D > time.Hour {
		ps.add(at+".heartbeat_interval", fmt.Sprintf("heartbeat_interval %s is out of range", my.HeartbeatInterval.D), "use 100ms to 1h (default 5s)")
	}
	if my.SignalTable != "" {
		if _, _, err := change.ParseTableName(my.SignalTable); err != nil || strings.Count(my.SignalTable, ".") != 1 {
			ps.add(at+".signal_table", fmt.Sprintf("%s is not database.table", quote(my.SignalTable)), "name the signal table as database.table, e.g. inventory.cdcd_signal")
		}
	}
	if !oneOf(my.SnapshotConsistency, "auto", "binlog_snapshot", "watermarks") {
		ps.add(at+".snapshot_consistency", fmt.Sprintf("unknown snapshot consistency mode %s", quote(my.SnapshotConsistency)),
			"use auto (the default), binlog_snapshot (MariaDB only) or watermarks")
	}
	if !oneOf(my.XARecover, "check", "skip") {
		ps.add(at+".xa_recover", fmt.Sprintf("unknown xa_recover %s", quote(my.XARecover)),
			"use check (the default) or skip (start a new pipeline without asking XA RECOVER; see docs/mysql.md)")
	}
	if my.Flavor != "" && !oneOf(my.Flavor, "mysql", "mariadb") {
		ps.add(at+".flavor", fmt.Sprintf("unknown flavor %s", quote(my.Flavor)), "use mysql or mariadb, or leave it out to detect it")
	}
	checkTables(ps, at+".tables", my.Tables, "inventory.items")
}

func checkTables(ps *problems, at string, tables []string, example string) {
	if len(tables) == 0 {
		ps.add(at, "no tables are listed", fmt.Sprintf("list the tables to capture, e.g. tables: [%s]", example))
		return
	}
	seen := map[string]int{}
	for j, t := range tables {
		k := fmt.Sprintf("%s[%d]", at, j)
		if _, _, err := change.ParseTableName(t); err != nil {
			ps.add(k, unecho(err.Error(), t), "write each table as schema.table, e.g. "+example)
			continue
		}
		if prev, dup := seen[t]; dup {
			ps.add(k, fmt.Sprintf("table %s is listed twice (also at index %d)", quote(t), prev), "list each table once")
		}
		seen[t] = j
	}
}

// unecho replaces a long value a library's message repeats with its clipped form.
func unecho(msg, value string) string {
	if len(value) <= maxEcho {
		return msg
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(value), quote(value))
	return strings.ReplaceAll(msg, value, clip(value))
}

func checkDur(ps *problems, at string, d Duration, minimum time.Duration) {
	if d.Neg {
		ps.add(at, fmt.Sprintf("%s is negative", quote(d.Raw)), fmt.Sprintf("use %s or more", max(minimum, 0)))
		return
	}
	if d.Bad {
		ps.add(at, fmt.Sprintf("%s is not a duration", quote(d.Raw)), "write a duration like 500ms, 10s or 1m30s")
		return
	}
	if d.D < minimum {
		ps.add(at, fmt.Sprintf("%s is too short", d.D), fmt.Sprintf("use at least %s", minimum))
	}
}

func checkSize(ps *problems, at string, b ByteSize, minimum int64) {
	if b.Bad {
		ps.add(at, fmt.Sprintf("%s is not a size", quote(b.Raw)), "write a size like 1048576, 512KiB, 16MiB or 1GiB")
		return
	}
	if b.N < minimum {
		ps.add(at, fmt.Sprintf("%d bytes is too small", b.N), fmt.Sprintf("use at least %d bytes", minimum))
	}
}

func validateSnapshot(ps *problems, at string, p *Pipeline) {
	s := &p.Snapshot
	switch s.Mode {
	case "never":
	case "initial", "when_needed":
	default:
		ps.add(at, fmt.Sprintf("unknown snapshot mode %s", quote(s.Mode)), "use initial (existing rows at the first start), when_needed (also tables added later) or never")
	}
	if s.Parallelism < 1 || s.Parallelism > 64 {
		ps.add(at+".parallelism", fmt.Sprintf("parallelism %d is out of range", s.Parallelism), "use 1 to 64 chunks read at once (default 2)")
	}
	if s.ChunkSize < 1 || s.ChunkSize > 1_000_000 {
		ps.add(at+".chunk_size", fmt.Sprintf("chunk_size %d is out of range", s.ChunkSize), "use 1 to 1000000 rows (default 8192)")
	}
	if s.ChunkMaxBytes.Bad {
		ps.add(at+".chunk_max_bytes", fmt.Sprintf("%s is not a size", quote(s.ChunkMaxBytes.Raw)), "write it as bytes or with a unit, e.g. 32MiB")
	} else if s.ChunkMaxBytes.N < 64<<10 {
		ps.add(at+".chunk_max_bytes", fmt.Sprintf("chunk_max_bytes %d is too small", s.ChunkMaxBytes.N), "use at least 64KiB (default 32MiB)")
	}
	for i, t := range s.AcceptInexactKeyless {
		if !slices.ContainsFunc(p.Tables(), func(c string) bool { return sameTable(c, t) }) {
			ps.add(fmt.Sprintf("%s.accept_inexact_keyless[%d]", at, i), fmt.Sprintf("%s is not one of the pipeline's tables", quote(t)),
				"name a table of the source's tables, as written there")
		}
	}
	if s.SignalKey != "" && len(s.SignalKey) < MinSignalKeyLen {
		ps.add(at+".signal_key", fmt.Sprintf("signal_key is %d characters long: too easy to guess", len(s.SignalKey)),
			fmt.Sprintf("use at least %d random characters, from a file: signal_key: ${file:/run/secrets/cdcd_signal_key} (e.g. openssl rand -hex 32)", MinSignalKeyLen))
	}
}

// sameTable reports whether two configured table names name the same table.
func sameTable(a, b string) bool {
	as, an, err1 := change.ParseTableName(a)
	bs, bn, err2 := change.ParseTableName(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return as == bs && an == bn
}

// validateFleet checks the fleet section when fleet mode is on.
func (c *Config) validateFleet(ps *problems) {
	f := c.Fleet
	if !f.Enabled {
		return
	}
	if f.Group == "" {
		ps.add("fleet.group", "fleet mode needs a group", "set group: the consumer group every instance of this configuration joins, e.g. group: cdcd-prod")
	} else if !topicRE.MatchString(f.Group) || len(f.Group) > 200 {
		ps.add("fleet.group", fmt.Sprintf("%s cannot name a group and its coordination topic", quote(f.Group)), "use letters, digits, '.', '_' and '-' only (at most 200)")
	}
	if f.Topic != "" && f.Topic != "_cdcd_fleet."+f.Group && !topicRE.MatchString(f.Topic) {
		ps.add("fleet.topic", fmt.Sprintf("%s is not a valid Kafka topic name", quote(f.Topic)), "use letters, digits, '.', '_' and '-' only")
	}
	checkDur(ps, "fleet.session_timeout", f.SessionTimeout, time.Second)
	checkDur(ps, "fleet.heartbeat_interval", f.HeartbeatInterval, 100*time.Millisecond)
	if f.HeartbeatInterval.D >= f.SessionTimeout.D {
		ps.add("fleet.heartbeat_interval", fmt.Sprintf("heartbeat_interval %s is not below session_timeout %s", f.HeartbeatInterval.D, f.SessionTimeout.D),
			"set heartbeat_interval to at most a third of session_timeout (default: a fifth)")
	}
	if len(c.Pipelines) == 0 {
		ps.add("fleet.enabled", "fleet mode spreads pipelines, and no pipeline is configured", "add pipelines, or set enabled: false to run only window jobs")
	}
}
