#!/usr/bin/env bash
# The cdcd demo: what `make demo` runs once bin/cdcd is built and the local stack is up.
#
#  1. (re)creates the `shop` database with public.orders and public.customers, and clears
#     what an earlier run left (the slot cdcd_shop, the shop.* topics, the pipeline's
#     committed position in _cdcd_offsets), so every run starts clean;
#  2. starts `bin/cdcd run` on config.example.yaml plus one window job (orders and revenue
#     per customer over 10-second tumbling windows of shop.public.orders) in the background,
#     and waits until the pipeline streams;
#  3. writes to the tables for DEMO_SECONDS (default 30) seconds while a watcher prints every
#     record of shop.public.orders, and every window result of shop.orders_per_customer_10s
#     as its window closes, as a read_committed consumer decodes them;
#  4. on the end or Ctrl-C: prints the cdcd_events_published_total series, stops cdcd with
#     SIGTERM (it drains), drops the slot cdcd_shop (an idle slot keeps every WAL segment
#     written after it: on a stack that benchmarks and tests then write to, gigabytes; the next
#     run starts clean anyway; DEMO_KEEP_SLOT=1 keeps it), and says where the logs are.
#
# Environment: CDCD_PG_PORT, CDCD_KAFKA_PORT, CDCD_REGISTRY_PORT, CDCD_STACK_DIR (as the stack),
# CDCD_HTTP_LISTEN (default 127.0.0.1:9187), DEMO_SECONDS, DEMO_RATE (writes per second).
# DEMO_CHECK=1 (`make demo-smoke`, part of `make test`): the demo fails unless the watcher read
# exactly the change events of public.orders cdcd committed (at least one), the window job
# committed at least one result, cdcd exited cleanly, and the slot cdcd_shop is gone.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

pg_port="${CDCD_PG_PORT:-55432}"
kafka="127.0.0.1:${CDCD_KAFKA_PORT:-19092}"
registry="http://127.0.0.1:${CDCD_REGISTRY_PORT:-18081}/apis/ccompat/v7"
listen="${CDCD_HTTP_LISTEN:-127.0.0.1:9187}"
seconds="${DEMO_SECONDS:-30}"
rate="${DEMO_RATE:-4}"
check="${DEMO_CHECK:-0}"
keep_slot="${DEMO_KEEP_SLOT:-0}"
demo_dir="${CDCD_STACK_DIR:-$repo/.stack}/demo"
log_file="$demo_dir/cdcd.log"
topic=shop.public.orders
window_job=orders_per_customer
results=shop.orders_per_customer_10s
config="$demo_dir/cdcd.yaml"

# config.example.yaml reads these, so the demo follows the stack's port overrides.
export CDCD_PG_DSN="postgres://postgres@127.0.0.1:$pg_port/shop"
export CDCD_KAFKA_BROKERS="$kafka"
export CDCD_REGISTRY_URL="$registry"
export CDCD_HTTP_LISTEN="$listen"

host="${listen%:*}"
case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
http="http://$host:${listen##*:}"

say() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }
psql_pg() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }

[ -x bin/cdcd ] || die "bin/cdcd is missing: run \`make demo\` (it builds it) or \`make build\`"
command -v psql >/dev/null || die "psql is not on PATH: run \`make stack-up\`"
command -v curl >/dev/null || die "curl is not on PATH"
psql_pg -d postgres -Atc 'select 1' >/dev/null 2>&1 ||
  die "PostgreSQL does not answer on 127.0.0.1:$pg_port: run \`make stack-up\`"
if curl -s -o /dev/null "$http/healthz"; then
  die "something already answers on $http (another cdcd?); stop it or set CDCD_HTTP_LISTEN"
fi
mkdir -p "$demo_dir"

say "building the record watcher (scripts/demo/watch) and the topic cleaner (scripts/demo/reset)"
go build -o "$demo_dir/watch" ./scripts/demo/watch
go build -o "$demo_dir/reset" ./scripts/demo/reset

say "creating database shop (dropping the one from an earlier run, with its slot cdcd_shop)"
psql_pg -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'cdcd_shop';
DROP DATABASE IF EXISTS shop WITH (FORCE);
CREATE DATABASE shop;
SQL
psql_pg -d shop <<'SQL'
CREATE TABLE public.customers (
  id    serial PRIMARY KEY,
  name  text,
  email text
);
CREATE TABLE public.orders (
  id          bigserial PRIMARY KEY,
  customer_id int,
  total       numeric(10,2),
  status      text,
  created_at  timestamptz DEFAULT now()
);
-- Old rows in full on update and delete, so the records carry a `before` image.
ALTER TABLE public.orders REPLICA IDENTITY FULL;
INSERT INTO public.customers (name, email) VALUES
  ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com'), ('Linus', 'linus@example.com');
SQL

say "clearing what the last run left in Kafka: the topics shop.* and the pipeline's position"
# The slot is new, so a position committed by the last run would be a gap, and cdcd would
# refuse to start: the position goes too (as `cdcd reset-offsets` does).
"$demo_dir/reset" --brokers "$kafka" --prefix shop --pipeline shop --offsets-topic _cdcd_offsets --window-job "$window_job"

