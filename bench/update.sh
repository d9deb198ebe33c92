#!/usr/bin/env bash
# What an update costs: seeds 1,000 tasks of one user, then PATCHes a new title into a random
# one with wrk (2 threads, 32 connections), 3 s of warm-up and 3 rounds of 10 s, and prints per
# round the requests per second, p50 and p99, and the service's CPU time per request.
#
# Usage: bench/update.sh PATH_TO_TODO_BACKEND_BINARY DATABASE_URL LABEL
#   e.g. bench/update.sh target/release/todo-backend sqlite:///tmp/u.db after
# Compare two builds by running them alternately on fresh databases of the same kind.
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 PATH_TO_TODO_BACKEND_BINARY DATABASE_URL LABEL" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../scripts/lib.sh"
require_service_bin "$1"
BIN=$(realpath "$1") DB=$2 LABEL=$3
WORK=$(mktemp -d)
PORT=$(free_port)
export DATABASE_URL=$DB PORT HOST=127.0.0.1 RATE_LIMIT_PER_MINUTE=0 METRICS_ADDR=127.0.0.1:0
export RUST_LOG=warn BETTER_AUTH_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
(cd "$WORK" && exec "$BIN" serve) >"$WORK/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
wait_healthy "http://127.0.0.1:$PORT" "$PID" 30
TOKEN=$(cd "$WORK" && "$BIN" token alice --ttl 1h)
export TOKEN IDS=$WORK/ids
# The tasks' ids: a create that loses the race for its position takes another id, so they are
# read back rather than assumed to be 1 to 1,000.
python3 - "$PORT" "$TOKEN" "$IDS" <<'PY'
import concurrent.futures, json, sys, urllib.request
port, token, path = sys.argv[1:4]
def make(n):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/tasks", method="POST",
        data=json.dumps({"title": f"seed {n}"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request).read())["id"]
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    ids = list(pool.map(make, range(1000)))
open(path, "w").write("\n".join(map(str, ids)))
PY
cat >"$WORK/patch.lua" <<'LUA'
local token = os.getenv("TOKEN")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
request = function()
  local body = '{"title":"t' .. math.random(1, 1000000000) .. '"}'
  return wrk.format("PATCH", "/api/tasks/" .. ids[math.random(1, #ids)], {
    ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
LUA
wrk -t2 -c32 -d3s -s "$WORK/patch.lua" "http://127.0.0.1:$PORT" >/dev/null
for round in 1 2 3; do
  cpu0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  out=$(wrk -t2 -c32 -d10s --latency -s "$WORK/patch.lua" "http://127.0.0.1:$PORT")
  cpu1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$LABEL round $round: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s," \
    "p50 $(echo "$out" | awk '$1 == "50%" {print $2}')," \
    "p99 $(echo "$out" | awk '$1 == "99%" {print $2}')," \
    "CPU $(( (cpu1 - cpu0) * 10000 / requests )) µs/request," \
    "non-2xx $(echo "$out" | awk '/Non-2xx/ {n = $5} END {print n + 0}')"
done
