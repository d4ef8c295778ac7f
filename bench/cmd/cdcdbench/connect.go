package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// toolPaths are where scripts/bench/debezium.sh installed Kafka Connect, Debezium and Kafka
// Streams (its `env` command prints them).
type toolPaths struct {
	ConnectLibs, StreamsLibs, PluginPath string
	KafkaVersion, DebeziumVersion        string
}

// installTools runs `scripts/bench/debezium.sh install` (idempotent, cached downloads) and
// reads the paths it reports.
func installTools(ctx context.Context, repo string) (*toolPaths, error) {
	script := filepath.Join(repo, "scripts/bench/debezium.sh")
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	inst := exec.CommandContext(cctx, script, "install")
	inst.Stdout, inst.Stderr = os.Stderr, os.Stderr
	if err := inst.Run(); err != nil {
		return nil, fmt.Errorf("installing Kafka Connect, Debezium and Kafka Streams (%s install): %w", script, err)
	}
	out, err := exec.CommandContext(cctx, script, "env").Output()
	if err != nil {
		return nil, fmt.Errorf("%s env: %w", script, err)
	}
	p := &toolPaths{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "CONNECT_LIBS":
			p.ConnectLibs = v
		case "STREAMS_LIBS":
			p.StreamsLibs = v
		case "PLUGIN_PATH":
			p.PluginPath = v
		case "KAFKA_VERSION":
			p.KafkaVersion = v
		case "DEBEZIUM_VERSION":
			p.DebeziumVersion = v
		}
	}
	if p.ConnectLibs == "" || p.PluginPath == "" || p.StreamsLibs == "" {
		return nil, fmt.Errorf("%s env printed no paths: %q", script, out)
	}
	return p, nil
}

// javaProc is one JVM the harness started (a Kafka Connect worker or the Kafka Streams program).
type javaProc struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	exited  chan struct{}
	waitErr error
}

