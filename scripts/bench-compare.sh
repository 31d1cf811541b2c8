#!/usr/bin/env bash
# chatd against Centrifugo and ejabberd: the same chatd-bench scenarios with
# the same options against each server in turn, on this machine, each server
# started afresh (new data dir) for each scenario and stopped after it. Prints
# one table of chatd's figures, each peer's, and the ratios chatd / peer.
#
#   scripts/bench-compare.sh [options] [-- options for every chatd-bench run]
#
#   --servers LIST        chatd,centrifugo,ejabberd (default all three)
#   --scenarios LIST      pairs,fanout,idle (default all three); history too
#                         (its JSON is kept, it has no line in the table)
#   --out DIR             where the JSON, CSV and logs go (default $build_dir/compare-<time>)
#   --step-seconds S      seconds per rate step (pairs, fanout, history)
#   --drain-seconds S     wait after a step for stragglers (pairs, fanout, history)
#   --rates LIST          pairs' offered msgs/s steps, comma-separated
#   --start R --step-factor F --max R   pairs' stepping instead of --rates
#   --pairs N             sender->receiver pairs (pairs)
#   --fanout-rates LIST   fanout's offered deliveries/s steps
#   --groups LIST         fanout's group sizes (default the tool's: 10,100,1000)
#   --connections N       idle connections (default 1000)
#   --accounts N          accounts they belong to (default 1000: one user per
#                         connection, as in real use; XMPP resources of one
#                         account exchange presence, which would inflate ejabberd's figure)
#   --pairs-args "..."  --fanout-args "..."  --idle-args "..."  --history-args "..."
#                         more options for one scenario
#   --quick               a smoke run: 2 s steps, three low rates, 200 idle connections
#                         (an explicit option still wins)
#
# Each peer's settings are written down at the top of scripts/peers/*.sh:
# no TLS anywhere, the same payload (the tool's), persistence or history on
# where the server has it (chatd: embedded log and RocksDB; Centrifugo:
# in-memory history; ejabberd: mod_mam in mnesia), no rate limits, shapers
# or session limits. chatd runs as `chatd all` with embedded backends, as
# scripts/bench.sh starts it.
#
# Not compared, with the reason: ejabberd's send->ack (XMPP has no ack a
# client can get without answering the server's own ack requests) and
# fan-out (groups need MUC rooms); reconnect with since= (neither peer has
# it in the request target).
#
# Environment: CHATD_BUILD_DIR (build: chatd and chatd-bench), CHATD_BENCH (the
# chatd-bench binary, default $CHATD_BUILD_DIR/chatd-bench), plus each peer script's.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${CHATD_BUILD_DIR:-build}"
bench="${CHATD_BENCH:-$build_dir/chatd-bench}"
servers="chatd,centrifugo,ejabberd"
scenarios="pairs,fanout,idle"
out=""
declare -A opt=()  # chatd-bench option -> value, set by the flags below
pairs_only=()
fanout_only=()
idle_only=()
history_only=()
common=()
quick=""

while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers="$2"; shift 2 ;;
    --scenarios) scenarios="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --step-seconds | --drain-seconds | --rates | --start | --step-factor | --max | --pairs | --fanout-rates | \
      --groups | --connections | --accounts) opt[$1]="$2"; shift 2 ;;
    --pairs-args) read -ra a <<<"$2"; pairs_only+=("${a[@]}"); shift 2 ;;
    --fanout-args) read -ra a <<<"$2"; fanout_only+=("${a[@]}"); shift 2 ;;
    --idle-args) read -ra a <<<"$2"; idle_only+=("${a[@]}"); shift 2 ;;
    --history-args) read -ra a <<<"$2"; history_only+=("${a[@]}"); shift 2 ;;
    --quick) quick=1; shift ;;
    --) shift; common+=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-compare.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
default() { [ -n "${opt[$1]+x}" ] || opt[$1]="$2"; }
default --connections 1000
default --accounts 1000
if [ -n "$quick" ]; then
  default --step-seconds 2
  default --drain-seconds 2
  [ -n "${opt[--start]+x}" ] || default --rates 200,1000,3000
  default --pairs 20
  default --fanout-rates 1000,5000
  default --groups 10,100
  default --connections 200
  default --accounts 200
  pairs_only=(--unloaded-seconds 2 "${pairs_only[@]}")
  idle_only=(--hold-seconds 2 "${idle_only[@]}")
fi
# Adds `flag value` to array $1 for each flag given a value.
add() {
  local -n arr="$1"
  local flag="$2" as="${3:-$2}"
  [ -n "${opt[$flag]+x}" ] && arr+=("$as" "${opt[$flag]}")
  return 0
}
stepping=()
add stepping --step-seconds
add stepping --drain-seconds
for f in --rates --start --step-factor --max --pairs; do add pairs_only $f; done
add fanout_only --fanout-rates --rates
add fanout_only --groups
add idle_only --connections
add idle_only --accounts
out="${out:-$build_dir/compare-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
IFS=, read -ra server_list <<<"$servers"
IFS=, read -ra scenario_list <<<"$scenarios"

log() { echo "bench-compare: $*" >&2; }

[ -x "$bench" ] || { log "$bench is missing (scripts/setup.sh builds it)"; exit 1; }
for s in "${server_list[@]}"; do
  case "$s" in
    chatd) [ -x "$build_dir/chatd" ] || { log "$build_dir/chatd is missing (scripts/setup.sh builds it)"; exit 1; } ;;
    centrifugo | ejabberd) scripts/peers/$s.sh install ;;
    *) log "unknown server $s"; exit 2 ;;
  esac
done

running=""   # the server to stop on exit
chatd_pid=""
chatd_dir=""
stop_server() {
  case "$running" in
    chatd)
      if [ -n "$chatd_pid" ]; then
        kill "$chatd_pid" 2>/dev/null || true
        wait "$chatd_pid" 2>/dev/null || true
      fi
      [ -n "$chatd_dir" ] && rm -rf "$chatd_dir"
      chatd_pid="" chatd_dir=""
      ;;
    centrifugo | ejabberd) scripts/peers/$running.sh stop || true ;;
  esac
  running=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Starts server $1 on a fresh data dir; sets address and pid.
start_server() {
  running="$1"
  case "$1" in
    chatd)
      chatd_dir="$(mktemp -d /tmp/chatd-compare.XXXXXX)"
      # As scripts/bench.sh's start_chatd: embedded backends, rate limits off.
      "$build_dir/chatd" all --set gateway.listen=127.0.0.1:0 --set chat_server.listen=127.0.0.1:0 \
        --set storage.path="$chatd_dir/db" --set rate_limits.send_per_second=0 \
        --set rate_limits.read_per_second=0 --set rate_limits.typing_per_second=0 \
        --set rate_limits.login_per_minute=0 >"$chatd_dir/stdout" 2>"$chatd_dir/log" &
      chatd_pid=$!
      address=""
      for _ in $(seq 1 100); do
        address="$(awk '/^listening gateway /{print $3}' "$chatd_dir/stdout" 2>/dev/null)"
        [ -n "$address" ] && break
        sleep 0.1
      done
      [ -n "$address" ] || { cat "$chatd_dir/log" >&2; return 1; }
      pid="$chatd_pid"
      ;;
    *)
      scripts/peers/$1.sh stop
      address="$(scripts/peers/$1.sh start | tail -1)"
      pid="$(scripts/peers/$1.sh pid)"
      ;;
  esac
}

supports() {
  # ejabberd has no groups here (they would need MUC rooms).
  [ "$1" = ejabberd ] && [ "$2" = fanout ] && return 1
  return 0
}

for scenario in "${scenario_list[@]}"; do
  case "$scenario" in
    pairs) args=(--unloaded "${stepping[@]}" "${pairs_only[@]}") ;;
    fanout) args=("${stepping[@]}" "${fanout_only[@]}") ;;
    idle) args=("${idle_only[@]}") ;;
    history) args=("${stepping[@]}" "${history_only[@]}") ;;
    *) log "unknown scenario $scenario"; exit 2 ;;
  esac
  for server in "${server_list[@]}"; do
    supports "$server" "$scenario" || { log "$scenario on $server: not supported, skipped"; continue; }
    start_server "$server"
    log "$scenario on $server at $address (pid $pid)"
    if ! "$bench" "$scenario" --target "$server" --address "$address" --server-pid "$pid" \
      --json "$out/$server-$scenario.json" --csv "$out/$server-$scenario.csv" "${args[@]}" "${common[@]}" \
      2> >(tee "$out/$server-$scenario.log" >&2) | tee "$out/$server-$scenario.txt"; then
      log "$scenario on $server failed (see $out/$server-$scenario.log)"
    fi
    stop_server
  done
done

# One figure of one run, or empty.
figure() {
  local f="$out/$1-$2.json"
  [ -s "$f" ] || return 0
  jq -r --arg k "$3" '.summary[$k] // empty' "$f"
}

metrics=(
  "pairs|knee_msgs_per_s|knee, msgs/s (higher is better)|1"
  "pairs|knee_server_cpu_s_per_1000|server CPU s per 1000 delivered at the knee (lower)|1"
  "pairs|unloaded_p50_us|unloaded send->deliver p50, us (lower)|1"
  "idle|bytes_per_connection|server memory per idle connection, KiB (lower)|1024"
)
for g in $(jq -r '.settings.groups // empty' "$out"/*-fanout.json 2>/dev/null | head -1 | tr , ' '); do
  metrics+=("fanout|knee_deliveries_per_s_group_$g|fan-out to $g members, deliveries/s (higher)|1")
done

peers=()
for s in "${server_list[@]}"; do [ "$s" != chatd ] && peers+=("$s"); done
{
  printf '%s' "| figure"
  for s in "${server_list[@]}"; do printf ' | %s' "$s"; done
  for p in "${peers[@]}"; do printf ' | chatd / %s' "$p"; done
  printf ' |\n|---'
  for _ in "${server_list[@]}" "${peers[@]}"; do printf '|---'; done
  printf '|\n'
  for m in "${metrics[@]}"; do
    IFS='|' read -r scen key label div <<<"$m"
    printf '| %s' "$label"
    declare -A v=()
    for s in "${server_list[@]}"; do
      x="$(figure "$s" "$scen" "$key")"
      [ -n "$x" ] && x="$(awk -v x="$x" -v d="$div" 'BEGIN{v = x / d; if (v >= 1000) printf "%.0f", v; else printf "%.4g", v}')"
      v[$s]="$x"
      printf ' | %s' "${x:-n/a}"
    done
    for p in "${peers[@]}"; do
      r=""
      if [ -n "${v[chatd]:-}" ] && [ -n "${v[$p]:-}" ]; then
        r="$(awk -v a="${v[chatd]}" -v b="${v[$p]}" 'BEGIN{if (b != 0) printf "%.3g", a / b}')"
      fi
      printf ' | %s' "${r:-n/a}"
    done
    printf ' |\n'
    unset v
  done
} | tee "$out/compare.md"
log "results in $out (compare.md, <server>-<scenario>.json/.csv/.log)"
