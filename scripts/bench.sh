#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/benchmarks.md against a fresh
# `chatd all` on loopback. Not part of the test suite: figures depend on the
# machine. Usage: scripts/bench.sh [latency|healthz|store|login|all|layouts]
#   layouts: send->deliver and chatd's CPU per delivered message on Kafka +
#   the CQL server, `chatd all` against every role in its own process
#   (scripts/cluster.sh); starts the engines if they are not running.
#
# Load tool (build/chatd-bench, docs/benchmarks.md "Load tool: chatd-bench"):
#   scripts/bench.sh pairs|fanout|idle|history|reconnect [chatd-bench options]
#   starts a fresh `chatd all` (rate limits off, fast password hashing, room
#   for many connections) and runs that scenario against it; results go to
#   $CHATD_BENCH_OUT (default build/bench-results) as <scenario>.json, .csv
#   and .png unless the options name files.
#   scripts/bench.sh compare [...]: chatd against the peer servers
#   (scripts/bench-compare.sh).
#   scripts/bench.sh profile [msgs/s] [seconds]: a CPU flame graph of
#   `chatd all` under a `pairs` load at that rate (default 5000 for 10 s),
#   recorded with perf and drawn with inferno (installed with cargo when
#   missing), to $CHATD_BENCH_OUT/profile.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${CHATD_BUILD_DIR:-build}"
what="${1:-all}"
if [ "$what" = compare ]; then
  shift
  exec scripts/bench-compare.sh "$@"
fi
data="$(mktemp -d /tmp/chatd-bench.XXXXXX)"
out="$data/stdout"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

start_chatd() {
  "$build_dir/chatd" all --set gateway.listen=127.0.0.1:0 --set chat_server.listen=127.0.0.1:0 \
    --set storage.path="$data/db" --set rate_limits.send_per_second=0 \
    --set rate_limits.read_per_second=0 --set rate_limits.typing_per_second=0 \
    --set rate_limits.login_per_minute=0 "$@" >"$out" 2>"$data/log" &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q '^listening gateway ' "$out" 2>/dev/null && break
    sleep 0.1
  done
  gateway="$(awk '/^listening gateway /{print $3}' "$out")"
  [ -n "$gateway" ] || { cat "$data/log"; exit 1; }
}

if [ "$what" = all ] || [ "$what" = latency ] || [ "$what" = healthz ]; then
  start_chatd
  if [ "$what" != healthz ]; then
    echo "== send->deliver latency and pair rate (chatd all, embedded backends)"
    "$build_dir/chatd-latency-bench" "$gateway" 2000 20000 64
  fi
  if [ "$what" != latency ]; then
    echo "== GET /healthz with wrk (2 threads, 64 connections, 10 s)"
    wrk -t2 -c64 -d10s "http://$gateway/healthz"
  fi
fi

if [ "$what" = all ] || [ "$what" = login ]; then
  [ -n "$pid" ] || start_chatd
  echo "== login (Argon2id as configured), 2 threads, 10 s"
  curl -sf -X POST "http://$gateway/v1/users" -H 'content-type: application/json' \
    -d '{"username":"bench_login","password":"password123","display_name":"B"}' >/dev/null
  cat >"$data/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"kind":"user","username":"bench_login","password":"password123"}'
LUA
  wrk -t2 -c2 -d10s -s "$data/login.lua" "http://$gateway/v1/auth/login"
fi

# CPU seconds (user + system) used so far by the given pids.
cpu_of() {
  local total=0 pid t
  for pid in "$@"; do
    t="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + t))
  done
  echo "scale=3; $total / $(getconf CLK_TCK)" | bc
}

# runs the latency bench against $gateway and reports CPU per delivered message of $@.
measure() {
  local before after
  before="$(cpu_of "$@")"
  "$build_dir/chatd-latency-bench" "$gateway" 2000 20000 64 | tee "$data/bench.out"
  after="$(cpu_of "$@")"
  echo "  chatd CPU: $(echo "$after - $before" | bc) s for 22000 messages" \
    "($(echo "scale=1; ($after - $before) * 1000000 / 22000" | bc) us per delivered message)"
}

