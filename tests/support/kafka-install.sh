#!/usr/bin/env bash
# Installs Apache Kafka (broker, tools, clients, log4j2 backend) from Maven Central into a cache
# directory and compiles the Java scenario client against it. Idempotent: a second run with the same
# version and the same Scenario.java is a few file checks.
#
# Needs: Java 17+ (javac), Maven 3. Network: Maven Central (first run only).
#
# Environment:
#   SLUICE_CACHE     cache root (default: $HOME/.cache/sluice)
#   KAFKA_VERSION    Kafka version (default below: the newest 4.x for which kafka_2.13, kafka-tools and
#                    kafka-clients are all published on Maven Central)
#
# Output (stdout, last line): the libs directory. Layout under $SLUICE_CACHE/kafka-$KAFKA_VERSION:
#   libs/                   every jar (classpath: libs/*)
#   config/log4j2-broker.properties, config/log4j2-client.properties
#   scenario/               compiled Scenario client (classpath: scenario:libs/*)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
LOG4J_VERSION="${LOG4J_VERSION:-2.25.5}"
SLF4J_VERSION="${SLF4J_VERSION:-2.0.17}"
CACHE_ROOT="${SLUICE_CACHE:-$HOME/.cache/sluice}"
HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$HOME_DIR/libs"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCENARIO_SRC="$HERE/../clients/java/Scenario.java"

log() { echo "kafka-install: $*" >&2; }

mkdir -p "$HOME_DIR"
# Serialise concurrent installs (parallel test binaries, CI jobs sharing a cache).
exec 9>"$HOME_DIR/.lock"
flock 9

stamp="kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION slf4j=$SLF4J_VERSION"
if [[ ! -f "$LIBS/.complete" || "$(cat "$LIBS/.complete")" != "$stamp" ]]; then
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- Kafka 4.x logs through slf4j to log4j2. The poms declare slf4j-api 1.7; the log4j2 binding
         for slf4j 2 needs slf4j-api 2 (backwards compatible for callers), so pin it here. -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS.tmp"
  mkdir -p "$LIBS.tmp"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIBS.tmp" \
      -DincludeScope=runtime -DexcludeTransitive=false) >&2
  # Kafka would otherwise also find a second slf4j binding if one sneaks in transitively.
  rm -f "$LIBS.tmp"/slf4j-reload4j-*.jar "$LIBS.tmp"/slf4j-log4j12-*.jar "$LIBS.tmp"/log4j-slf4j-impl-*.jar
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  echo "$stamp" >"$LIBS/.complete"
fi

mkdir -p "$HOME_DIR/config"
# Broker logging: everything to stdout (the harness redirects it into the node's log file).
cat >"$HOME_DIR/config/log4j2-broker.properties" <<'CFG'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
CFG
# Client logging: warnings only, to stderr (stdout carries the scenario's JSON result).
cat >"$HOME_DIR/config/log4j2-client.properties" <<'CFG'
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
CFG

# Scenario client: recompile when its source changes.
if [[ -f "$SCENARIO_SRC" ]]; then
  sum="$(sha256sum "$SCENARIO_SRC" | cut -d' ' -f1)"
  out="$HOME_DIR/scenario"
  if [[ ! -f "$out/.source-sha256" || "$(cat "$out/.source-sha256")" != "$sum" ]]; then
    log "compiling $SCENARIO_SRC"
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    javac -nowarn -encoding UTF-8 --release 17 -cp "$LIBS/*" -d "$out.tmp" "$SCENARIO_SRC" >&2
    echo "$sum" >"$out.tmp/.source-sha256"
    rm -rf "$out"
    mv "$out.tmp" "$out"
  fi
fi

echo "$LIBS"
