#!/usr/bin/env bash
# A real single-node CQL server (Apache Cassandra, which speaks the protocol
# ScyllaDB speaks) on 127.0.0.1:9042, run from Maven Central jars.
#
#   scripts/cassandra.sh start   fetch jars once (cached), start, wait for CQL
#   scripts/cassandra.sh stop    stop it (waits for the process to exit)
#   scripts/cassandra.sh status  exit 0 when CQL answers on the port
#   scripts/cassandra.sh reset   stop and delete its data
#
# Idempotent: start on a running server only checks it answers.
# Environment: CHATD_CASSANDRA_VERSION (5.0.4), CHATD_CASSANDRA_DIR
# (third_party/cache/cassandra), CHATD_CASSANDRA_RUN (data, logs, pid;
# default $CHATD_CASSANDRA_DIR/run), CHATD_CASSANDRA_HOST (127.0.0.1: the
# address it binds), CHATD_CASSANDRA_PORT (9042),
# CHATD_CASSANDRA_HEAP (1g), CHATD_CASSANDRA_START_TIMEOUT (seconds, 240).
set -euo pipefail
cd "$(dirname "$0")/.."

version="${CHATD_CASSANDRA_VERSION:-5.0.4}"
base="${CHATD_CASSANDRA_DIR:-$PWD/third_party/cache/cassandra}"
host="${CHATD_CASSANDRA_HOST:-127.0.0.1}"
port="${CHATD_CASSANDRA_PORT:-9042}"
heap="${CHATD_CASSANDRA_HEAP:-1g}"
start_timeout="${CHATD_CASSANDRA_START_TIMEOUT:-240}"
lib="$base/lib-$version"
run="${CHATD_CASSANDRA_RUN:-$base/run}"
pid_file="$run/cassandra.pid"
log_file="$run/logs/stdout.log"

log() { echo "cassandra: $*" >&2; }

# A CQL v4 OPTIONS frame; a live server answers SUPPORTED (response version
# byte 0x84). Only bash is needed, so this works before any client is built.
cql_answers() {
  local reply
  reply="$(timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port || exit 1
    printf '\x04\x00\x00\x00\x05\x00\x00\x00\x00' >&3
    head -c 1 <&3 | od -An -tx1" 2>/dev/null)" || return 1
  [ "$(echo "$reply" | tr -d ' \n')" = "84" ]
}

running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid="$(cat "$pid_file")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

fetch() {
  if [ -f "$lib/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "maven (mvn) is required"; exit 1; }
  mkdir -p "$base"
  cat >"$base/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>chatd.local</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
EOF
  log "fetching cassandra-all $version and its dependencies from Maven Central"
  rm -rf "$lib"
  (cd "$base" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib")
  touch "$lib/.complete"
}

write_config() {
  mkdir -p "$run/conf" "$run/data" "$run/commitlog" "$run/saved_caches" "$run/hints" "$run/cdc_raw" "$run/logs"
  # Sized for a 2-core test machine and many small keyspaces (tests create
  # one per store or process): small memtables and caches, no slab per
  # memtable (unslabbed: a slab is 1 MiB of heap per table), no snapshots on
  # DROP/TRUNCATE.
  cat >"$run/conf/cassandra.yaml" <<EOF
cluster_name: chatd-test
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories:
  - $run/data
commitlog_directory: $run/commitlog
saved_caches_directory: $run/saved_caches
hints_directory: $run/hints
cdc_raw_directory: $run/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 16MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$host:7000"
listen_address: $host
rpc_address: $host
storage_port: 7000
start_native_transport: true
native_transport_port: $port
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
memtable_allocation_type: unslabbed_heap_buffers
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
# Every keyspace prepares its own statements; the default cache (10 MiB at
# this heap) thrashes with a test run's hundreds of keyspaces, and a
# statement evicted between its re-prepare and its retry fails the request.
prepared_statements_cache_size: 128MiB
counter_cache_size: 0MiB
concurrent_reads: 8
concurrent_writes: 16
concurrent_counter_writes: 4
concurrent_compactors: 1
compaction_throughput: 64MiB/s
read_request_timeout: 5000ms
write_request_timeout: 5000ms
cas_contention_timeout: 2000ms
range_request_timeout: 10000ms
request_timeout: 10000ms
disk_optimization_strategy: ssd
EOF
  cat >"$run/conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$run/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level %date{ISO8601} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
EOF
}

# The module flags of Cassandra's conf/jvm17-server.options (JDK 17 closes
# these internals; Cassandra reaches into them for off-heap memory, NIO and
# JMX).
jvm17_flags=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.math=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED
)

start() {
  if cql_answers; then
    log "already answering on $host:$port"
    return 0
  fi
  if pid="$(running_pid)"; then
    log "process $pid exists but CQL is not answering yet; waiting"
  else
    command -v java >/dev/null || { log "java (JDK 17) is required"; exit 1; }
    fetch
    write_config
    local jamm
    jamm="$(ls "$lib"/jamm-*.jar | head -1)"
    log "starting Cassandra $version (heap $heap, data in $run)"
    # setsid: the server outlives the shell that started it (CI steps, tests)
    # and is stopped only through its pid file.
    setsid java \
      -Xms"$heap" -Xmx"$heap" -Xss256k \
      -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 \
      -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$run/logs" \
      "${jvm17_flags[@]}" \
      -javaagent:"$jamm" \
      -Dcassandra.config="file://$run/conf/cassandra.yaml" \
      -Dlogback.configurationFile="file://$run/conf/logback.xml" \
      -Dcassandra.logdir="$run/logs" \
      -Dcassandra.storagedir="$run" \
      -Dcassandra-foreground=yes \
      -Dcassandra.jmx.local.port=7199 \
      -Dcassandra.skip_wait_for_gossip_to_settle=0 \
      -Dcassandra.ring_delay_ms=1000 \
      -Dcassandra.superuser_setup_delay_ms=0 \
      -Dcassandra.unsafesystem=true \
      -Dcassandra.test.flush_local_schema_changes=false \
      -Dcassandra.disable_auth_caches_remote_configuration=true \
      -cp "$run/conf:$lib/*" \
      org.apache.cassandra.service.CassandraDaemon \
      >"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
  fi
  local waited=0
  until cql_answers; do
    if ! running_pid >/dev/null; then
      log "server exited during start; last lines of $log_file and system.log:"
      tail -n 30 "$log_file" >&2 || true
      tail -n 30 "$run/logs/system.log" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge "$start_timeout" ]; then
      log "CQL not answering after ${start_timeout}s; see $run/logs/system.log"
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "CQL answering on $host:$port (after ${waited}s)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$pid_file"
    log "not running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "process $pid did not exit in 60s; killing"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if cql_answers; then
      log "answering on $host:$port"
    else
      log "not answering on $host:$port"
      exit 1
    fi
    ;;
  reset)
    stop
    rm -rf "$run"
    log "data removed"
    ;;
  *)
    echo "usage: $0 start|stop|status|reset" >&2
    exit 2
    ;;
esac
