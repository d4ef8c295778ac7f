// The file is not named check_windows.go: a _windows.go suffix would build it on Windows only.

package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/topics"
	"github.com/cdcd-dev/cdcd/window"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// checkWindows checks every window job against the brokers and the registry, as the job
// itself would find them when it starts: its input topics exist, their value schemas are
// registered and hold the job's fields, the result schemas it would register fit what its
// output subjects already hold, and the topics it writes exist or can be created (internal
// topics with equal partition counts). An input a pipeline of this configuration writes but
// has not created yet is a warning: the job waits for it. src holds the connections the
// pipelines' checks opened.
func checkWindows(ctx context.Context, cfg *config.Config, src *sourceTables, rep *checks.Report) {
	if len(cfg.Windows) == 0 {
		return
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		rep.Scoped("window jobs").Fail("kafka client", err.Error(), "fix the kafka section")
		return
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		rep.Scoped("window jobs").Fail("kafka client", err.Error(), "fix the kafka section")
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	srcl, err := registryClient(cfg)
	if err != nil {
		rep.Scoped("window jobs").Fail("registry client", err.Error(), "fix the schema_registry section")
		return
	}
	writers := map[string]string{} // topic -> the pipeline writing it
	for _, u := range topics.Uses(cfg) {
		writers[u.Topic] = u.What
	}
	for i := range cfg.Windows {
		scope := rep.Scoped("window job " + cfg.Windows[i].Name)
		checkWindow(ctx, cfg, &cfg.Windows[i], adm, srcl, writers, scope)
		checkBeforeImages(ctx, &cfg.Windows[i], src, scope)
	}
}

// sourceTables knows which table of which pipeline of the configuration writes each change
// topic, and holds the connections to the pipelines' databases that the pipelines' checks
// opened (one each), to ask them how they log old rows.
type sourceTables struct {
	byTopic map[string]sourceTable
	pg      map[string]*pgx.Conn
	my      map[string]*client.Conn
	// failed: why a pipeline's connection could not be opened (its check reported it).
	failed map[string]error
	// rowImage is a MySQL pipeline's server's @@GLOBAL.binlog_row_image, read once.
	rowImage map[string]string
}

type sourceTable struct {
	p     *config.Pipeline
	table string
}

func newSourceTables(cfg *config.Config) *sourceTables {
	s := &sourceTables{byTopic: map[string]sourceTable{}, pg: map[string]*pgx.Conn{}, my: map[string]*client.Conn{},
		failed: map[string]error{}, rowImage: map[string]string{}}
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		for _, t := range p.Tables() {
			if topic, ok := topics.TableTopic(p, t); ok {
				s.byTopic[topic] = sourceTable{p, t}
			}
		}
	}
	return s
}

func (s *sourceTables) close() {
	for name := range s.pg {
		s.closePipeline(name)
	}
	for name := range s.my {
		s.closePipeline(name)
	}
}

// closePipeline closes pipeline name's connection.
func (s *sourceTables) closePipeline(name string) {
	if c := s.pg[name]; c != nil {
		_ = c.Close(context.Background())
		delete(s.pg, name)
	}
	if c := s.my[name]; c != nil {
		_ = c.Close()
		delete(s.my, name)
	}
}

