#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, controller + broker in one
# JVM) on 127.0.0.1:9092, from Maven Central jars, for tests and development.
#
#   scripts/kafka.sh start    # fetches jars once, formats storage once, starts, waits until it answers
#   scripts/kafka.sh stop     # clean shutdown (SIGTERM, then SIGKILL after 60 s); data is kept
#   scripts/kafka.sh status   # exit 0 if running and answering
#   scripts/kafka.sh clean    # stop and delete the data (jars stay cached)
#
# The broker version is docs/adr/005-kafka-broker-version.md's decision.
# Environment: CHATD_KAFKA_VERSION (default below), CHATD_KAFKA_CACHE (jars,
# default third_party/cache/kafka), CHATD_KAFKA_DATA (logs, pid, data; default
# $CHATD_KAFKA_CACHE/run), CHATD_KAFKA_HOST (127.0.0.1: the address it binds
# and advertises), CHATD_KAFKA_PORT (9092), CHATD_KAFKA_HEAP (512m).
set -euo pipefail
cd "$(dirname "$0")/.."

version="${CHATD_KAFKA_VERSION:-4.1.1}"
cache="${CHATD_KAFKA_CACHE:-$PWD/third_party/cache/kafka}"
run="${CHATD_KAFKA_DATA:-$cache/run}"
host="${CHATD_KAFKA_HOST:-127.0.0.1}"
port="${CHATD_KAFKA_PORT:-9092}"
controller_port=$((port + 1))
heap="${CHATD_KAFKA_HEAP:-512m}"
jars="$cache/jars-$version"
pidfile="$run/kafka.pid"
bootstrap="$host:$port"

log() { echo "kafka.sh: $*" >&2; }

running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

answers() { timeout 10 kcat -b "$bootstrap" -L -m 3 >/dev/null 2>&1; }

fetch_jars() {
  [[ -f "$jars/.complete" ]] && return 0
  command -v mvn >/dev/null || { log "maven is missing (scripts/setup.sh installs it)"; exit 1; }
  local work="$cache/pom-$version"
  mkdir -p "$work"
  # Kafka 4 logs through log4j 2 (its own dependencies bring log4j-core);
  # the slf4j 1.7 binding (Kafka 4 still uses slf4j-api 1.7) routes the broker's slf4j calls to it.
  cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>chatd.local</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  log "fetching Apache Kafka $version jars from Maven Central (once)"
  rm -rf "$jars.tmp"
  mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jars.tmp" >&2
  rm -rf "$jars"
  mv "$jars.tmp" "$jars"
  touch "$jars/.complete"
}

write_config() {
  mkdir -p "$run/data"
  cat >"$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$controller_port
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$run/data
num.partitions=12
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A test machine: groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
delete.topic.enable=true
# Tests create many small topics: keep segments and indexes small.
log.segment.bytes=16777216
log.index.size.max.bytes=1048576
log.retention.hours=24
num.network.threads=2
num.io.threads=4
PROPS
  cat >"$run/log4j2.properties" <<'L4J'
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
L4J
}

start() {
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    answers || wait_ready
    return 0
  fi
  if answers; then
    log "a broker already answers on $bootstrap (not started by this script); using it"
    return 0
  fi
  fetch_jars
  write_config
  local cp="$jars/*"
  if [[ ! -f "$run/data/meta.properties" ]]; then
    local id
    id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    log "formatting KRaft storage in $run/data (cluster $id)"
    java -Dlog4j2.configurationFile="$run/log4j2.properties" -Dkafka.logs.dir="$run" -cp "$cp" \
      kafka.tools.StorageTool format -t "$id" -c "$run/server.properties" >"$run/format.log" 2>&1 ||
      { cat "$run/format.log" >&2; exit 1; }
  fi
  log "starting Apache Kafka $version on $bootstrap (heap $heap, data $run/data)"
  # setsid: the broker must not die with the shell (or the test) that started it.
  setsid java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$run/log4j2.properties" -Dkafka.logs.dir="$run" \
    -cp "$cp" kafka.Kafka "$run/server.properties" >"$run/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if answers; then
      log "ready on $bootstrap (pid $(cat "$pidfile" 2>/dev/null || echo '?'))"
      return 0
    fi
    if [[ -f "$pidfile" ]] && ! running_pid >/dev/null; then
      log "the broker exited during start-up; last lines of $run/server.log and stdout.log:"
      tail -n 30 "$run/server.log" "$run/stdout.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
  log "not answering on $bootstrap after 90 s (see $run/server.log)"
  exit 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$pidfile"
    return 0
  fi
  log "stopping (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 60 s, killing"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if pid="$(running_pid)" && answers; then
      echo "running (pid $pid) on $bootstrap, Apache Kafka $version"
    elif answers; then
      echo "a broker not started by this script answers on $bootstrap"
    else
      echo "not running"
      exit 3
    fi
    ;;
  clean)
    stop
    rm -rf "$run"
    log "data removed"
    ;;
  *)
    echo "usage: $0 start|stop|status|clean" >&2
    exit 2
    ;;
esac
