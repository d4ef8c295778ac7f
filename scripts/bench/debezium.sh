#!/usr/bin/env bash
# The comparison tools of the benchmark, installed like the stack (cached downloads outside the
# clone, under $BENCH_CACHE = ~/.cache/cdcd-bench; the Maven repository is the stack's):
#   - Kafka Connect $KAFKA_VERSION (the stack's Kafka version): org.apache.kafka:connect-runtime and
#     connect-json resolved by mvn into $BENCH_CACHE/connect-$KAFKA_VERSION/libs (the stack's Kafka
#     libs do not hold Connect: scripts/stack/kafka.sh excludes connect-runtime);
#   - Debezium $DEBEZIUM_VERSION PostgreSQL and MySQL connectors: the official plugin archives
#     (io.debezium:debezium-connector-{postgres,mysql}:$DEBEZIUM_VERSION:tar.gz:plugin) unpacked into
#     $BENCH_CACHE/debezium-$DEBEZIUM_VERSION/plugins (Connect's plugin.path);
#   - Kafka Streams $KAFKA_VERSION (org.apache.kafka:kafka-streams) and Apache Avro into
#     $BENCH_CACHE/streams-$KAFKA_VERSION/libs, for the window comparison (javac compiles it).
# Nothing is started here: the harness (bench/cmd/cdcdbench) starts one Connect worker per
# scenario, on its own REST port, with its own offsets file, and stops it afterwards.
#   debezium.sh install   install what is missing (idempotent)
#   debezium.sh env       print the paths as shell assignments (CONNECT_LIBS=... PLUGIN_PATH=...)
set -euo pipefail

KAFKA_VERSION="${CDCD_KAFKA_VERSION:-4.3.1}"
DEBEZIUM_VERSION="${CDCD_DEBEZIUM_VERSION:-3.6.1.Final}"
LOG4J_VERSION=2.25.3
JACKSON_VERSION=2.21.2 # one Jackson: avro alone would bring an older jackson-core than kafka's databind
AVRO_VERSION=1.12.0 # decodes cdcd's records in the Kafka Streams program
STACK_CACHE="${CDCD_STACK_CACHE:-$HOME/.cache/cdcd-stack}"
BENCH_CACHE="${CDCD_BENCH_CACHE:-$HOME/.cache/cdcd-bench}"
M2="$STACK_CACHE/m2"
connect_home="$BENCH_CACHE/connect-$KAFKA_VERSION"
streams_home="$BENCH_CACHE/streams-$KAFKA_VERSION"
dbz_home="$BENCH_CACHE/debezium-$DEBEZIUM_VERSION"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

need() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# resolve HOME DEPS_XML: copies the runtime dependencies of DEPS_XML into HOME/libs.
resolve() {
  local home=$1 deps=$2
  [ -f "$home/.complete" ] && return 0
  mkdir -p "$home"
  cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cdcd</groupId><artifactId>bench-libs</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
$deps
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$home/libs"
  mvn -B -ntp -Dstyle.color=never -f "$home/pom.xml" -Dmaven.repo.local="$M2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs" >"$home/mvn.log" 2>&1 ||
    { tail -n 20 "$home/mvn.log" >&2; die "mvn could not resolve the jars for $home (see $home/mvn.log)"; }
  touch "$home/.complete"
}

# plugin NAME: unpacks Debezium's plugin archive of connector NAME into the plugin path.
plugin() {
  local name=$1 dir="$dbz_home/plugins/debezium-connector-$1"
  [ -f "$dir/.complete" ] && return 0
  local tgz="$M2/io/debezium/debezium-connector-$name/$DEBEZIUM_VERSION/debezium-connector-$name-$DEBEZIUM_VERSION-plugin.tar.gz"
  if [ ! -f "$tgz" ]; then
    log "fetching debezium-connector-$name $DEBEZIUM_VERSION (plugin archive) from Maven Central"
    mvn -q -B -Dmaven.repo.local="$M2" dependency:get -Dtransitive=false \
      -Dartifact="io.debezium:debezium-connector-$name:$DEBEZIUM_VERSION:tar.gz:plugin" >"$BENCH_CACHE/mvn-debezium-$name.log" 2>&1 ||
      { tail -n 20 "$BENCH_CACHE/mvn-debezium-$name.log" >&2; die "could not fetch debezium-connector-$name $DEBEZIUM_VERSION"; }
  fi
  rm -rf "$dir" && mkdir -p "$dbz_home/plugins"
  tar -xzf "$tgz" -C "$dbz_home/plugins"
  [ -d "$dir" ] || die "unexpected layout of $tgz (no debezium-connector-$name/)"
  touch "$dir/.complete"
}

install() {
  need
  mkdir -p "$BENCH_CACHE"
  if [ ! -f "$connect_home/.complete" ]; then log "resolving Kafka Connect $KAFKA_VERSION from Maven Central into $connect_home/libs"; fi
  resolve "$connect_home" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-json</artifactId><version>$KAFKA_VERSION</version></dependency>"
  if [ ! -f "$streams_home/.complete" ]; then log "resolving Kafka Streams $KAFKA_VERSION from Maven Central into $streams_home/libs"; fi
  resolve "$streams_home" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.avro</groupId><artifactId>avro</artifactId><version>$AVRO_VERSION</version></dependency>
    <dependency><groupId>com.fasterxml.jackson.core</groupId><artifactId>jackson-core</artifactId><version>$JACKSON_VERSION</version></dependency>"
  plugin postgres
  plugin mysql
}

env_() {
  printf 'CONNECT_LIBS=%q\nSTREAMS_LIBS=%q\nPLUGIN_PATH=%q\nKAFKA_VERSION=%q\nDEBEZIUM_VERSION=%q\n' \
    "$connect_home/libs" "$streams_home/libs" "$dbz_home/plugins" "$KAFKA_VERSION" "$DEBEZIUM_VERSION"
}

case "${1:-}" in
  install) install ;;
  env) env_ ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac
