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
#   scripts/cluster.sh engine kafka|cassandra stop|start
#                               # the broker or the CQL server the cluster uses
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
#   CHATD_CLUSTER_SERVERS=0  do not start Kafka or the CQL server (use running
#                        ones); ignored with CHATD_CLUSTER_NETNS
#   CHATD_CLUSTER_NETNS  a /24 prefix such as 10.213.7: every process in a
#                        network namespace of its own (veth pairs on a bridge
#                        holding PREFIX.1), the broker and the CQL server in
#                        another (PREFIX.2, their own data in the cluster
#                        dir), so nothing relies on a shared 127.0.0.1.
#                        Needs root; `down` removes every namespace and link.
# Per-process logs are in $CHATD_CLUSTER_DIR/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

dir="${CHATD_CLUSTER_DIR:-$root/.cluster}"
host="${CHATD_CLUSTER_HOST:-127.0.0.1}"
binary="${CHATD_BINARY:-$root/build/chatd}"
n_chat="${CHATD_CLUSTER_CHAT_SERVERS:-3}"
ready_timeout="${CHATD_CLUSTER_READY_TIMEOUT:-90}"
netns="${CHATD_CLUSTER_NETNS:-}"
# A cluster started in namespaces is stopped in them, whatever the caller's environment.
[[ -z "$netns" && -f "$dir/netns" ]] && netns="$(cat "$dir/netns")"
if [[ -n "$netns" ]]; then
  [[ "$netns" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || {
    echo "cluster.sh: CHATD_CLUSTER_NETNS must be a /24 prefix like 10.213.7" >&2
    exit 2
  }
  # Short names: interface names have at most 15 characters.
  tag="c${netns##*.}"
  bridge="${tag}br"
  engines_host="$netns.2"
fi

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

# The address a process listens on: its namespace's, or the shared host.
host_of() {
  if [[ -z "$netns" ]]; then
    echo "$host"
    return
  fi
  local n=10 name
  for name in discovery presence notification main-chat-1 main-chat-2 chat-sg chat-fra chat-va gateway; do
    [[ "$name" == "$1" ]] && {
      echo "$netns.$n"
      return
    }
    n=$((n + 1))
  done
  die "no namespace for $1"
}
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
    if [[ -n "$addr" ]] && curl -fsS -o /dev/null "http://$addr/healthz" 2>/dev/null; then
      echo "$addr" >"$dir/$name.addr"
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
  # The last address it was ready on: a start that failed before it
  # announced one must not lose it.
  local previous
  previous="$(cat "$dir/$name.addr" 2>/dev/null || true)"
  [[ -n "$previous" ]] || previous="$(address_of "$name" "$role")"
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
  local in_ns=()
  [[ -n "$netns" ]] && in_ns=(ip netns exec "$(ns_of "$name")")
  # ip netns exec and setsid both exec (no fork here), so $! is chatd's pid.
  "${in_ns[@]}" env "${envs[@]}" CHATD_STORAGE_PATH="${CHATD_STORAGE_PATH:-$dir/data/$name}" \
    setsid "$binary" "$role" >"$dir/$name.out" 2>>"$dir/$name.log" </dev/null &
  echo $! >"$dir/$name.pid"
  grep -qx "$name $role" "$dir/started" 2>/dev/null || echo "$name $role" >>"$dir/started"
}

# --- network namespaces (CHATD_CLUSTER_NETNS) ---
ns_of() { echo "chatd-$tag-$1"; }

# A namespace for `name` at PREFIX.<n>, its veth pair on the bridge.
ns_add() {
  local name="$1" n="$2" ns
  ns="$(ns_of "$name")"
  ip netns list | grep -qw "^$ns" && return 0
  ip netns add "$ns"
  ip link add "$tag-$n" type veth peer name "$tag-$n-in"
  ip link set "$tag-$n-in" netns "$ns"
  ip link set "$tag-$n" master "$bridge" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$netns.$n/24" dev "$tag-$n-in"
  ip -n "$ns" link set "$tag-$n-in" up
  ip -n "$ns" route add default via "$netns.1"
}

net_up() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$netns.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  ns_add engines 2
  local n=10 name
  for name in discovery presence notification main-chat-1 main-chat-2 chat-sg chat-fra chat-va gateway; do
    ns_add "$name" "$n"
    n=$((n + 1))
  done
}

net_down() {
  local ns
  for ns in $(ip netns list | awk -v p="chatd-$tag-" 'index($1, p) == 1 {print $1}'); do ip netns del "$ns"; done
  ip link del "$bridge" 2>/dev/null || true  # the veth ends go with their namespaces
}

# The namespace, address and data of the cluster's own engines.
engine_env() {
  echo CHATD_KAFKA_HOST="$engines_host" CHATD_KAFKA_DATA="$dir/engines-data/kafka" \
    CHATD_CASSANDRA_HOST="$engines_host" CHATD_CASSANDRA_RUN="$dir/engines-data/cassandra"
}

