package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchEnv is what the report says about the machine and the stack.
type benchEnv struct {
	cdcdVersion string
	goVersion   string
	cpus        int
	kernel      string
	cpuModel    string
	pgVersion   string
	pgMajor     int
	pgSettings  []string
	kafkaPID    int
	recvlogical string
	loadAvg     string
	// What other runs left on the stack: topics and partitions on the broker, and the WAL
	// that inactive replication slots keep (see bench/README.md, "The stack's leftovers").
	brokerTopics, brokerPartitions int
	idleSlots                      []string // "name (size)"
	// The broker's JVM at the start: how long it had run and how much its JIT had compiled
	// (a fresh broker compiles under the first traffic it meets; bench/README.md, "The
	// broker's JIT after a restart"). brokerUp is 0 when unknown.
	brokerUp  time.Duration
	brokerJIT gcSample
}

// stackLeftovers is the sentence on what other runs left on the stack, with a warning when
// it is enough to move the results.
func (e *benchEnv) stackLeftovers() string {
	s := fmt.Sprintf("%d topics, %d partitions on the broker at the start", e.brokerTopics, e.brokerPartitions)
	if e.brokerPartitions > leftoverPartitions {
		s += fmt.Sprintf(" (**more than %d: leftovers of other runs; the broker's heap holds them and collects garbage more often, which lengthens the steady-load tails**, see bench/README.md, \"The stack's leftovers\")", leftoverPartitions)
	}
	if len(e.idleSlots) > 0 {
		s += "; inactive replication slots keeping WAL: " + strings.Join(e.idleSlots, ", ")
	}
	if e.brokerUp > 0 {
		s += fmt.Sprintf("; the broker's JVM had run %s", e.brokerUp.Round(time.Minute))
		if e.brokerJIT.jitOK {
			s += fmt.Sprintf(" and compiled %d methods in %.0f s of JIT time", e.brokerJIT.compiled, e.brokerJIT.jitS)
		}
	}
	return s
}

// leftoverPartitions: above this many partitions at the start, the report says the broker
// carries other runs' leftovers (the suite itself makes and removes a few dozen).
const leftoverPartitions = 500

func probeEnv(ctx context.Context, o options) (*benchEnv, error) {
	e := &benchEnv{goVersion: runtime.Version(), cpus: runtime.NumCPU(), kafkaPID: findProcess("kafka.Kafka")}
	out, err := exec.CommandContext(ctx, o.cdcdBin, "version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s version: %v: %s", o.cdcdBin, err, out)
	}
	e.cdcdVersion = strings.TrimSpace(string(out))
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					e.cpuModel = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	e.loadAvg = loadAvg()

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, o.pgDSN)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w (is the stack up? `make stack-up`)", o.pgDSN, err)
	}
	defer conn.Close(context.Background())
	var num int
	if err := conn.QueryRow(cctx, "SELECT version(), current_setting('server_version_num')::int").Scan(&e.pgVersion, &num); err != nil {
		return nil, fmt.Errorf("querying the server version: %w", err)
	}
	e.pgMajor = num / 10000
	var wal string
	if err := conn.QueryRow(cctx, "SHOW wal_level").Scan(&wal); err != nil {
		return nil, err
	}
	if wal != "logical" {
		return nil, fmt.Errorf("PostgreSQL wal_level is %s; logical replication needs wal_level=logical", wal)
	}
	for _, s := range []string{"shared_buffers", "synchronous_commit", "wal_writer_delay", "logical_decoding_work_mem", "max_wal_size", "wal_sender_timeout"} {
		var v string
		if err := conn.QueryRow(cctx, "SELECT current_setting($1)", s).Scan(&v); err == nil {
			e.pgSettings = append(e.pgSettings, s+"="+v)
		}
	}

	rows, err := conn.Query(cctx, `SELECT slot_name, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))
		FROM pg_replication_slots WHERE NOT active AND restart_lsn IS NOT NULL ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("listing replication slots: %w", err)
	}
	for rows.Next() {
		var name, size string
		if err := rows.Scan(&name, &size); err != nil {
			return nil, err
		}
		e.idleSlots = append(e.idleSlots, fmt.Sprintf("%s (%s)", name, size))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing replication slots: %w", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(o.kafka))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := cl.Ping(cctx); err != nil {
		return nil, fmt.Errorf("kafka at %s is not reachable: %w (is the stack up? `make stack-up`)", o.kafka, err)
	}
	topics, err := kadm.NewClient(cl).ListTopicsWithInternal(cctx)
	if err != nil {
		return nil, fmt.Errorf("listing the broker's topics: %w", err)
	}
	for _, t := range topics {
		e.brokerTopics++
		e.brokerPartitions += len(t.Partitions)
	}
	if o.kafkaPID > 0 {
		if out, err := exec.CommandContext(cctx, "ps", "-o", "etimes=", "-p", strconv.Itoa(o.kafkaPID)).Output(); err == nil {
			if secs, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
				e.brokerUp = time.Duration(secs) * time.Second
			}
		}
		e.brokerJIT.jitOK, e.brokerJIT.compiled, e.brokerJIT.jitS = sampleBrokerJIT(cctx, o.kafkaPID)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(strings.TrimRight(o.registry, "/") + "/subjects")
	if err != nil {
		return nil, fmt.Errorf("schema registry at %s is not reachable: %w", o.registry, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("schema registry at %s: GET /subjects answered %s", o.registry, resp.Status)
	}
	return e, nil
}

func findRecvlogical(major int) string {
	p := fmt.Sprintf("/usr/lib/postgresql/%d/bin/pg_recvlogical", major)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("pg_recvlogical"); err == nil {
		return p
	}
	return "pg_recvlogical"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