// oldRows says how the source of table st logs the old row of an update or delete: full
// (complete before images) and what it is set to, e.g. "REPLICA IDENTITY DEFAULT".
func (s *sourceTables) oldRows(ctx context.Context, st sourceTable) (full bool, setting string, err error) {
	name := st.p.Name
	if err := s.failed[name]; err != nil {
		return false, "", err
	}
	switch {
	case st.p.Source.Postgres != nil:
		conn := s.pg[name]
		if conn == nil {
			return false, "", errNoConnection
		}
		schema, table, err := change.ParseTableName(st.table)
		if err != nil {
			return false, "", err
		}
		var ident string
		err = conn.QueryRow(ctx, `SELECT c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relname = $2`, schema, table).Scan(&ident)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, "", fmt.Errorf("table %s does not exist in the pipeline's database (fix: check the pipeline's tables list)", st.table)
		}
		if err != nil {
			return false, "", fmt.Errorf("reading the replica identity of %s: %w", st.table, err)
		}
		names := map[string]string{"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}
		return ident == "f", "REPLICA IDENTITY " + names[ident], nil
	case st.p.Source.MySQL != nil:
		v, ok := s.rowImage[name]
		if !ok {
			conn := s.my[name]
			if conn == nil {
				return false, "", errNoConnection
			}
			r, err := conn.Execute("SELECT @@GLOBAL.binlog_row_image")
			if err != nil {
				return false, "", fmt.Errorf("reading binlog_row_image: %w", err)
			}
			v, _ = r.GetString(0, 0)
			s.rowImage[name] = v
		}
		return strings.EqualFold(v, "FULL"), "binlog_row_image " + v, nil
	}
	return true, "", nil
}

// errNoConnection: the pipeline's checks did not connect to its database.
var errNoConnection = errors.New("no connection to the pipeline's database")

// checkBeforeImages warns about a job that needs before images (table mode; events mode
// counting deletes by a row column) over an input table whose source leaves them out (a
// PostgreSQL table without REPLICA IDENTITY FULL, MySQL's binlog_row_image other than FULL):
// its first such change would stop it or be dead-lettered.
func checkBeforeImages(ctx context.Context, w *config.Window, src *sourceTables, rep *checks.Scoped) {
	spec, err := w.Spec()
	if err != nil {
		return // checkWindow reported it
	}
	need := spec.BeforeImageNeed()
	if need == "" {
		return
	}
	first := "update or delete"
	if spec.Mode != window.ModeTable {
		first = "delete"
	}
	outcome := fmt.Sprintf("on the first such %s the job stops (on_error: fail)", first)
	if spec.DeadLetter != "" {
		outcome = fmt.Sprintf("every such %s goes to %s and the windows never count it (on_error: dlq)", first, spec.DeadLetter)
	}
	for _, topic := range w.Input.Topics {
		st, ok := src.byTopic[topic]
		if !ok {
			continue // not written by a pipeline of this configuration
		}
		check := "before images of " + st.table
		full, setting, err := src.oldRows(ctx, st)
		switch {
		case err != nil:
			rep.Warn(check, fmt.Sprintf("cannot tell whether table %s of pipeline %s logs complete old rows: %v", st.table, st.p.Name, err),
				"check the pipeline's dsn (cdcd check reports its connection above)")
		case full:
			rep.OK(check, fmt.Sprintf("%s: updates and deletes carry their complete old row", setting))
		case st.p.Source.MySQL != nil:
			// Not FULL: the pipeline's own check fails on binlog_row_image and names the fix;
			// one report of a server's setting is enough, not one more per job and table.
		default:
			fix := fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", sqlTableName(st.table))
			if spec.Mode != window.ModeTable {
				fix += ", or leave d out of input.ops"
			}
			rep.Warn(check, fmt.Sprintf("table %s of pipeline %s has %s: PostgreSQL sends its updates and deletes with the key alone as the old row, and %s: %s",
				st.table, st.p.Name, setting, need, outcome), fix)
		}
	}
}