# engine <kafka|cassandra> <start|stop|status>
engine() {
  local s="$1" what="$2"
  [[ "$s" == kafka || "$s" == cassandra ]] || die "engine: kafka or cassandra"
  if [[ -n "$netns" ]]; then
    # shellcheck disable=SC2046 # engine_env is a list of VAR=value words
    ip netns exec "$(ns_of engines)" env $(engine_env) "scripts/$s.sh" "$what"
  else
    "scripts/$s.sh" "$what"
  fi
}

servers_up() {
  # In namespaces the cluster always runs engines of its own.
  [[ -z "$netns" && "${CHATD_CLUSTER_SERVERS:-1}" == 0 ]] && return 0
  local s
  for s in cassandra kafka; do
    if ! engine "$s" status >/dev/null 2>&1; then
      log "starting $s"
      engine "$s" start >&2
      grep -qx "$s" "$dir/engines" 2>/dev/null || echo "$s" >>"$dir/engines"
    fi
  done
}

up() {
  [[ -x "$binary" ]] || die "no chatd binary at $binary (run scripts/setup.sh)"
  ((n_chat >= 1 && n_chat <= 3)) || die "CHATD_CLUSTER_CHAT_SERVERS must be 1..3"
  mkdir -p "$dir"
  if [[ -n "$netns" ]]; then
    net_up
    echo "$netns" >"$dir/netns"
  fi
  servers_up

  # One token key and one internal-call key for every process.
  [[ -f "$dir/secret" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret"
  [[ -f "$dir/internal_secret" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/internal_secret"
  local engines_at=127.0.0.1
  [[ -n "$netns" ]] && engines_at="$engines_host"
  defaults=(
    CHATD_STORAGE_BACKEND=scylla
    CHATD_STORAGE_HOSTS="$engines_at:9042"
    CHATD_STORAGE_KEYSPACE=chatd_cluster
    CHATD_STORAGE_CONSISTENCY=one
    CHATD_QUEUE_BACKEND=kafka
    CHATD_QUEUE_BROKERS="$engines_at:9092"
    CHATD_QUEUE_TOPIC_PREFIX=chatd-cluster.
    CHATD_QUEUE_PARTITIONS=6
    CHATD_AUTH_JWT_SECRET="$(cat "$dir/secret")"
    CHATD_AUTH_INTERNAL_SECRET="$(cat "$dir/internal_secret")"
    CHATD_AUTH_PASSWORD_COST=fast
    CHATD_PRESENCE_TIMEOUT_MS=6000
  )

  start discovery discovery CHATD_DISCOVERY_LISTEN="$(host_of discovery):0"
  start presence presence CHATD_PRESENCE_LISTEN="$(host_of presence):0"
  start notification notification CHATD_NOTIFICATIONS_LISTEN="$(host_of notification):0"
  local discovery presence notification
  discovery="$(wait_listening discovery discovery)" || die "discovery did not start"
  presence="$(wait_listening presence presence)" || die "presence did not start"
  notification="$(wait_listening notification notification)" || die "notification did not start"
  defaults+=(
    CHATD_DISCOVERY_URL="http://$discovery"
    CHATD_PRESENCE_URL="http://$presence"
    CHATD_NOTIFICATIONS_URL="http://$notification"
  )

  start main-chat-1 main-chat CHATD_MAIN_CHAT_LISTEN="$(host_of main-chat-1):0"
  start main-chat-2 main-chat CHATD_MAIN_CHAT_LISTEN="$(host_of main-chat-2):0"
  local i name role region lat lon
  for ((i = 0; i < n_chat; i++)); do
    read -r name role region lat lon <<<"${chat_servers[$i]}"
    start "$name" chat-server CHATD_CHAT_SERVER_LISTEN="$(host_of "$name"):0" CHATD_CHAT_SERVER_ID="$name" \
      CHATD_CHAT_SERVER_REGION="$region" CHATD_CHAT_SERVER_LAT="$lat" CHATD_CHAT_SERVER_LON="$lon"
  done
  start gateway gateway CHATD_GATEWAY_LISTEN="$(host_of gateway):0"

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
  local addr="$1" ts nonce sig path=/v1/internal/discovery/servers secret
  secret="${CHATD_AUTH_INTERNAL_SECRET:-$(cat "$dir/internal_secret")}"
  ts="$(date +%s)"
  nonce="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  sig="$(printf '%s\n%s\nGET\n%s\n' "$ts" "$nonce" "$path" | openssl dgst -sha256 -hmac "$secret" -hex |
    awk '{print $NF}')"
  { curl -fsS -H "X-Chatd-Internal-Timestamp: $ts" -H "X-Chatd-Internal-Nonce: $nonce" \
    -H "X-Chatd-Internal-Signature: sha256=$sig" "http://$addr$path" || true; } | grep -o '"id"' | wc -l
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
    while read -r s; do engine "$s" stop >&2 || true; done <"$dir/engines"
    rm -f "$dir/engines"
  fi
  if [[ -n "$netns" ]]; then
    net_down
    rm -f "$dir/netns"
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
  engine) engine "${2:-}" "${3:-}" ;;
  *)
    echo "usage: scripts/cluster.sh up|down|status|engine kafka|cassandra stop|start" >&2
    exit 2
    ;;
esac