if [ "$what" = layouts ]; then
  for s in cassandra kafka; do scripts/$s.sh status >/dev/null 2>&1 || scripts/$s.sh start >&2; done
  real=(--set queue.backend=kafka --set queue.topic_prefix="bench$$." --set storage.backend=scylla
    --set storage.keyspace="bench$$" --set storage.consistency=one --set auth.password_cost=fast)
  start_chatd "${real[@]}"
  echo "== chatd all on Kafka + the CQL server"
  measure "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  export CHATD_RATE_LIMITS_SEND_PER_SECOND=0 CHATD_RATE_LIMITS_LOGIN_PER_MINUTE=0
  export CHATD_RATE_LIMITS_READ_PER_SECOND=0 CHATD_RATE_LIMITS_TYPING_PER_SECOND=0
  for delivery in routed broadcast; do
    echo "== every role its own process (scripts/cluster.sh: 3 chat servers, 2 main-chat), $delivery delivery"
    export CHATD_CLUSTER_DIR="$data/cluster-$delivery" CHATD_QUEUE_DELIVERY="$delivery"
    export CHATD_STORAGE_KEYSPACE="bench${delivery:0:1}$$" CHATD_QUEUE_TOPIC_PREFIX="bench${delivery:0:1}$$."
    gateway="$(scripts/cluster.sh up | tail -1 | sed 's#^gateway http://##')"
    mapfile -t pids < <(cat "$CHATD_CLUSTER_DIR"/*.pid)
    measure "${pids[@]}" || true
    # The records each chat server processed (the two benchmark users sit
    # wherever discovery put them; cluster.routing spreads pairs evenly).
    scripts/cluster.sh status | awk '$2 == "chat-server" && $3 == "running" {print $1, $6}' |
      while read -r name addr; do
        echo "  $name processed $(curl -sf "http://$addr/metrics" |
          awk '$1 == "chatd_chat_server_events_total" {print $2}') records"
      done
    scripts/cluster.sh down
  done
fi

if [ "$what" = all ] || [ "$what" = store ]; then
  echo "== chat store (RocksDB)"
  "$build_dir/chatd-store-bench" --path "$data/store-bench"
fi

if [ "$what" = profile ]; then
  rate="${2:-5000}" seconds="${3:-10}"
  command -v perf >/dev/null || { echo "bench.sh profile: needs perf (apt-get install linux-perf)" >&2; exit 1; }
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v inferno-flamegraph >/dev/null; then
    echo "== installing inferno (flame graphs) with cargo"
    cargo install --quiet --locked inferno
  fi
  results="${CHATD_BENCH_OUT:-$build_dir/bench-results}"
  mkdir -p "$results"
  start_chatd --set auth.password_cost=fast
  # The load runs two seconds longer than the recording on each side, so the
  # profile holds only the steady state.
  "$build_dir/chatd-bench" pairs --target chatd --address "$gateway" --server-pid "$pid" \
    --rates "$rate" --step-seconds $((seconds + 4)) --drain-seconds 2 --json "$results/profile-load.json" \
    >"$data/load.out" 2>&1 &
  load=$!
  sleep 3
  echo "== perf record of chatd all for ${seconds}s at ${rate} msgs/s offered"
  # DWARF unwinding: the build keeps no frame pointers.
  perf record -q -F 199 -e cpu-clock --call-graph dwarf,16384 -p "$pid" -o "$data/perf.data" \
    -- sleep "$seconds" 2>/dev/null
  wait "$load" || true
  grep -E '^(step|knee)' "$data/load.out" | cut -c1-200 || true
  perf script -i "$data/perf.data" 2>/dev/null | inferno-collapse-perf >"$results/profile.folded"
  # Frames under a pixel wide are invisible anyway and make the file ten times larger.
  inferno-flamegraph --minwidth 1 --title "chatd all, pairs at ${rate} msgs/s offered, ${seconds} s" \
    <"$results/profile.folded" >"$results/profile.svg"
  echo "flame graph: $results/profile.svg (folded stacks: $results/profile.folded)"
  exit 0
fi

case "$what" in
  pairs | fanout | idle | history | reconnect)
    shift
    # Every idle connection is a descriptor on both ends.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    max_conn=200000
    start_chatd --set auth.password_cost=fast --set chat_server.max_connections="$max_conn" \
      --set gateway.max_connections="$max_conn"
    results="${CHATD_BENCH_OUT:-$build_dir/bench-results}"
    mkdir -p "$results"
    outputs=()
    case " $* " in *" --json "*) ;; *) outputs+=(--json "$results/$what.json") ;; esac
    case " $* " in *" --csv "*) ;; *) outputs+=(--csv "$results/$what.csv") ;; esac
    if [ "$what" != idle ]; then
      case " $* " in *" --plot "*) ;; *) outputs+=(--plot "$results/$what.png") ;; esac
    fi
    echo "== chatd-bench $what against chatd all (embedded backends), results in $results"
    "$build_dir/chatd-bench" "$what" --target chatd --address "$gateway" --server-pid "$pid" "${outputs[@]}" "$@"
    ;;
esac