// startJava runs `java <jvmArgs> -cp <classpath> <main> <args>`, output appended to logPath.
// The JVM gets its own process group so stop can signal it alone.
func startJava(jvmArgs []string, classpath, main string, args []string, logPath string) (*javaProc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	all := append(append(append([]string{}, jvmArgs...), "-cp", classpath, main), args...)
	fmt.Fprintf(f, "\n===== %s: java %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(all, " "))
	p := &javaProc{cmd: exec.Command("java", all...), logPath: logPath, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting java %s: %w", main, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *javaProc) pid() int { return p.cmd.Process.Pid }

func (p *javaProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to timeout, then SIGKILLs; it always leaves nothing running.
func (p *javaProc) stop(timeout time.Duration) time.Duration {
	if p == nil || !p.alive() {
		return 0
	}
	t0 := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
	return time.Since(t0)
}

// connectWorker is a Kafka Connect standalone worker running one Debezium connector.
type connectWorker struct {
	*javaProc
	rest       string
	connector  string
	connectLog string
}

// connectSettings are the worker and connector settings of one Debezium run. Every value ends
// up in the report.
type connectSettings struct {
	Worker    map[string]string
	Connector map[string]string
	JVM       []string
}

// debeziumWorkerSettings tunes the Connect worker like the cdcd pipeline it is compared with:
// JSON without schemas (no Avro converter from Maven Central works with this registry's API;
// see bench/README.md), a producer batching up to 1 MiB with a 5 ms linger, offsets flushed
// every second.
func debeziumWorkerSettings(o options, paths *toolPaths, restAddr, offsetsFile string) map[string]string {
	w := map[string]string{
		"bootstrap.servers":              o.kafka,
		"listeners":                      "http://" + restAddr,
		"plugin.path":                    paths.PluginPath,
		"plugin.discovery":               "service_load",
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "false",
		"value.converter.schemas.enable": "false",
		"offset.storage.file.filename":   offsetsFile,
		"offset.flush.interval.ms":       "1000",
		"producer.linger.ms":             "5",
		"producer.batch.size":            "1048576",
		"producer.max.request.size":      "16777216",
		"producer.buffer.memory":         "134217728",
		"producer.acks":                  "all",
		"producer.enable.idempotence":    "true",
		"producer.compression.type":      "none",
		"topic.creation.enable":          "true",
	}
	for k, v := range parseKV(o.connectExtra) {
		w[k] = v
	}
	return w
}

// debeziumPGConnector is the Debezium PostgreSQL connector of one run.
func debeziumPGConnector(o options, name, db, table, snapshotMode string) (map[string]string, error) {
	pg, err := parsePGURL(o.pgDSN)
	if err != nil {
		return nil, err
	}
	c := map[string]string{
		"name":                        name,
		"connector.class":             "io.debezium.connector.postgresql.PostgresConnector",
		"tasks.max":                   "1",
		"database.hostname":           pg.host,
		"database.port":               pg.port,
		"database.user":               pg.user,
		"database.password":           pg.password,
		"database.dbname":             db,
		"topic.prefix":                name,
		"plugin.name":                 "pgoutput",
		"slot.name":                   name,
		"publication.name":            name,
		"publication.autocreate.mode": "filtered",
		"table.include.list":          "public." + table,
		"snapshot.mode":               snapshotMode,
		"max.batch.size":              "20480",
		"max.queue.size":              "81920",
		"poll.interval.ms":            "5",
		"status.update.interval.ms":   "1000",
		"heartbeat.interval.ms":       "1000",
		"snapshot.fetch.size":         "20480",
		"topic.creation.default.replication.factor": "-1",
		"topic.creation.default.partitions":         fmt.Sprint(o.partitions),
	}
	for k, v := range parseKV(o.debeziumExtra) {
		c[k] = v
	}
	return c, nil
}

// debeziumMySQLConnector is the Debezium MySQL connector (MariaDB adapter) of one run.
func debeziumMySQLConnector(o options, name, db, table string, serverID int) (map[string]string, error) {
	my, err := parseMySQLDSN(o.mysqlDSN)
	if err != nil {
		return nil, err
	}
	c := map[string]string{
		"name":                  name,
		"connector.class":       "io.debezium.connector.mysql.MySqlConnector",
		"tasks.max":             "1",
		"database.hostname":     my.host,
		"database.port":         my.port,
		"database.user":         my.user,
		"database.password":     my.password,
		"database.server.id":    fmt.Sprint(serverID),
		"database.include.list": db,
		"table.include.list":    db + "." + table,
		"topic.prefix":          name,
		"snapshot.mode":         "no_data",
		"schema.history.internal.kafka.bootstrap.servers": o.kafka,
		"schema.history.internal.kafka.topic":             name + ".schema-history",
		"max.batch.size":                                  "20480",
		"max.queue.size":                                  "81920",
		"poll.interval.ms":                                "5",
		"topic.creation.default.replication.factor":       "-1",
		"topic.creation.default.partitions":               fmt.Sprint(o.partitions),
	}
	for k, v := range parseKV(o.debeziumExtra) {
		c[k] = v
	}
	return c, nil
}

// startConnect writes the worker and connector properties into dir and starts the worker.
func startConnect(paths *toolPaths, dir, name string, s connectSettings) (*connectWorker, error) {
	workerPath := filepath.Join(dir, name+".worker.properties")
	connPath := filepath.Join(dir, name+".connector.properties")
	logCfg := filepath.Join(dir, name+".log4j2.properties")
	if err := os.WriteFile(workerPath, []byte(properties(s.Worker)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(connPath, []byte(properties(s.Connector)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(logCfg, []byte(fileLog4j(filepath.Join(dir, name+".connect.log"))), 0o644); err != nil {
		return nil, err
	}
	jvm := append(append([]string{}, s.JVM...), "-Dlog4j2.configurationFile="+logCfg)
	p, err := startJava(jvm, paths.ConnectLibs+"/*", "org.apache.kafka.connect.cli.ConnectStandalone",
		[]string{workerPath, connPath}, filepath.Join(dir, name+".connect.out"))
	if err != nil {
		return nil, err
	}
	return &connectWorker{javaProc: p, connectLog: filepath.Join(dir, name+".connect.log"), rest: "http://" + strings.TrimPrefix(s.Worker["listeners"], "http://"), connector: s.Connector["name"]}, nil
}

// waitRunning polls the connector's status until its task is RUNNING.
func (w *connectWorker) waitRunning(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	hc := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if !w.alive() {
			return 0, fmt.Errorf("the Kafka Connect worker exited (%v): %s", w.waitErr, connectCause(w.connectLog))
		}
		resp, err := hc.Get(w.rest + "/connectors/" + w.connector + "/status")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			var st struct {
				Tasks []struct {
					State string `json:"state"`
					Trace string `json:"trace"`
				} `json:"tasks"`
			}
			if json.Unmarshal(b, &st) == nil && len(st.Tasks) > 0 {
				switch st.Tasks[0].State {
				case "RUNNING":
					return time.Since(w.started), nil
				case "FAILED":
					return 0, fmt.Errorf("Debezium task failed: %s", firstLines(st.Tasks[0].Trace, 6))
				}
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("Debezium connector %s not RUNNING within %s (last status: %.300s)", w.connector, timeout, last)
}

func properties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(m[k], `\`, `\\`))
	}
	return b.String()
}

func fileLog4j(path string) string {
	return fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
`, path)
}

// parseKV parses "k=v,k2=v2" (the -connect-extra/-debezium-extra flags).
func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			m[k] = v
		}
	}
	return m
}

func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var out []string
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}

// connectCause is the most telling error line of a Connect worker's log: the first
// exception message Debezium or Connect wrote, else the first ERROR line.
func connectCause(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return err.Error()
	}
	var firstErr string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, "Exception: "); i >= 0 && !strings.HasPrefix(strings.TrimSpace(l), "at ") {
			return strings.TrimSpace(l[i+len("Exception: "):]) + " (see " + logPath + ")"
		}
		if firstErr == "" && strings.Contains(l, " ERROR ") {
			firstErr = l
		}
	}
	if firstErr != "" {
		return firstErr + " (see " + logPath + ")"
	}
	return "no error in " + logPath
}
