#!/usr/bin/env bash
# smoke.sh <chatd> <chatd-bench> <scenario> <work dir>: starts `chatd all` on
# free ports in a fresh data dir, runs one short chatd-bench scenario against
# it and checks the JSON it wrote.
set -euo pipefail
chatd="$1" bench="$2" scenario="$3" work="$4"
rm -rf "$work"
mkdir -p "$work"
# The server's shell opens these after the fork; created here, the poll below
# can read them before that child has run.
: >"$work/stdout"
: >"$work/log"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

"$chatd" all --set gateway.listen=127.0.0.1:0 --set chat_server.listen=127.0.0.1:0 \
  --set storage.path="$work/db" --set gateway.web_root= --set rate_limits.send_per_second=0 \
  --set rate_limits.read_per_second=0 --set rate_limits.typing_per_second=0 \
  --set rate_limits.login_per_minute=0 --set auth.password_cost=fast >"$work/stdout" 2>"$work/log" &
pid=$!
gateway=""
for _ in $(seq 1 150); do
  gateway="$(awk '/^listening gateway /{print $3}' "$work/stdout")"
  [ -n "$gateway" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$gateway" ]; then
  echo "chatd did not start:" >&2
  cat "$work/log" >&2
  exit 1
fi

case "$scenario" in
  pairs) args=(--pairs 3 --rates 100,200 --step-seconds 1 --drain-seconds 3 --unloaded --unloaded-seconds 1) ;;
  fanout) args=(--groups 3,10 --rates 200 --step-seconds 1 --drain-seconds 3) ;;
  idle) args=(--connections 200 --accounts 5 --source-ips 2 --hold-seconds 1) ;;
  history) args=(--pairs 3 --readers 2 --rate 50 --rates 50 --step-seconds 1 --drain-seconds 3) ;;
  reconnect) args=(--pairs 3 --rate 100 --seconds 3 --every 1 --drain-seconds 3) ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
"$bench" "$scenario" --target chatd --address "$gateway" --server-pid "$pid" \
  --json "$work/out.json" --csv "$work/out.csv" "${args[@]}"

python3 - "$work/out.json" "$scenario" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
scenario = sys.argv[2]
assert r["scenario"] == scenario, r["scenario"]
assert r["rows"], "no rows"
for row in r["rows"]:
    numbers = [v for v in row.values() if isinstance(v, (int, float))]
    assert numbers, f"row {row['label']} has no numbers"
# Something went through: messages delivered, histories answered or
# connections held (how fast is not the point here).
key = {"idle": "held", "history": "history_sent"}.get(scenario, "delivered")
assert any(row.get(key, 0) > 0 for row in r["rows"]), f"no row has {key} > 0"
print(f"{scenario}: {len(r['rows'])} rows, summary {r['summary']}")
PY
