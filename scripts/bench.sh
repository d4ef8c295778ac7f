#!/usr/bin/env bash
# End-to-end benchmarks of cdcd against the running local stack (make stack-up).
#
# Default (BENCH_MODE=suite): cdcd side by side with Debezium 3.6.1 (Kafka Connect standalone)
# and Kafka Streams, and with each source's own reader as the limit, scenario by scenario:
#   1 PostgreSQL backlog catch-up (pg_recvlogical beside it)   2 steady 1k/5k/20k rows/s, single-
#   row and 10-row transactions (latency; beside it a bare slot consumer alone, then writing
#   straight to Kafka with and without transactions: -no-bare skips those two)   3 initial snapshot (COPY binary beside it)   4 one big
#   transaction   5 MariaDB binlog catch-up (go-mysql BinlogSyncer beside it)   6 window stage vs
#   Kafka Streams, state bytes per key, and the restore of -restore-keys (1M) keys of window state
#   (window.BenchmarkRestore; CDCD_BENCH_RESTORE_KEYS sets the default)   7 MariaDB initial
#   snapshot (a plain SELECT beside it).
# Writes bench/results/latest.md with throughput.png, latency.png and rss.png next to it; logs
# and every configuration in bench/results/suite-<stamp>/. Kafka Connect, Debezium and Kafka
# Streams are installed on first use by scripts/bench/debezium.sh (cached in ~/.cache/cdcd-bench).
# Bounded: the whole suite stops at BENCH_TIMEOUT (default 40m) and reports what it did not run;
# every process it starts is stopped, every database, slot, topic and subject it made is removed.
#
#   scripts/bench.sh                                   # everything at full size (~25 min on 2 quiet cores)
#   scripts/bench.sh -scenarios 1,2 -rows 100000 -rates 5000 -latency-duration 10s   # a quick look
#   scripts/bench.sh -no-debezium                      # cdcd and the limits only
#   scripts/bench.sh -h                                # every option
#
# BENCH_MODE=rounds: the older cdcd-only rounds (catch-up vs pg_recvlogical, latency, profiles;
# bench/README.md), with BENCH_REPEAT (default 2) and BENCH_PROFILE (default 1).
# Environment: CDCD_TEST_PG_DSN / CDCD_TEST_MYSQL_DSN / CDCD_TEST_KAFKA / CDCD_TEST_REGISTRY (the
# stack's addresses, as exported by the Makefile). Extra arguments go to the harness.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x bin/cdcd && " $* " != *" -cdcd "* ]]; then
	echo "bench: bin/cdcd missing; building it (make build)" >&2
	make build
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdcdbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The harness is its own module (bench/go.mod): its plotting library never reaches cdcd.
(cd bench && go build -o "$tmp/cdcdbench" ./cmd/cdcdbench)

if [[ "${BENCH_MODE:-suite}" == rounds ]]; then
	args=(-repeat "${BENCH_REPEAT:-2}")
	if [[ "${BENCH_PROFILE:-1}" == 1 ]]; then
		args+=(-profile)
	fi
	"$tmp/cdcdbench" "${args[@]}" "$@"
	exit 0
fi
# The stack's broker, so the steady phases can note its JVM's pauses (jstat).
kafka_pid=""
if [[ -f "${CDCD_STACK_DIR:-.stack}/kafka/kafka.pid" ]]; then
	kafka_pid=$(cat "${CDCD_STACK_DIR:-.stack}/kafka/kafka.pid")
fi
"$tmp/cdcdbench" -suite -suite-timeout "${BENCH_TIMEOUT:-40m}" -kafka-pid "${kafka_pid:-0}" "$@"
