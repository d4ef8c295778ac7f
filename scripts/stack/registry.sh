#!/usr/bin/env bash
# Schema registry: Apicurio Registry 3.0.9 on 127.0.0.1:$REGISTRY_PORT, Confluent-compatible API at
#   http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7   <- the URL clients use (not the root path)
# Why: Karapace is not published on PyPI (404) and GitHub is unreachable. Apicurio ships a runnable
# distribution on Maven Central; 3.0.9 is the newest one built for Java 17 (3.3.x needs Java 21).
# It really enforces compatibility (409 on violations). Storage is an H2 file DB under
# $STACK_DIR/registry/data, so schemas and ids survive restarts and the registry does not depend on
# Kafka (KafkaSQL storage was also tried: slower start, and its journal topic gets 7-day retention).
# Global default compatibility is BACKWARD.
#   registry.sh up | down | status
source "$(dirname "$0")/lib.sh"

APICURIO_VERSION=3.0.9
APICURIO_SHA1=4deac01752711c32da5662e7b778b61c5e904746
home="$STACK_CACHE/apicurio-registry-$APICURIO_VERSION"
jar="$home/apicurio-registry-app-$APICURIO_VERSION-runner.jar"
state="$STACK_DIR/registry"
pidfile="$state/registry.pid"
url="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"

# True when the pid file names a live registry (not a recycled pid after a reboot).
running() { pid_alive "$pidfile" && grep -qa 'apicurio-registry-app' "/proc/$(cat "$pidfile")/cmdline"; }
answers() { curl -sf -m 5 -o /dev/null "$url/subjects"; }

install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  [ -f "$jar" ] && return 0
  local tgz="$STACK_CACHE/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  if [ ! -f "$tgz" ]; then
    log "fetching Apicurio Registry $APICURIO_VERSION from Maven Central"
    command -v mvn >/dev/null || apt_install maven
    # dependency:get with transitive=false: the artifact's parent POM is not published, which
    # only costs us its (unneeded) dependency list.
    mvn -q -B -Dmaven.repo.local="$STACK_CACHE/m2" dependency:get -Dtransitive=false \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" >"$STACK_CACHE/apicurio-mvn.log" 2>&1 ||
      { tail -n 20 "$STACK_CACHE/apicurio-mvn.log" >&2; die "could not fetch apicurio-registry-app $APICURIO_VERSION"; }
    cp "$STACK_CACHE/m2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" "$tgz.part"
    echo "$APICURIO_SHA1  $tgz.part" | sha1sum -c --quiet - || { rm -f "$tgz.part"; die "checksum mismatch"; }
    mv "$tgz.part" "$tgz"
  fi
  rm -rf "$home" "$home.tmp" && mkdir -p "$home.tmp"
  tar -xzf "$tgz" -C "$home.tmp"
  [ -f "$home.tmp/${jar##*/}" ] || die "unexpected archive layout in $tgz"
  mv "$home.tmp" "$home" && rm -f "$tgz" "$STACK_CACHE/m2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/"*.tar.gz
}

up() {
  install
  if running; then
    wait_port 127.0.0.1 "$REGISTRY_PORT" 10 && answers && { log "registry already running (pid $(cat "$pidfile"))"; return 0; }
    die "registry pid $(cat "$pidfile") is running but not answering; see $state/registry.log"
  fi
  rm -f "$pidfile" # stale (crash or reboot)
  (exec 3<>"/dev/tcp/127.0.0.1/$REGISTRY_PORT") 2>/dev/null && die "port $REGISTRY_PORT is taken by another process"
  mkdir -p "$state/data"
  log "starting apicurio registry $APICURIO_VERSION on $url"
  local start=$SECONDS i
  (
    cd "$state"
    export QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$REGISTRY_PORT"
    export APICURIO_STORAGE_KIND=sql APICURIO_STORAGE_SQL_KIND=h2
    export APICURIO_DATASOURCE_URL="jdbc:h2:file:$state/data/registry"
    export APICURIO_RULES_GLOBAL_COMPATIBILITY=BACKWARD
    export APICURIO_CCOMPAT_USE_CANONICAL_HASH=true # same schema, other whitespace -> same id (like Confluent)
    export APICURIO_REST_DELETION_ARTIFACT_ENABLED=true APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED=true \
      APICURIO_REST_DELETION_GROUP_ENABLED=true # allow DELETE /subjects/... (tests clean up)
    export QUARKUS_HTTP_ACCESS_LOG_ENABLED=false QUARKUS_LOG_CONSOLE_ENABLE=false \
      QUARKUS_LOG_FILE_ENABLE=true QUARKUS_LOG_FILE_JSON=false QUARKUS_LOG_FILE_PATH="$state/registry.log"
    exec setsid nohup java -Xms64m -Xmx384m -jar "$jar" </dev/null >"$state/registry.out" 2>&1
  ) &
  echo $! >"$pidfile"
  for ((i = 0; i < 360; i++)); do
    answers && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 20 "$state/registry.log" "$state/registry.out" >&2 || true; die "registry exited"; }
    sleep 0.25
  done
  answers || die "registry did not become ready; see $state/registry.log"
  # The BACKWARD default is enforced but GET /config reports NONE until a global config is stored;
  # store it once, on an empty registry, so clients that read /config see the truth.
  if [ "$(curl -sf "$url/subjects")" = "[]" ] && curl -sf "$url/config" | grep -q '"NONE"'; then
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      -d '{"compatibility":"BACKWARD"}' "$url/config"
  fi
  log "registry ready in $((SECONDS - start))s (pid $(cat "$pidfile")), clients use $url"
}

down() {
  if ! running; then rm -f "$pidfile"; log "registry not running"; return 0; fi
  local pid i
  pid="$(cat "$pidfile")"
  log "stopping registry (pid $pid)"
  kill "$pid"
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "registry did not stop in 30s; killing"; kill -9 "$pid"; }
  rm -f "$pidfile"
}

status() {
  if running && answers; then
    printf 'registry  ready  %s\n' "$url"
  else
    printf 'registry  down\n'
    return 1
  fi
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
