package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/offsets"
	"github.com/cdcd-dev/cdcd/source/mysql"
	"github.com/cdcd-dev/cdcd/source/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkCommand connects to everything the configuration names and checks each prerequisite.
// It exits 1 when any check fails; warnings do not fail it.
func checkCommand(ctx context.Context, path string, stdout io.Writer) error {
	cfg, err := loadValid(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var rep checks.Report
	for _, w := range cfg.Warnings() {
		rep.Scoped("config").Warn(w.Path, fmt.Sprintf("line %d: %s", w.Line, w.Message), w.Fix)
	}
	checkKafka(ctx, cfg, rep.Scoped("kafka"))
	checkRegistry(ctx, cfg, rep.Scoped("schema registry"))
	if cfg.Fleet.Enabled {
		checkFleet(ctx, cfg, rep.Scoped("fleet "+cfg.Fleet.Group))
	}
	// With window jobs, the pipelines' connections stay open for their checks (checkWindows).
	src := newSourceTables(cfg)
	defer src.close()
	keep := len(cfg.Windows) > 0
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		scope := rep.Scoped("pipeline " + p.Name + " / " + p.SourceKind())
		checkShaping(p, scope)
		switch {
		case p.Source.Postgres != nil:
			pg := p.Source.Postgres
			conn, err := pgx.Connect(ctx, pg.DSN)
			if err != nil {
				scope.Fail("connect", err.Error(), "check the dsn, that the server is reachable, and pg_hba.conf")
				src.failed[p.Name] = err
				continue
			}
			src.pg[p.Name] = conn
			scope.OK("connect", "connected")
			postgres.Preflight(ctx, conn, pg.Slot, pg.Publication, pg.Tables, scope)
			postgres.CheckKeylessSnapshots(ctx, conn, pg.Tables,
				postgres.SnapshotChecks{Snapshots: p.Snapshot.Mode != "never", KeylessAccepted: p.Snapshot.AcceptInexactKeyless}, scope)
			postgres.CheckReplicationConnection(ctx, pg.DSN, scope)
		case p.Source.MySQL != nil:
			conn, err := mysql.Connect(ctx, p.Source.MySQL.DSN)
			if err != nil {
				scope.Fail("connect", err.Error(), "check the dsn, that the server is reachable, and the user's host grants")
				src.failed[p.Name] = err
				continue
			}
			src.my[p.Name] = conn
			scope.OK("connect", "connected")
			snap := mysql.SnapshotChecks{Consistency: p.Source.MySQL.SnapshotConsistency, Snapshots: p.Snapshot.Mode != "never",
				KeylessAccepted: p.Snapshot.AcceptInexactKeyless}
			mysql.Preflight(conn, p.Source.MySQL.ServerID, p.Source.MySQL.Tables, snap, scope)
			mysql.CheckKeylessSnapshots(conn, p.Source.MySQL.Tables, snap, scope)
			mysql.CheckXARecover(conn, p.Source.MySQL.XARecover, scope)
		}
		if !keep {
			src.closePipeline(p.Name)
		}
	}
	checkWindows(ctx, cfg, src, &rep)
	rep.Print(stdout)
	if rep.Failed() {
		return &exitError{1, errors.New("some checks failed; see the fixes above")}
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}

func checkKafka(ctx context.Context, cfg *config.Config, rep *checks.Scoped) {
	opts, err := kafkaOpts(cfg)
	if err != nil {
		rep.Fail("client", err.Error(), "fix the kafka section")
		return
	}
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID("cdcd-check"), kgo.TransactionTimeout(cfg.Kafka.TransactionTimeout.D))...)
	if err != nil {
		rep.Fail("client", err.Error(), "fix the kafka section")
		return
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		rep.Fail("brokers", fmt.Sprintf("no broker of %v answers: %v", cfg.Kafka.Brokers, err), kafkaFix(cfg, err))
		return
	}
	rep.OK("brokers", fmt.Sprintf("%v reachable", cfg.Kafka.Brokers))
	if _, _, err := cl.ProducerID(pctx); err != nil {
		rep.Fail("transactions", "initializing a transactional producer failed: "+err.Error(),
			"enable transactions on the cluster (transaction.state.log.replication.factor and min.isr no larger than the brokers available), grant the principal IDEMPOTENT_WRITE and WRITE on transactional ids cdcd-*, or use delivery: at_least_once")
		return
	}
	rep.OK("transactions", "a transactional producer initializes")
	checkOffsetsTopic(pctx, kadm.NewClient(cl), cfg.Kafka.OffsetsTopic, rep)
}

