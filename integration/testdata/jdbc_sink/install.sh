#!/usr/bin/env bash
# Installs what the JDBC sink test (integration/jdbc_sink_test.go) runs, from Maven Central,
# into $1 (a cache directory; idempotent): Kafka Connect (connect-runtime, connect-json) in
# libs/, and in plugins/ Debezium's JDBC sink connector (plugin archive) and Apicurio's Avro
# converter, which reads the Confluent framing cdcd writes. The Maven repository is the
# stack's. Prints nothing on success; on failure, the tail of Maven's log.
set -euo pipefail
KAFKA_VERSION=4.3.1
JDBC_VERSION=3.6.0.Final       # 3.6.1.Final is not on Maven Central
CONVERTER_VERSION=2.6.13.Final # Apicurio 3's converter does not resolve (its parent POM is not published)
LOG4J_VERSION=2.25.3
home=$1
M2="${CDCD_STACK_CACHE:-$HOME/.cache/cdcd-stack}/m2"
[ -f "$home/.complete" ] && exit 0
command -v java >/dev/null && command -v mvn >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless maven >/dev/null
}
rm -rf "$home" && mkdir -p "$home/plugins"
mvnq() { mvn -B -ntp -Dstyle.color=never -Dmaven.repo.local="$M2" "$@" >>"$home/mvn.log" 2>&1 || { tail -n 30 "$home/mvn.log" >&2; exit 1; }; }
pom() { # pom NAME DEPENDENCIES
  cat >"$home/$1.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cdcd</groupId><artifactId>$1</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>$2</dependencies>
</project>
POM
}
pom connect "
  <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$KAFKA_VERSION</version></dependency>
  <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-json</artifactId><version>$KAFKA_VERSION</version></dependency>
  <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>"
mvnq -f "$home/connect.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs"
pom converter "
  <dependency><groupId>io.apicurio</groupId><artifactId>apicurio-registry-utils-converter</artifactId><version>$CONVERTER_VERSION</version>
    <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>"
mvnq -f "$home/converter.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/plugins/apicurio-converter"
mvnq dependency:get -Dtransitive=false -Dartifact="io.debezium:debezium-connector-jdbc:$JDBC_VERSION:tar.gz:plugin"
tar -xzf "$M2/io/debezium/debezium-connector-jdbc/$JDBC_VERSION/debezium-connector-jdbc-$JDBC_VERSION-plugin.tar.gz" -C "$home/plugins"
[ -d "$home/plugins/debezium-connector-jdbc" ] || { echo "unexpected layout of the JDBC sink's plugin archive" >&2; exit 1; }
touch "$home/.complete"
