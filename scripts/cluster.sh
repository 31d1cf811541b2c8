#!/usr/bin/env bash
# The distributed layout on one machine: every role of chatd its own process,
# on a real Kafka broker and a real CQL server.
#
#   scripts/cluster.sh up       # starts what is missing (a process that died comes
#                               # back on its old port), waits until all are ready,
#                               # prints "gateway http://HOST:PORT" as its last line
#   scripts/cluster.sh down     # stops every process it started (and the broker and
#                               # CQL server if it started them); leaves none behind
#   scripts/cluster.sh status   # one line per process; exit 3 if any is down
#
# Processes: discovery, presence, notification, two main-chat (one consumer
# group), three chat servers in three regions (Singapore, Frankfurt,
# Virginia) and a gateway. Every CHATD_* variable of the environment reaches
# every process and wins over this script's defaults (secrets, the admin,
# the webhook, timeouts, keyspace, topic prefix, ...).
#
# Environment of the script itself:
#   CHATD_CLUSTER_DIR    state, logs and pids (default .cluster in the checkout)
#   CHATD_CLUSTER_HOST   address every listener binds (default 127.0.0.1)
#   CHATD_CLUSTER_CHAT_SERVERS  how many chat servers, 1..3 (default 3)
#   CHATD_BINARY         the chatd binary (default build/chatd)
#   CHATD_CLUSTER_SERVERS=0  do not start Kafka or the CQL server (use running ones)
# Per-process logs are in $CHATD_CLUSTER_DIR/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

dir="${CHATD_CLUSTER_DIR:-$root/.cluster}"
host="${CHATD_CLUSTER_HOST:-127.0.0.1}"
binary="${CHATD_BINARY:-$root/build/chatd}"
n_chat="${CHATD_CLUSTER_CHAT_SERVERS:-3}"
ready_timeout="${CHATD_CLUSTER_READY_TIMEOUT:-90}"

log() { echo "cluster.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# name role region lat lon: the chat servers, nearest first for nobody.
chat_servers=(
  "chat-sg chat-server asia-southeast 1.3521 103.8198"
  "chat-fra chat-server europe-central 50.1109 8.6821"
  "chat-va chat-server us-east 38.0293 -78.4767"
)

pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
# Running and not a zombie: the processes are orphans once `up` returns, and
# whoever inherits them may take a while to reap them.
pid_alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}
alive() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] && pid_alive "$pid"
}

# The address a process announced for a role ("listening <role> <addr>").
address_of() {
  local name="$1" role="$2"
  [[ -f "$dir/$name.out" ]] || return 0
  awk -v r="$role" '$1 == "listening" && $2 == r { print $3 }' "$dir/$name.out" | tail -1
}

wait_listening() {
  local name="$1" role="$2" deadline=$((SECONDS + ready_timeout)) addr
  while ((SECONDS < deadline)); do
    addr="$(address_of "$name" "$role")"
    if [[ -n "$addr" ]] && curl -fsS -o /dev/null "http://$addr/healthz"; then
      echo "$addr"
      return 0
    fi
    alive "$name" || {
      log "$name exited; the end of $dir/$name.log:"
      tail -20 "$dir/$name.log" >&2 || true
      return 1
    }
    sleep 0.2
  done
  log "$name did not answer /healthz within ${ready_timeout}s; see $dir/$name.log"
  return 1
}

# start <name> <role> [VAR=value ...]: the script's defaults for this process,
# each overridden by the same variable in the caller's environment.
start() {
  local name="$1" role="$2"
  shift 2
  if alive "$name"; then
    log "$name already running (pid $(pid_of "$name"))"
    return 0
  fi
  # A process that died gets its old port back, so that the URLs the others
  # were given (discovery, presence, notification) stay right.
  local previous
  previous="$(address_of "$name" "$role")"
  local envs=() kv key
  for kv in "${defaults[@]}" "$@"; do
    key="${kv%%=*}"
    # The caller's value wins: it is inherited, so skip the default.
    if [[ -n "${!key+x}" ]]; then continue; fi
    if [[ -n "$previous" && "$key" == *_LISTEN && "$kv" == *:0 ]]; then kv="${kv%:0}:${previous##*:}"; fi
    envs+=("$kv")
  done
  mkdir -p "$dir/data/$name"
  : >"$dir/$name.out"
  env "${envs[@]}" CHATD_STORAGE_PATH="${CHATD_STORAGE_PATH:-$dir/data/$name}" \
    setsid "$binary" "$role" >"$dir/$name.out" 2>>"$dir/$name.log" </dev/null &
  echo $! >"$dir/$name.pid"
  grep -qx "$name $role" "$dir/started" 2>/dev/null || echo "$name $role" >>"$dir/started"
}

servers_up() {
  [[ "${CHATD_CLUSTER_SERVERS:-1}" == 0 ]] && return 0
  local s
  for s in cassandra kafka; do
    if ! "scripts/$s.sh" status >/dev/null 2>&1; then
      log "starting $s"
      "scripts/$s.sh" start >&2
      echo "$s" >>"$dir/engines"
    fi
  done
}