say "writing $config: config.example.yaml with window job $window_job"
# A tumbling window closes once the partition's event time passes its end plus grace, or,
# when the input goes quiet, idle_timeout after the job caught up (the wall clock then moves
# stream time): the last windows close a few seconds after the writes stop.
window_yaml="windows:
  - name: $window_job
    input:
      topics: [$topic]
      ops: [c]
    group_by: [after.customer_id]
    window: {type: tumbling, size: 10s, grace: 1s}
    aggregates:
      - {name: orders, fn: count}
      - {name: revenue, fn: sum, field: after.total}
      - {name: biggest, fn: max, field: after.total}
    output: {topic: $results}
    idle_timeout: 2s
    instance_id: demo"
grep -q '^windows: \[\]$' config.example.yaml || die "config.example.yaml has no 'windows: []' line to put the demo's window job in"
awk -v w="$window_yaml" '$0 == "windows: []" { print w; next } { print }' config.example.yaml >"$config"

# The terminal's stdout and stderr, for cleanup: a Ctrl-C can land while a command's output
# is redirected (the writer's psql >/dev/null), and the traps would run with that redirection.
exec 3>&1 4>&2
cdcd_pid=""
watch_pid=""
watch_log="$demo_dir/watch.summary"
cleaned=0
orders=""
results_n=""
cdcd_clean=0
watch_clean=0
slot_dropped=0
# drop_slot drops the demo's slot once cdcd has stopped: left behind, it would keep every WAL
# segment the stack's PostgreSQL writes from then on.
drop_slot() {
  local n drop_cmd="psql -h 127.0.0.1 -p $pg_port -U postgres -c \"SELECT pg_drop_replication_slot('cdcd_shop')\""
  n=$(psql_pg -d postgres -Atc "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cdcd_shop'" 2>/dev/null) || n=unknown
  if [ "$n" = 0 ]; then
    slot_dropped=1
    return
  fi
  if [ "$keep_slot" = 1 ]; then
    echo "[demo] keeping the slot cdcd_shop (DEMO_KEEP_SLOT=1): it keeps WAL until dropped: $drop_cmd"
    return
  fi
  if psql_pg -d postgres -Atc "SELECT pg_drop_replication_slot('cdcd_shop')" >/dev/null 2>&1; then
    echo "[demo] dropped the slot cdcd_shop so PostgreSQL does not keep WAL for it (the next run starts clean; DEMO_KEEP_SLOT=1 keeps it)"
    slot_dropped=1
  else
    echo "[demo] could not drop the slot cdcd_shop (is cdcd still running?); drop it once cdcd is stopped, or it keeps WAL: $drop_cmd"
  fi
}
cleanup() {
  local status=$?
  exec 1>&3 2>&4
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap - INT TERM
  if [ -n "$cdcd_pid" ] && kill -0 "$cdcd_pid" 2>/dev/null; then
    say "published so far (cdcd_events_published_total from $http/metrics):"
    metrics=$(curl -s "$http/metrics" | grep '^cdcd_events_published_total' || true)
    echo "${metrics:-(none yet)}"
    orders=$(awk '/table="public.orders"/ { n += $2 } END { print n + 0 }' <<<"$metrics")
    echo "[demo] cdcd committed $orders change event(s) of public.orders; the watcher's count follows"
    say "stopping cdcd with SIGTERM (it commits the open batch, acknowledges, and exits)"
    kill -TERM "$cdcd_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$cdcd_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$cdcd_pid" 2>/dev/null; then
      echo "[demo] cdcd did not exit within 15s; killing it"
      kill -KILL "$cdcd_pid" 2>/dev/null || true
    fi
    if wait "$cdcd_pid" 2>/dev/null; then
      echo "[demo] cdcd exited cleanly"
      cdcd_clean=1
    else
      echo "[demo] cdcd exited with status $?"
    fi
    rm -f "$demo_dir/cdcd.pid"
  fi
  # Also when cdcd failed on its own: the slot outlives it.
  if [ -z "$cdcd_pid" ] || ! kill -0 "$cdcd_pid" 2>/dev/null; then
    drop_slot
  fi
  if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
    sleep 1 # let the watcher print the last committed records
    kill -TERM "$watch_pid" 2>/dev/null || true
  fi
  if [ -n "$watch_pid" ]; then
    if wait "$watch_pid" 2>/dev/null; then
      watch_clean=1
    else
      echo "[demo] the watcher failed (its error is above)"
    fi
  fi
  say "cdcd logs: $log_file"
  if [ "$check" = 1 ] && [ "$status" = 0 ]; then
    smoke_check || exit 1
  fi
}
# smoke_check (DEMO_CHECK=1): what the watcher read against what cdcd committed.
smoke_check() {
  local seen
  seen=$(awk -v t="$topic" '$1 == t { print $2 }' "$watch_log" 2>/dev/null)
  say "smoke check: cdcd committed ${orders:-?} change event(s) of public.orders, the watcher read ${seen:-?}; ${results_n:-0} window result(s)"
  [ "$cdcd_clean" = 1 ] || { echo "[demo] FAIL: cdcd did not exit cleanly (logs: $log_file)" >&2; return 1; }
  [ "$slot_dropped" = 1 ] || [ "$keep_slot" = 1 ] || { echo "[demo] FAIL: the slot cdcd_shop was not dropped" >&2; return 1; }
  [ "$watch_clean" = 1 ] || { echo "[demo] FAIL: the watcher failed (its error is above)" >&2; return 1; }
  [ -n "$orders" ] && [ "$orders" -gt 0 ] || { echo "[demo] FAIL: cdcd committed no change event of public.orders" >&2; return 1; }
  [ "$seen" = "$orders" ] || { echo "[demo] FAIL: the watcher read ${seen:-nothing}, cdcd committed $orders" >&2; return 1; }
  [ -n "$results_n" ] && [ "$results_n" -gt 0 ] || { echo "[demo] FAIL: the window job committed no result" >&2; return 1; }
  echo "[demo] smoke check passed"
}
trap cleanup EXIT
trap 'echo "[demo] interrupted" >&3; exit 130' INT TERM

say "starting bin/cdcd run --config $config (logs: $log_file)"
# setsid: a Ctrl-C in the terminal reaches the script, which then stops cdcd in order (metrics
# first, then SIGTERM), instead of reaching cdcd directly.
setsid bin/cdcd run --config "$config" >"$log_file" 2>&1 3>&- 4>&- &
cdcd_pid=$!
echo "$cdcd_pid" >"$demo_dir/cdcd.pid"
ready=0
for _ in $(seq 1 300); do
  kill -0 "$cdcd_pid" 2>/dev/null || { tail -n 30 "$log_file" >&2; die "cdcd exited during start-up (logs above)"; }
  # The pipeline first: the window job waits for its input's first change (its schema), which
  # the writes below make.
  if curl -s "$http/readyz" | grep -q '"name":"shop","ready":true'; then ready=1; break; fi
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  curl -s "$http/readyz" >&2 || true
  tail -n 30 "$log_file" >&2
  die "the pipeline was not streaming within 60s (cdcd's /readyz and logs are above)"
fi
echo "[demo] $http/readyz: $(curl -s "$http/readyz")"

say "watching $topic and the window results in $results (the same, by hand: go run ./scripts/demo/watch --brokers $kafka --registry $registry --topic $topic,$results)"
# --summary: the watcher writes its counts there when it stops (the smoke check reads them).
rm -f "$watch_log"
setsid "$demo_dir/watch" --brokers "$kafka" --registry "$registry" --topic "$topic,$results" --summary "$watch_log" 3>&- 4>&- &
watch_pid=$!

say "writing to shop for ${seconds}s, about $rate changes a second (Ctrl-C stops early)"
sql_for() {
  local cust=$((RANDOM % 3 + 1)) total="$((RANDOM % 200 + 1)).$((RANDOM % 90 + 10))"
  case $((RANDOM % 10)) in
    0 | 1 | 2 | 3) echo "INSERT INTO orders (customer_id, total, status) VALUES ($cust, $total, 'new');" ;;
    4 | 5) echo "UPDATE orders SET status = 'paid' WHERE id = (SELECT min(id) FROM orders WHERE status = 'new');" ;;
    6) echo "UPDATE orders SET status = 'shipped' WHERE id = (SELECT min(id) FROM orders WHERE status = 'paid');" ;;
    7) echo "DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE status = 'shipped');" ;;
    8) echo "BEGIN; INSERT INTO orders (customer_id, total, status) VALUES ($cust, $total, 'new'), ($cust, 9.99, 'new'); UPDATE customers SET email = 'c$RANDOM@example.com' WHERE id = $cust; COMMIT;" ;;
    9) echo "INSERT INTO customers (name, email) VALUES ('customer $RANDOM', 'c$RANDOM@example.com');" ;;
  esac
}
end=$((SECONDS + seconds))
writes=0
pause=$(awk -v r="$rate" 'BEGIN { printf "%.3f", 1 / (r > 0 ? r : 1) }')
while [ "$SECONDS" -lt "$end" ]; do
  psql_pg -d shop -c "$(sql_for)" >/dev/null
  writes=$((writes + 1))
  kill -0 "$cdcd_pid" 2>/dev/null || { tail -n 30 "$log_file" >&2; die "cdcd stopped (logs above)"; }
  sleep "$pause"
done
say "wrote $writes statements; waiting for the last records and the last windows to close (idle_timeout 2s)"
sleep 8
echo "[demo] $http/readyz: $(curl -s "$http/readyz")"
results_n=$(curl -s "$http/metrics" | awk '/^cdcd_window_records_out_total/ { n += $2 } END { print n + 0 }')
echo "[demo] window job $window_job committed $results_n result(s) to $results"