// warnOffsetsTopic logs what checkOffsetsTopic finds wrong with the offsets topic, once at
// start-up, so that a topic which slows every start or loses positions is named in the log
// of `cdcd run` too, not only by `cdcd check`. It does not hold the start-up up: a broker that
// does not answer is the pipelines' to report.
func warnOffsetsTopic(ctx context.Context, cfg *config.Config, log *slog.Logger) {
	opts, err := kafkaOpts(cfg)
	if err != nil {
		return
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	logOffsetsTopicProblems(ctx, kadm.NewClient(cl), cfg.Kafka.OffsetsTopic, log)
}

// logOffsetsTopicProblems logs checkOffsetsTopic's warnings and failures.
func logOffsetsTopicProblems(ctx context.Context, adm *kadm.Client, topic string, log *slog.Logger) {
	var rep checks.Report
	checkOffsetsTopic(ctx, adm, topic, rep.Scoped("kafka"))
	for _, r := range rep.Results {
		switch r.Status {
		case checks.Fail:
			log.Error("offsets topic: "+r.Detail, "fix", r.Fix)
		case checks.Warn:
			log.Warn("offsets topic: "+r.Detail, "fix", r.Fix)
		}
	}
}

// checkOffsetsTopic judges the settings of the offsets topic, if it exists (the first start
// creates it with offsets.TopicConfigs; an existing one is left as it is).
func checkOffsetsTopic(ctx context.Context, adm *kadm.Client, topic string, rep *checks.Scoped) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = rcs.On(topic, nil)
	}
	if err == nil {
		err = rc.Err
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		rep.OK("offsets topic", topic+" does not exist yet; the first start creates it")
		return
	case err != nil:
		rep.Warn("offsets topic", fmt.Sprintf("could not read the settings of %s: %v", topic, err), "grant the principal DESCRIBE_CONFIGS on the topic so that they can be checked")
		return
	}
	configs := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			configs[c.Key] = *c.Value
		}
	}
	problems := offsets.TopicProblems(topic, configs)
	for _, p := range problems {
		if p.Fatal {
			rep.Fail("offsets topic", p.Detail, p.Fix)
		} else {
			rep.Warn("offsets topic", p.Detail, p.Fix)
		}
	}
	if len(problems) == 0 {
		rep.OK("offsets topic", topic+" is compacted and keeps transaction markers briefly")
	}
}

func checkRegistry(ctx context.Context, cfg *config.Config, rep *checks.Scoped) {
	c := &http.Client{Timeout: cfg.SchemaRegistry.Timeout.D}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.SchemaRegistry.URL, "/")+"/config", nil)
	if err != nil {
		rep.Fail("url", err.Error(), "fix schema_registry.url")
		return
	}
	if cfg.SchemaRegistry.Username != "" {
		req.SetBasicAuth(cfg.SchemaRegistry.Username, cfg.SchemaRegistry.Password)
	}
	resp, err := c.Do(req)
	if err != nil {
		rep.Fail("reachable", err.Error(), "check schema_registry.url and that the registry runs")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		rep.Fail("credentials", fmt.Sprintf("GET /config answered %s: the registry refused user %q", resp.Status, cfg.SchemaRegistry.Username),
			"set schema_registry.username and password to an account the registry accepts (and that may read and write subjects)")
		return
	}
	if resp.StatusCode != http.StatusOK {
		rep.Fail("reachable", fmt.Sprintf("GET /config answered %s: %s", resp.Status, strings.TrimSpace(string(body))),
			"point schema_registry.url at the Confluent-compatible API root (Apicurio: .../apis/ccompat/v7) and check credentials")
		return
	}
	rep.OK("reachable", "global config: "+strings.TrimSpace(string(body)))
}
