#!/usr/bin/env bash
# Centrifugo v6.9.1 as a peer for chatd-bench, on loopback.
#
#   scripts/peers/centrifugo.sh install   # go install, once, into third_party/cache/centrifugo
#   scripts/peers/centrifugo.sh start     # fresh data dir and config, starts, waits for /health; prints host:port
#   scripts/peers/centrifugo.sh stop      # stops it and deletes its data dir
#   scripts/peers/centrifugo.sh pid       # the server's pid
#   scripts/peers/centrifugo.sh status    # exit 0 if running
#
# Settings, chosen to be fair to it:
#   - Memory engine (Centrifugo's default; it has no disk persistence, so
#     history in memory is as far as "persistence on" goes for it), history on
#     in every namespace: history_size 1000 per channel, history_ttl 24h.
#   - Bidirectional JSON protocol over WebSocket at /connection/websocket, no
#     TLS, no compression.
#   - Namespace `dm`: 1:1 conversations as user-limited channels
#     (dm:#<a>,<b>: only users a and b may subscribe), client-side publish
#     for subscribers, history for subscribers.
#   - Namespace `grp`: groups (fan-out), subscribe by any authenticated
#     client, publish and history for subscribers.
#   - Connection JWT signed with HS256 by the bench tool (client.token
#     .hmac_secret_key below; the tool's default matches, or pass
#     --target-opt secret=...).
#   - Server pings every 25 s (the default) but no pong check (pong_timeout
#     -1): the bench client does not answer application-level pings, and the
#     check would close idle connections after 33 s.
#   - No connection limits, log level error (info logs a line per connection).
#
# Environment: CHATD_CENTRIFUGO_PORT (18000), CHATD_CENTRIFUGO_SECRET,
# CHATD_PEER_DIR (data dir; default a fresh mktemp dir under /tmp),
# CHATD_PEER_STATE (/tmp/chatd-peers: where start records the data dir and
# pid for stop/pid/status), CHATD_CENTRIFUGO_CACHE (the binary's directory).
set -euo pipefail
cd "$(dirname "$0")/../.."

version="v6.9.1"
port="${CHATD_CENTRIFUGO_PORT:-18000}"
secret="${CHATD_CENTRIFUGO_SECRET:-chatd-bench-centrifugo-secret}"
state="${CHATD_PEER_STATE:-/tmp/chatd-peers}"
cache="${CHATD_CENTRIFUGO_CACHE:-$PWD/third_party/cache/centrifugo}"
bin="$cache/bin/centrifugo"
go="$(command -v go || echo /usr/local/go/bin/go)"

log() { echo "centrifugo.sh: $*" >&2; }

installed_version() { "$go" version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 ~ /centrifugo\/v6$/ {print $3}'; }

install() {
  [ -x "$bin" ] && [ "$(installed_version)" = "$version" ] && return 0
  [ -x "$go" ] || { log "Go is missing (looked for go and /usr/local/go/bin/go)"; exit 1; }
  log "building Centrifugo $version (takes minutes)"
  mkdir -p "$cache/bin"
  GOBIN="$cache/bin" nice "$go" install "github.com/centrifugal/centrifugo/v6@$version" >&2
  [ "$(installed_version)" = "$version" ] || { log "build did not produce $version"; exit 1; }
}

running_pid() {
  local pid
  pid="$(cat "$state/centrifugo.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q centrifugo "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

write_config() {
  cat >"$1/config.json" <<JSON
{
  "http_server": {"address": "127.0.0.1", "port": $port},
  "log": {"level": "error"},
  "engine": {"type": "memory"},
  "health": {"enabled": true},
  "client": {
    "token": {"hmac_secret_key": "$secret"},
    "ping_interval": "25s",
    "pong_timeout": "-1s",
    "history_max_publication_limit": 1000
  },
  "channel": {
    "namespaces": [
      {
        "name": "dm",
        "allow_user_limited_channels": true,
        "allow_publish_for_subscriber": true,
        "allow_history_for_subscriber": true,
        "history_size": 1000,
        "history_ttl": "24h"
      },
      {
        "name": "grp",
        "allow_subscribe_for_client": true,
        "allow_publish_for_subscriber": true,
        "allow_history_for_subscriber": true,
        "history_size": 1000,
        "history_ttl": "24h"
      }
    ]
  }
}
JSON
}

start() {
  install
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "127.0.0.1:$port"
    return 0
  fi
  local dir
  if [ -n "${CHATD_PEER_DIR:-}" ]; then
    dir="$CHATD_PEER_DIR"
    rm -rf "$dir"
    mkdir -p "$dir"
  else
    dir="$(mktemp -d /tmp/chatd-peer-centrifugo.XXXXXX)"
  fi
  mkdir -p "$state"
  echo "$dir" >"$state/centrifugo.dir"
  write_config "$dir"
  "$bin" checkconfig --config "$dir/config.json" >&2
  ulimit -n "$(ulimit -Hn)"
  (cd "$dir" && exec "$bin" --config "$dir/config.json" >"$dir/stdout" 2>"$dir/log") &
  local pid=$!
  echo "$pid" >"$state/centrifugo.pid"
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then
    log "did not come up; log follows"
    cat "$dir/log" >&2
    exit 1
  fi
  echo "127.0.0.1:$port"
}

stop() {
  local dir pid
  dir="$(cat "$state/centrifugo.dir" 2>/dev/null)" || true
  if pid="$(running_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  [ -n "$dir" ] && [ -d "$dir" ] && rm -rf "$dir"
  rm -f "$state/centrifugo.pid" "$state/centrifugo.dir"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  pid) running_pid ;;
  status) running_pid >/dev/null ;;
  *)
    echo "usage: $0 install|start|stop|pid|status" >&2
    exit 2
    ;;
esac
