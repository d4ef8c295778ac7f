package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// streamTool is one CDC tool under test (cdcd or Debezium in Kafka Connect), as a process the
// harness starts fresh, waits for, measures by pid and stops.
type streamTool interface {
	label() string
	format() recordFormat
	topic() string
	start(ctx context.Context) error
	waitReady(ctx context.Context) error
	stop()
	pid() int
	alive() bool
	// settings are every tuned value, for the report.
	settings() []string
}

// cdcdTool runs `cdcd run` with one pipeline.
type cdcdTool struct {
	o                         options
	bin, cfgPath, httpAddr    string
	logPath, name, cfgExcerpt string
	env                       []string
	d                         *daemon
	topicOverride             string       // the record topic, when not <name>.public.bench_rows
	keyFormat                 recordFormat // how its record keys carry the row's id (formatAvro: an id column first)
	pprofAddr                 string       // with o.profiling: the running profiling build's pprof address
}

func newCDCDTool(o options, dir, name, cfg, httpAddr string) (*cdcdTool, error) {
	t := &cdcdTool{o: o, bin: o.cdcdBin, httpAddr: httpAddr, name: name, cfgExcerpt: cfg,
		cfgPath: filepath.Join(dir, name+".yaml"), logPath: filepath.Join(dir, name+".cdcd.log")}
	for _, kv := range strings.Split(o.cdcdEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			t.env = append(t.env, kv)
		}
	}
	return t, os.WriteFile(t.cfgPath, []byte(cfg), 0o600)
}

func (t *cdcdTool) label() string        { return "cdcd" }
func (t *cdcdTool) format() recordFormat { return t.keyFormat }
func (t *cdcdTool) topic() string {
	if t.topicOverride != "" {
		return t.topicOverride
	}
	return t.name + ".public." + benchTable
}
func (t *cdcdTool) pid() int    { return t.d.pid() }
func (t *cdcdTool) alive() bool { return t.d != nil && t.d.alive() }

func (t *cdcdTool) start(context.Context) error {
	env := t.env
	if t.o.profiling {
		// A profiling build (profile.go) profiles its CPU from process start.
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		t.pprofAddr = addr
		env = append(append([]string(nil), t.env...), "CDCD_BENCH_PPROF="+addr)
	}
	d, err := startDaemon(t.bin, t.cfgPath, t.httpAddr, t.logPath, env)
	t.d = d
	return err
}

// saveProfile ends the CPU profile a profiling build has kept since its start and saves it
// next to the tool's log; "" when the tool is not a profiling build.
func (t *cdcdTool) saveProfile(ctx context.Context) (string, error) {
	if !t.o.profiling || t.pprofAddr == "" {
		return "", nil
	}
	path := strings.TrimSuffix(t.logPath, ".cdcd.log") + ".cpu.pprof"
	return path, fetchTo(ctx, "http://"+t.pprofAddr+"/bench/cpu/stop", path, 30*time.Second)
}

func (t *cdcdTool) waitReady(ctx context.Context) error {
	_, err := t.d.waitReady(ctx, 5*time.Minute)
	return err
}

func (t *cdcdTool) stop() {
	if t.d != nil {
		if _, err := t.d.stop(30 * time.Second); err != nil {
			logf("cdcd: %v", err)
		}
		t.d = nil
	}
}

func (t *cdcdTool) settings() []string {
	s := []string{"pipeline configuration (the pipeline's keys; everything else is cdcd's default):"}
	for _, l := range strings.Split(strings.TrimRight(t.cfgExcerpt, "\n"), "\n") {
		if strings.Contains(l, "dsn:") {
			continue
		}
		s = append(s, "    "+l)
	}
	if len(t.env) > 0 {
		s = append(s, "environment: "+strings.Join(t.env, " "))
	}
	return s
}

// dbzTool runs one Debezium connector in a Kafka Connect standalone worker.
type dbzTool struct {
	paths  *toolPaths
	dir    string
	name   string
	s      connectSettings
	w      *connectWorker
	topic_ string
}

func (t *dbzTool) label() string        { return "Debezium" }
func (t *dbzTool) format() recordFormat { return formatJSON }
func (t *dbzTool) topic() string        { return t.topic_ }
func (t *dbzTool) pid() int             { return t.w.pid() }
func (t *dbzTool) alive() bool          { return t.w != nil && t.w.alive() }

func (t *dbzTool) start(context.Context) error {
	w, err := startConnect(t.paths, t.dir, t.name, t.s)
	t.w = w
	return err
}

func (t *dbzTool) waitReady(ctx context.Context) error {
	_, err := t.w.waitRunning(ctx, 3*time.Minute)
	return err
}

func (t *dbzTool) stop() {
	if t.w != nil {
		t.w.stop(30 * time.Second)
		t.w = nil
	}
}

func (t *dbzTool) settings() []string {
	s := []string{"JVM: java " + strings.Join(t.s.JVM, " ") + " (Java 17, the stack's), Kafka Connect " + t.paths.KafkaVersion + " standalone, Debezium " + t.paths.DebeziumVersion}
	s = append(s, "worker:")
	for _, l := range strings.Split(strings.TrimSpace(properties(t.s.Worker)), "\n") {
		s = append(s, "    "+l)
	}
	s = append(s, "connector:")
	for _, l := range strings.Split(strings.TrimSpace(properties(t.s.Connector)), "\n") {
		if strings.HasPrefix(l, "database.password=") {
			continue
		}
		s = append(s, "    "+l)
	}
	return s
}

// pgAddr is the parts of the PostgreSQL admin DSN Debezium needs.
type pgAddr struct{ host, port, user, password string }

func parsePGURL(dsn string) (pgAddr, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return pgAddr{}, fmt.Errorf("-pg-dsn must be a postgres:// URL, got %q", dsn)
	}
	a := pgAddr{host: u.Hostname(), port: u.Port(), user: u.User.Username()}
	a.password, _ = u.User.Password()
	if a.port == "" {
		a.port = "5432"
	}
	return a, nil
}

type myAddr struct{ host, port, user, password string }

// parseMySQLDSN reads user[:password]@tcp(host:port)/[db] (the stack's and cdcd's DSN form).
func parseMySQLDSN(dsn string) (myAddr, error) {
	cred, rest, ok := strings.Cut(dsn, "@tcp(")
	addr, _, ok2 := strings.Cut(rest, ")")
	if !ok || !ok2 {
		return myAddr{}, fmt.Errorf("-mysql-dsn must look like user:password@tcp(host:port)/, got %q", dsn)
	}
	a := myAddr{port: "3306"}
	a.user, a.password, _ = strings.Cut(cred, ":")
	a.host = addr
	if h, p, ok := strings.Cut(addr, ":"); ok {
		a.host, a.port = h, p
	}
	return a, nil
}