up() {
  [[ -x "$binary" ]] || die "no chatd binary at $binary (run scripts/setup.sh)"
  ((n_chat >= 1 && n_chat <= 3)) || die "CHATD_CLUSTER_CHAT_SERVERS must be 1..3"
  mkdir -p "$dir"
  servers_up

  # One internal secret for every process (tokens and internal calls).
  [[ -f "$dir/secret" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret"
  defaults=(
    CHATD_STORAGE_BACKEND=scylla
    CHATD_STORAGE_HOSTS=127.0.0.1:9042
    CHATD_STORAGE_KEYSPACE=chatd_cluster
    CHATD_STORAGE_CONSISTENCY=one
    CHATD_QUEUE_BACKEND=kafka
    CHATD_QUEUE_BROKERS=127.0.0.1:9092
    CHATD_QUEUE_TOPIC_PREFIX=chatd-cluster.
    CHATD_QUEUE_PARTITIONS=6
    CHATD_AUTH_JWT_SECRET="$(cat "$dir/secret")"
    CHATD_AUTH_PASSWORD_COST=fast
    CHATD_PRESENCE_TIMEOUT_MS=6000
  )

  start discovery discovery CHATD_DISCOVERY_LISTEN="$host:0"
  start presence presence CHATD_PRESENCE_LISTEN="$host:0"
  start notification notification CHATD_NOTIFICATIONS_LISTEN="$host:0"
  local discovery presence notification
  discovery="$(wait_listening discovery discovery)" || die "discovery did not start"
  presence="$(wait_listening presence presence)" || die "presence did not start"
  notification="$(wait_listening notification notification)" || die "notification did not start"
  defaults+=(
    CHATD_DISCOVERY_URL="http://$discovery"
    CHATD_PRESENCE_URL="http://$presence"
    CHATD_NOTIFICATIONS_URL="http://$notification"
  )

  start main-chat-1 main-chat CHATD_MAIN_CHAT_LISTEN="$host:0"
  start main-chat-2 main-chat CHATD_MAIN_CHAT_LISTEN="$host:0"
  local i name role region lat lon
  for ((i = 0; i < n_chat; i++)); do
    read -r name role region lat lon <<<"${chat_servers[$i]}"
    start "$name" chat-server CHATD_CHAT_SERVER_LISTEN="$host:0" CHATD_CHAT_SERVER_ID="$name" \
      CHATD_CHAT_SERVER_REGION="$region" CHATD_CHAT_SERVER_LAT="$lat" CHATD_CHAT_SERVER_LON="$lon"
  done
  start gateway gateway CHATD_GATEWAY_LISTEN="$host:0"

  wait_listening main-chat-1 main-chat >/dev/null || die "main-chat-1 did not start"
  wait_listening main-chat-2 main-chat >/dev/null || die "main-chat-2 did not start"
  for ((i = 0; i < n_chat; i++)); do
    read -r name role region lat lon <<<"${chat_servers[$i]}"
    wait_listening "$name" chat-server >/dev/null || die "$name did not start"
  done
  local gateway deadline=$((SECONDS + ready_timeout))
  gateway="$(wait_listening gateway gateway)" || die "gateway did not start"
  # Ready: the gateway reaches the queue, and discovery lists every chat server.
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null "http://$gateway/readyz" && (($(count_servers "$discovery") >= n_chat)); then
      echo "gateway http://$gateway"
      return 0
    fi
    sleep 0.2
  done
  die "the cluster did not become ready within ${ready_timeout}s"
}

# Chat servers discovery lists, through its signed internal route.
count_servers() {
  local addr="$1" ts sig path=/v1/internal/discovery/servers secret
  secret="${CHATD_AUTH_JWT_SECRET:-$(cat "$dir/secret")}"
  ts="$(date +%s)"
  sig="$(printf '%s\nGET\n%s\n' "$ts" "$path" | openssl dgst -sha256 -hmac "$secret" -hex | awk '{print $NF}')"
  { curl -fsS -H "X-Chatd-Internal-Timestamp: $ts" -H "X-Chatd-Internal-Signature: sha256=$sig" "http://$addr$path" ||
    true; } | grep -o '"id"' | wc -l
}

# SIGTERM to a group of processes at once, then wait for all of them
# (SIGKILL after 20 s).
stop_group() {
  local name pid pids=()
  for name in "$@"; do
    pid="$(pid_of "$name")"
    [[ -n "$pid" ]] || continue
    if pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 20)) left
  while ((SECONDS < deadline)); do
    left=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && left=1; done
    ((left == 0)) && break
    sleep 0.05
  done
  for pid in "${pids[@]}"; do
    if pid_alive "$pid"; then
      log "pid $pid did not stop within 20s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for name in "$@"; do rm -f "$dir/$name.pid"; done
}

down() {
  [[ -d "$dir" ]] || return 0
  local names=() name role
  if [[ -f "$dir/started" ]]; then
    while read -r name role; do names+=("$name"); done <"$dir/started"
  fi
  # Users before providers, each tier at once: the gateway and the chat
  # servers, then main-chat, then the services they call.
  local tier1=() tier2=() tier3=()
  for name in "${names[@]}"; do
    case "$name" in
      gateway | chat-*) tier1+=("$name") ;;
      main-chat-*) tier2+=("$name") ;;
      *) tier3+=("$name") ;;
    esac
  done
  stop_group "${tier1[@]}"
  stop_group "${tier2[@]}"
  stop_group "${tier3[@]}"
  rm -f "$dir/started"
  if [[ -f "$dir/engines" ]]; then
    local s
    while read -r s; do "scripts/$s.sh" stop >&2 || true; done <"$dir/engines"
    rm -f "$dir/engines"
  fi
}

status() {
  [[ -f "$dir/started" ]] || {
    echo "not running"
    exit 3
  }
  local name role bad=0 addr
  while read -r name role; do
    addr="$(address_of "$name" "$role")"
    if alive "$name"; then
      echo "$name $role running pid $(pid_of "$name") ${addr:-}"
    else
      echo "$name $role down"
      bad=1
    fi
  done <"$dir/started"
  ((bad == 0)) || exit 3
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: scripts/cluster.sh up|down|status" >&2
    exit 2
    ;;
esac
