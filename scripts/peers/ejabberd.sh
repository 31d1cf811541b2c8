#!/usr/bin/env bash
# ejabberd 23.01 (Debian's package) as a peer for chatd-bench, on loopback,
# in its own node with its own config, spool and logs: the system service is
# never started.
#
#   scripts/peers/ejabberd.sh install   # apt-get install, once; keeps the system service stopped
#   scripts/peers/ejabberd.sh start     # fresh data dir, starts, waits until it answers; prints host:port
#   scripts/peers/ejabberd.sh stop      # stops the node and deletes its data dir
#   scripts/peers/ejabberd.sh pid       # the server's (beam.smp) pid
#   scripts/peers/ejabberd.sh status    # exit 0 if running
#
# Settings, chosen to be fair to it:
#   - XMPP over WebSocket (RFC 7395) at ws://127.0.0.1:$port/ws, no TLS; the
#     same listener serves mod_http_api at /api (accounts are registered there).
#   - mod_mam on for every message (default: always), stored in mnesia: the
#     archive is ejabberd's persistence of messages; mod_offline on.
#   - No shapers (c2s_shaper none), no session limit (max_user_sessions
#     infinity), no mod_fail2ban / mod_pres_counter, fd limit at the hard limit,
#     Erlang port and process limits raised for many connections, listen
#     backlog 4096 (ejabberd's default of 5 drops SYNs when many clients
#     connect at once; the others listen with the kernel's somaxconn).
#   - Passwords stored plain so a login costs about what a token check costs
#     on the other servers (SCRAM's PBKDF2 would dominate a reconnect storm).
#   - mod_stream_mgmt on (XEP-0198 acks when a client enables them), without
#     resumption by default for clients that do not ask for it.
#   - Server-side WebSocket pings every 60 s (the default); the inactivity
#     timeout raised to an hour so idle connections are not closed mid-run.
#   - loglevel warning: info logs a line per connection.
#
# Environment: CHATD_EJABBERD_PORT (15280), CHATD_PEER_DIR (data dir; default
# a fresh mktemp dir under /tmp), CHATD_PEER_STATE (/tmp/chatd-peers: where
# start records the data dir and pid for stop/pid/status).
set -euo pipefail

port="${CHATD_EJABBERD_PORT:-15280}"
state="${CHATD_PEER_STATE:-/tmp/chatd-peers}"
node="chatdbench_ejabberd@localhost"
export ERL_EPMD_ADDRESS=127.0.0.1

log() { echo "ejabberd.sh: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  if command -v ejabberdctl >/dev/null && dpkg -s ejabberd 2>/dev/null | grep -q '^Version: 23\.01'; then
    return 0
  fi
  # Debian starts the service from postinst unless policy-rc.d refuses; this
  # peer must not run on the default ports with the default config.
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    added=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ejabberd >&2 ||
    { as_root apt-get update >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ejabberd >&2; }
  [ -n "$added" ] && as_root rm -f "$policy"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now ejabberd >/dev/null 2>&1 || true
  fi
  dpkg -s ejabberd | grep '^Version:' >&2
}

data_dir() { cat "$state/ejabberd.dir" 2>/dev/null; }

running_pid() {
  local pid
  pid="$(cat "$state/ejabberd.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$node" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# As root, ejabberdctl would switch user through su, whose PAM session
# resets the fd limit to 1024; switching here with setpriv keeps the raised
# limit, which the Erlang VM reads once at boot. HOME holds the node's
# cookie, fresh with the data dir.
ctl() {
  local dir
  dir="$(data_dir)"
  local as=()
  [ "$(id -u)" = 0 ] && as=(setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$dir")
  "${as[@]}" ejabberdctl --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" --spool "$dir/spool" \
    --logs "$dir/logs" --node "$node" "$@"
}

write_config() {
  local dir="$1"
  cat >"$dir/ejabberdctl.cfg" <<CFG
ERLANG_NODE=$node
EJABBERD_CONFIG_PATH=$dir/ejabberd.yml
EJABBERD_PID_PATH=$dir/ejabberd.pid
ERL_MAX_PORTS=1000000
ERL_PROCESSES=4000000
ERL_MAX_ETS_TABLES=10000
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
CFG
  cat >"$dir/ejabberd.yml" <<YML
hosts:
  - localhost
loglevel: warning
log_rotate_count: 0
auth_method: internal
auth_password_format: plain
default_db: mnesia
websocket_ping_interval: 60
websocket_timeout: 3600
listen:
  -
    port: $port
    ip: "127.0.0.1"
    backlog: 4096
    module: ejabberd_http
    request_handlers:
      /ws: ejabberd_http_ws
      /api: mod_http_api
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: all
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "loopback":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.0/8
    what: "*"
shaper_rules:
  max_user_sessions: infinity
  max_user_offline_messages: infinity
  c2s_shaper: none
  s2s_shaper: none
modules:
  mod_disco: {}
  mod_http_api: {}
  mod_mam:
    db_type: mnesia
    default: always
  mod_offline:
    db_type: mnesia
  mod_ping: {}
  mod_roster:
    db_type: mnesia
  mod_stream_mgmt: {}
YML
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
    dir="$(mktemp -d /tmp/chatd-peer-ejabberd.XXXXXX)"
  fi
  mkdir -p "$dir/spool" "$dir/logs" "$state"
  write_config "$dir"
  chown -R ejabberd: "$dir" 2>/dev/null || true
  chmod 755 "$dir"
  echo "$dir" >"$state/ejabberd.dir"
  ulimit -n "$(ulimit -Hn)"
  ctl start >&2
  local pid=""
  for _ in $(seq 1 150); do
    if [ -s "$dir/ejabberd.pid" ] && curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{}' \
      "http://127.0.0.1:$port/api/status"; then
      pid="$(cat "$dir/ejabberd.pid")"
      break
    fi
    sleep 0.2
  done
  if [ -z "$pid" ]; then
    log "did not come up; log follows"
    tail -n 40 "$dir/logs/"*.log >&2 2>/dev/null || true
    exit 1
  fi
  echo "$pid" >"$state/ejabberd.pid"
  echo "127.0.0.1:$port"
}

stop() {
  local dir pid
  dir="$(data_dir)" || true
  if pid="$(running_pid)"; then
    ctl stop >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  # epmd stays only while another node needs it.
  epmd -names 2>/dev/null | grep -q '^name ' || epmd -kill >/dev/null 2>&1 || true
  [ -n "$dir" ] && [ -d "$dir" ] && rm -rf "$dir"
  rm -f "$state/ejabberd.pid" "$state/ejabberd.dir"
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