func checkWindow(ctx context.Context, cfg *config.Config, w *config.Window, adm *kadm.Client, srcl *sr.Client, writers map[string]string, rep *checks.Scoped) {
	spec, err := w.Spec()
	if err != nil {
		rep.Fail("configuration", err.Error(), "run cdcd validate and fix what it reports")
		return
	}
	internal := []string{window.RepartitionTopic(w.Name), window.ChangelogTopic(w.Name)}
	all := append(append(append([]string{}, w.Input.Topics...), w.Output.Topic, w.Late.Topic), internal...)
	if w.DLQ.Topic != "" {
		all = append(all, w.DLQ.Topic)
	}
	tds, err := adm.ListTopics(ctx, all...)
	if err != nil {
		rep.Fail("topics", "describing the job's topics failed: "+err.Error(), "check that the principal may DESCRIBE the topics")
		return
	}
	exists := func(t string) (kadm.TopicDetail, bool) {
		td, ok := tds[t]
		return td, ok && td.Err == nil && len(td.Partitions) > 0
	}

	// Inputs: the topic and its value schema, and the job's fields in that schema.
	var resultKey, resultValue string
	inputParts := 0
	for _, t := range w.Input.Topics {
		writer, ours := writers[t]
		if td, ok := exists(t); ok {
			rep.OK("input "+t, fmt.Sprintf("exists (%d partitions)", len(td.Partitions)))
			inputParts = max(inputParts, len(td.Partitions))
		} else if ours {
			rep.Warn("input "+t, "does not exist yet", fmt.Sprintf("none needed: %s creates it with its first change, and the job waits until then", writer))
		} else {
			rep.Fail("input "+t, "does not exist, and no pipeline of this configuration writes it",
				"check the topic name in input.topics (cdcd names change topics <prefix>.<schema>.<table>) or start the pipeline that writes it")
			continue
		}
		subject := t + "-value"
		ss, err := srcl.SchemaByVersion(ctx, subject, -1)
		if err != nil {
			var re *sr.ResponseError
			switch {
			case errors.As(err, &re) && re.StatusCode == 404 && ours:
				rep.Warn("schema "+subject, "not registered yet; the job's fields cannot be checked until it is",
					fmt.Sprintf("none needed: %s registers it with its first change; run cdcd check again then", writer))
			case errors.As(err, &re) && re.StatusCode == 404:
				rep.Fail("schema "+subject, "not registered: the job cannot decode the topic", "window jobs read cdcd change topics (Avro through the registry, TopicNameStrategy); point input.topics at one")
			default:
				rep.Fail("schema "+subject, "reading it from the registry failed: "+err.Error(), "check schema_registry.url and credentials")
			}
			continue
		}
		k, v, err := window.CheckInput(spec, ss.Schema.Schema)
		if err != nil {
			rep.Fail("fields in "+subject, err.Error(), "change time, group_by and aggregates[].field to fields the topic has (after.<column>, before.<column>, source.<field>, ts_ms, op)")
			continue
		}
		rep.OK("fields in "+subject, fmt.Sprintf("version %d holds every field the job reads", ss.Version))
		if resultKey == "" {
			resultKey, resultValue = k, v
		}
	}

	// Results: the schemas the job registers must fit what the output subjects hold.
	for _, s := range []struct{ subject, schema string }{{w.Output.Topic + "-key", resultKey}, {w.Output.Topic + "-value", resultValue}} {
		if s.schema == "" {
			break // no input schema to derive them from (reported above)
		}
		var re *sr.ResponseError
		if _, err := srcl.SchemaByVersion(ctx, s.subject, -1); errors.As(err, &re) && re.StatusCode == 404 {
			rep.OK("schema "+s.subject, "not registered yet: the job registers it")
			continue
		}
		res, err := srcl.CheckCompatibility(ctx, s.subject, -1, sr.Schema{Schema: s.schema, Type: sr.TypeAvro})
		switch {
		case errors.As(err, &re) && re.StatusCode == 404:
			rep.OK("schema "+s.subject, "not registered yet: the job registers it")
		case err != nil:
			rep.Fail("schema "+s.subject, "checking the result schema's compatibility failed: "+err.Error(), "check schema_registry.url and credentials")
		case !res.Is:
			rep.Fail("schema "+s.subject, fmt.Sprintf("the job's result schema is not compatible with the subject's latest version: %s", strings.Join(res.Messages, "; ")),
				"if the job's group_by or aggregates changed, write its results to a new output topic (and give the job a new name: its state cannot carry over)")
		default:
			rep.OK("schema "+s.subject, "the job's result schema is compatible with the registered one")
		}
	}

	// Topics the job writes: they exist, or the brokers would create them.
	parts := int32(w.Partitions)
	if parts == 0 {
		parts = int32(inputParts)
	}
	plans := map[string]window.TopicPlan{}
	for _, p := range window.InternalTopics(w.Name) {
		plans[p.Topic] = p
	}
	create := func(topic string, n int32, cfgs map[string]*string) {
		if td, ok := exists(topic); ok {
			if p, internal := plans[topic]; internal {
				checkTopicPlan(ctx, adm, p, len(td.Partitions), rep)
				return
			}
			rep.OK("topic "+topic, fmt.Sprintf("exists (%d partitions)", len(td.Partitions)))
			return
		}
		if n <= 0 {
			n = -1 // the broker's default, as the job does
		}
		rf := int16(cfg.Kafka.TopicReplicationFactor)
		if rf == 0 {
			rf = 1 // as the job does
		}
		resps, err := adm.ValidateCreateTopics(ctx, n, rf, cfgs, topic)
		if err == nil {
			if r, ok := resps[topic]; ok {
				err = r.Err
			}
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			rep.Fail("topic "+topic, "the job could not create it: "+err.Error(),
				"let the principal CREATE topics (or create it yourself), and keep kafka.topic_replication_factor no larger than the brokers available")
			return
		}
		rep.OK("topic "+topic, "does not exist yet; the job can create it")
	}
	if parts > 0 {
		for _, p := range window.InternalTopics(w.Name) {
			create(p.Topic, parts, p.CreateConfig())
		}
	}
	rp, rok := exists(internal[0])
	cp, cok := exists(internal[1])
	if rok && cok && len(rp.Partitions) != len(cp.Partitions) {
		rep.Fail("internal topics", fmt.Sprintf("%s has %d partitions and %s %d: the job refuses to start", internal[0], len(rp.Partitions), internal[1], len(cp.Partitions)),
			window.InternalPartitionsFix(w.Name))
	}
	outParts := int32(cfg.Kafka.TopicPartitions)
	create(w.Output.Topic, outParts, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	if w.Late.Topic != "" {
		create(w.Late.Topic, outParts, nil)
	}
	if w.DLQ.Topic != "" {
		create(w.DLQ.Topic, 1, window.DeadLetterTopicConfig(int(cfg.Kafka.MaxMessageBytes.N)))
	}
}

// checkTopicPlan checks an existing internal topic's configuration against what its contents
// need. The job sets what is missing when it starts (if its principal may ALTER_CONFIGS):
// until then, a warning.
func checkTopicPlan(ctx context.Context, adm *kadm.Client, p window.TopicPlan, parts int, rep *checks.Scoped) {
	missing, err := p.Lacking(ctx, adm)
	if err != nil {
		rep.Fail("topic "+p.Topic, err.Error(), "let the principal DESCRIBE_CONFIGS on the topic")
		return
	}
	if len(missing) == 0 {
		rep.OK("topic "+p.Topic, fmt.Sprintf("exists (%d partitions), configured as its contents need", parts))
		return
	}
	var kv []string
	for k, v := range missing {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	rep.Warn("topic "+p.Topic, fmt.Sprintf("exists (%d partitions) without %s: %s", parts, strings.Join(kv, ", "), p.Why),
		fmt.Sprintf("the job sets it when it starts if its principal may ALTER_CONFIGS the topic; or run kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s", p.Topic, strings.Join(kv, ",")))
}

// sqlTableName is a configured PostgreSQL table name as SQL writes it: schema.table, quoted
// only where an identifier needs it.
func sqlTableName(t string) string {
	schema, table, err := change.ParseTableName(t)
	if err != nil {
		return t
	}
	var parts []string
	for _, id := range []string{schema, table} {
		if plainIdent.MatchString(id) {
			parts = append(parts, id)
		} else {
			parts = append(parts, pgx.Identifier{id}.Sanitize())
		}
	}
	return strings.Join(parts, ".")
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
