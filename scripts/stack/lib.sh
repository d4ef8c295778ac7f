# Shared settings for the local stack scripts. Sourced, not executed.
# Every service script takes one argument: up | down | status.
# State (data, logs, pid files) lives under $STACK_DIR, which is ignored by git;
# downloads are cached under $STACK_CACHE, outside the clone, so a fresh clone reuses them.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${CDCD_STACK_DIR:-$REPO_ROOT/.stack}"
STACK_CACHE="${CDCD_STACK_CACHE:-$HOME/.cache/cdcd-stack}"

PG_PORT="${CDCD_PG_PORT:-55432}"
MARIADB_PORT="${CDCD_MARIADB_PORT:-33306}"
KAFKA_PORT="${CDCD_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${CDCD_KAFKA_CONTROLLER_PORT:-19093}"
REGISTRY_PORT="${CDCD_REGISTRY_PORT:-18081}"
# The TLS/SASL side: Kafka's SASL_SSL listener and the registry's basic-auth proxy.
KAFKA_SASL_SSL_PORT="${CDCD_KAFKA_SASL_SSL_PORT:-19094}"
REGISTRY_AUTH_PORT="${CDCD_REGISTRY_AUTH_PORT:-18082}"
# Certificates and secrets (scripts/stack/tls.sh).
TLS_DIR="$STACK_DIR/tls"

mkdir -p "$STACK_DIR" "$STACK_CACHE"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# apt_install PKG...: installs the Debian packages that are missing (runs apt-get update once).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f "$STACK_CACHE/.apt-updated" ] || [ -n "$(find "$STACK_CACHE/.apt-updated" -mmin +720 2>/dev/null)" ]; then
    apt-get update -qq && touch "$STACK_CACHE/.apt-updated"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# wait_port HOST PORT SECONDS: waits until a TCP port accepts connections.
wait_port() {
  local host=$1 port=$2 secs=$3 i
  for ((i = 0; i < secs * 4; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  return 1
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# tls_ready: the certificates and secrets exist (scripts/stack/tls.sh up makes them).
tls_ready() { [ -s "$TLS_DIR/server.pem" ] && [ -s "$TLS_DIR/ca.crt" ]; }

# stamp FILE...: one checksum over FILEs; a service restarts/reloads when it changed.
stamp() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }
