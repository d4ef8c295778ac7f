#!/usr/bin/env bash
# End-to-end benchmark of cdcd against the running local stack (make stack-up):
# backlog catch-up throughput, a pg_recvlogical baseline and latency under a paced writer.
# Writes bench/results/REPORT-<date>.md and prints a summary. See bench/README.md.
#
#   scripts/bench.sh                       # 2 rounds + a profiling round
#   BENCH_REPEAT=3 scripts/bench.sh -rows 200000 -no-latency
#   scripts/bench.sh -h                    # every option of the harness
#
# Environment: BENCH_REPEAT (rounds, default 2), BENCH_PROFILE (1 = add a CPU/heap-profiling
# round, default 1), CDCD_TEST_PG_DSN / CDCD_TEST_KAFKA / CDCD_TEST_REGISTRY (the stack's
# addresses, as exported by the Makefile). Extra arguments go to the harness.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x bin/cdcd ]]; then
	echo "bench: bin/cdcd missing; building it (make build)" >&2
	make build
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdcdbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cdcdbench" ./bench/cmd/cdcdbench

args=(-repeat "${BENCH_REPEAT:-2}")
if [[ "${BENCH_PROFILE:-1}" == 1 ]]; then
	args+=(-profile)
fi
"$tmp/cdcdbench" "${args[@]}" "$@"
