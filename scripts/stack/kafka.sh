#!/usr/bin/env bash
# Apache Kafka 4.3.1, KRaft mode, one node acting as broker + controller, on 127.0.0.1:$KAFKA_PORT
# (PLAINTEXT; controller listener on 127.0.0.1:$KAFKA_CONTROLLER_PORT), plus a SASL_SSL listener on
# 127.0.0.1:$KAFKA_SASL_SSL_PORT: TLS with the stack's server certificate (scripts/stack/tls.sh),
# SCRAM-SHA-512 login for the user in $TLS_DIR/kafka.user (created or updated at every "up" through
# the PLAINTEXT listener, so an existing data dir gets it too). No authorizer: an authenticated
# user may do anything, transactions included.
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
# The broker's JVM flags; CDCD_KAFKA_JVM_OPTS replaces them, and a change restarts a running
# broker at the next "up".
KAFKA_JVM_OPTS="${CDCD_KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20}"

# True when the pid file names a live Kafka broker (not a recycled pid after a reboot).
running() { pid_alive "$pidfile" && grep -qa 'kafka\.Kafka' "/proc/$(cat "$pidfile")/cmdline"; }


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
  # shellcheck disable=SC2086 # split into one flag per line
  printf '%s\n' $KAFKA_JVM_OPTS >"$state/jvm.options"
  cat >"$state/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/server.pem
listener.name.sasl_ssl.ssl.client.auth=none
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

# scram_user: creates (or resets) the SCRAM-SHA-512 user of the SASL_SSL listener through the
# PLAINTEXT listener. The password goes through a 0600 java @argfile (ConfigCommand's
# --add-config-file mangles SCRAM keys), never the command line, and no output is shown: the
# tool echoes the password in its errors.
scram_user() {
  local f="$state/scram.args"
  (umask 077 && printf '%s\n' kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter \
    --entity-type users --entity-name "$(cat "$TLS_DIR/kafka.user")" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "$TLS_DIR/kafka.password")]" >"$f")
  (umask 077 && kafka_tool "@$f" >"$state/scram.log" 2>&1) ||
    { rm -f "$f"; die "creating the SCRAM user failed; see $state/scram.log"; }
  rm -f "$f"
}

# sasl_ready: a client logs in over SASL_SSL (CA-checked) and lists topics.
sasl_ready() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_SASL_SSL_PORT" \
    --command-config "$TLS_DIR/kafka-client.properties" --list >/dev/null
}

# config_stamp: what the running broker must have been started with (config, JVM flags and
# TLS material).
config_stamp() { stamp "$state/server.properties" "$state/jvm.options" "$TLS_DIR/server.pem"; }

start() {
  rm -f "$pidfile" # stale (crash or reboot)
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process"
  port_open "$KAFKA_SASL_SSL_PORT" && die "port $KAFKA_SASL_SSL_PORT (SASL_SSL) is taken by another process"
  if [ ! -f "$state/data/meta.properties" ]; then
    local cluster_id
    # A base64url id may start with '-', which the tool's argument parser takes for an option.
    cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | sed 's/^-/A/')"
    log "formatting KRaft storage (cluster id $cluster_id)"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" >"$state/format.log" 2>&1 ||
      die "storage format failed; see $state/format.log"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (SASL_SSL on $KAFKA_SASL_SSL_PORT)"
  local start=$SECONDS i
  # shellcheck disable=SC2046 # one flag per line in jvm.options
  setsid nohup java $(cat "$state/jvm.options") -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$state/log4j2.properties" -Dkafka.logs.dir="$state" \
    -cp "$home/libs/*" kafka.Kafka "$state/server.properties" </dev/null >"$state/kafka.out" 2>&1 &
  echo $! >"$pidfile"
  config_stamp >"$state/running.stamp"
  for ((i = 0; i < 360; i++)); do
    port_open "$KAFKA_PORT" && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 20 "$state/server.log" "$state/kafka.out" >&2 || true; die "kafka exited during start-up"; }
    sleep 0.25
  done
  ready 1 || die "kafka did not become ready; see $state/server.log"
  log "kafka ready in $((SECONDS - start))s (pid $(cat "$pidfile"))"
}

up() {
  install
  tls_ready || die "no TLS material in $TLS_DIR; run scripts/stack/tls.sh up first (stack.sh up does)"
  write_config
  if running; then
    if [ "$(cat "$state/running.stamp" 2>/dev/null)" != "$(config_stamp)" ]; then
      # An older stack (no SASL_SSL listener) or new certificates: the broker must restart.
      log "kafka configuration or certificates changed; restarting kafka"
      down
      start
    elif ready 10; then
      log "kafka already running (pid $(cat "$pidfile"))"
    else
      die "kafka pid $(cat "$pidfile") is running but not answering; see $state/server.log"
    fi
  else
    start
  fi
  scram_user
  local i
  for ((i = 0; i < 3; i++)); do sasl_ready && break; sleep 1; done
  [ "$i" -lt 3 ] || die "kafka's SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_SSL_PORT refuses the stack's SCRAM user; see $state/server.log"
  log "kafka SASL_SSL ready on 127.0.0.1:$KAFKA_SASL_SSL_PORT (user $(cat "$TLS_DIR/kafka.user"), CA $TLS_DIR/ca.crt)"
}

down() {
  if ! running; then rm -f "$pidfile"; log "kafka not running"; return 0; fi
  local pid i
  pid="$(cat "$pidfile")"
  log "stopping kafka (pid $pid)"
  kill "$pid"
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "kafka did not stop in 60s; killing"; kill -9 "$pid"; }
  rm -f "$pidfile" "$state/running.stamp"
}

status() {
  if running && port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_SSL_PORT"; then
    printf 'kafka     ready  127.0.0.1:%s (SASL_SSL 127.0.0.1:%s)\n' "$KAFKA_PORT" "$KAFKA_SASL_SSL_PORT"
  else
    printf 'kafka     down\n'
    return 1
  fi
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
