#!/usr/bin/env bash
# Apache Kafka 4.3.1, KRaft mode, one node acting as broker + controller, on 127.0.0.1:$KAFKA_PORT
# (controller listener on 127.0.0.1:$KAFKA_CONTROLLER_PORT).
# Only Maven Central is reachable (no Apache tarball), so the jars are resolved by mvn from
# org.apache.kafka:kafka_2.13 + kafka-tools (TopicCommand & co.) + the log4j2 binding Kafka 4.x uses
# (its slf4j-api is 1.7, hence log4j-slf4j-impl), into $STACK_CACHE/kafka-$KAFKA_VERSION/libs.
# 4.3.1 is the newest release whose kafka-tools is on Central (4.4.0's is missing); it runs on Java 17.
# Replication factors / min ISR are 1 so transactions and consumer groups work on a single node.
#   kafka.sh up | down | status
source "$(dirname "$0")/lib.sh"

KAFKA_VERSION="${CDCD_KAFKA_VERSION:-4.3.1}"
LOG4J_VERSION=2.25.3
home="$STACK_CACHE/kafka-$KAFKA_VERSION"
state="$STACK_DIR/kafka"
pidfile="$state/kafka.pid"

# True when the pid file names a live Kafka broker (not a recycled pid after a reboot).
running() { pid_alive "$pidfile" && grep -qa 'kafka\.Kafka' "/proc/$(cat "$pidfile")/cmdline"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# kafka_tool CLASS ARGS...: runs a short-lived Kafka command-line class with quiet logging.
kafka_tool() {
  timeout 60 java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$state/tools-log4j2.properties" -cp "$home/libs/*" "$@"
}

install() {
  [ -f "$home/.complete" ] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "resolving Kafka $KAFKA_VERSION jars from Maven Central into $home/libs"
  mkdir -p "$home"
  cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cdcd</groupId><artifactId>kafka-libs</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$home/libs"
  mvn -B -ntp -Dstyle.color=never -f "$home/pom.xml" -Dmaven.repo.local="$STACK_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs" >"$home/mvn.log" 2>&1 ||
    { tail -n 20 "$home/mvn.log" >&2; die "mvn could not resolve Kafka $KAFKA_VERSION (see $home/mvn.log)"; }
  touch "$home/.complete"
}

write_config() {
  mkdir -p "$state"
  cat >"$state/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
# Transactions v2: a produce that opens the next transaction right after a commit meets
# CONCURRENT_TRANSACTIONS until the markers are written, and the broker retries after this
# backoff (default 20 ms, which alone would add ~20 ms to every back-to-back transaction).
add.partitions.to.txn.retry.backoff.ms=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  # Broker logs go to a size-capped file; stdout only gets JVM-level noise.
  cat >"$state/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $state/server.log
appender.file.filePattern = $state/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
EOF
  cat >"$state/tools-log4j2.properties" <<EOF
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
EOF
}

# ready SECS: the port answers within SECS and a real metadata request (list topics) succeeds.
ready() {
  wait_port 127.0.0.1 "$KAFKA_PORT" "$1" &&
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null
}

up() {
  install
  write_config
  if running; then
    ready 10 && { log "kafka already running (pid $(cat "$pidfile"))"; return 0; }
    die "kafka pid $(cat "$pidfile") is running but not answering; see $state/server.log"
  fi
  rm -f "$pidfile" # stale (crash or reboot)
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process"
  if [ ! -f "$state/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    log "formatting KRaft storage (cluster id $cluster_id)"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" >"$state/format.log" 2>&1 ||
      die "storage format failed; see $state/format.log"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  local start=$SECONDS i
  setsid nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$state/log4j2.properties" -Dkafka.logs.dir="$state" \
    -cp "$home/libs/*" kafka.Kafka "$state/server.properties" </dev/null >"$state/kafka.out" 2>&1 &
  echo $! >"$pidfile"
  for ((i = 0; i < 360; i++)); do
    port_open "$KAFKA_PORT" && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 20 "$state/server.log" "$state/kafka.out" >&2 || true; die "kafka exited during start-up"; }
    sleep 0.25
  done
  ready 1 || die "kafka did not become ready; see $state/server.log"
  log "kafka ready in $((SECONDS - start))s (pid $(cat "$pidfile"))"
}

down() {
  if ! running; then rm -f "$pidfile"; log "kafka not running"; return 0; fi
  local pid i
  pid="$(cat "$pidfile")"
  log "stopping kafka (pid $pid)"
  kill "$pid"
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "kafka did not stop in 60s; killing"; kill -9 "$pid"; }
  rm -f "$pidfile"
}

status() {
  if running && port_open "$KAFKA_PORT"; then
    printf 'kafka     ready  127.0.0.1:%s\n' "$KAFKA_PORT"
  else
    printf 'kafka     down\n'
    return 1
  fi
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
