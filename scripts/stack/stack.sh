#!/usr/bin/env bash
# The local stack: PostgreSQL, MariaDB, Kafka (KRaft) and a schema registry on 127.0.0.1, with
# TLS/SASL pieces: certificates and secrets (tls), PostgreSQL with TLS users, Kafka's SASL_SSL
# listener, and the registry behind basic auth (registry-auth); and headless Chromium for the
# status page test (chromium: installed, not a service).
#   stack.sh up      install what is missing, start what is not running, restart or reload what
#                    runs with an older configuration, wait until ready
#   stack.sh down    stop everything (state is kept under .stack/)
#   stack.sh status  one line per service; exit 1 if any is not ready
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-status}"
services=(tls postgres mariadb kafka registry registry-auth chromium)
case "$cmd" in
  up)
    for s in "${services[@]}"; do "$here/$s.sh" up; done
    "$here/stack.sh" status
    ;;
  down)
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do "$here/${services[$i]}.sh" down || true; done
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do "$here/$s.sh" status || rc=1; done
    exit $rc
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
