#!/usr/bin/env bash
# Instructions the service executes per request, counted by valgrind's callgrind: unlike
# req/s and CPU time, the count does not move with whatever else the machine is doing, so it
# tells two builds apart where a load test on a shared machine cannot.
#
# For each binary: a fresh PostgreSQL database, the service under callgrind (metrics and the
# in-process rate limiter on, as in run.sh), one user's task fetched N1 and then N2 times
# from CONNS keep-alive connections; (total at N2 - total at N1) / (N2 - N1) cancels start-up
# and connection set-up. Prints one line per binary and round.
#
#   bash bench/instructions.sh [BIN ...]      (default: target/release/todo-backend)
#   OP=list N1=200 N2=2200 CONNS=20 ROUNDS=2  (OP: get or list)
#   PROFILE_DIR=dir   keep each binary's profile of N2 requests there
#
# Under valgrind the CPU's SHA extensions are hidden, so SHA-256 (HS256 tokens) counts more
# than it costs natively; compare builds with each other, not with a CPU profile.
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

die() { echo "instructions: $*" >&2; exit 1; }
# The real interpreter, so that it runs under `env -i` (pyenv's shims need HOME and more).
PY=$(python3 -c 'import sys; print(sys.executable)')

OP=${OP:-get} N1=${N1:-200} N2=${N2:-2200} CONNS=${CONNS:-20} ROUNDS=${ROUNDS:-2}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGOPTIONS="-c client_min_messages=warning"
[ $# -gt 0 ] || set -- "$root/target/release/todo-backend"
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"
command -v callgrind_annotate >/dev/null || die "callgrind_annotate is missing"

work=$(mktemp -d)
database=todo_instructions_$$
cleanup() {
  [ -n "${svc_pid:-}" ] && kill "$svc_pid" 2>/dev/null || true
  psql -d postgres -qc "drop database if exists $database with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
port=$(free_port)
# exec: run in the background, the job's pid is the service's own.
service() {
  exec env -i PATH="$PATH" HOME="$work" LANG=C.UTF-8 HOST=127.0.0.1 PORT="$port" RUST_LOG=info \
    DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$database" BETTER_AUTH_SECRET="$secret" \
    RATE_LIMIT_PER_MINUTE=1000000 RATE_LIMIT_BURST=1000000 METRICS_ADDR=127.0.0.1:0 "$@"
}

# One request, N times over CONNS connections; any answer but 200 stops the run.
client() {
  "$PY" - "$port" "$1" "$CONNS" "$path" "$token" <<'PY'
import socket, sys, threading
port, n, conns, path, token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
lock, left, failed = threading.Lock(), [n], []
def worker():
    stream = socket.create_connection(("127.0.0.1", port)).makefile("rwb")
    while True:
        with lock:
            if left[0] <= 0:
                return
            left[0] -= 1
        stream.write(request); stream.flush()
        status, length = stream.readline(), 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        stream.read(length)
        if b" 200 " not in status:
            failed.append(status)
threads = [threading.Thread(target=worker) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
if failed:
    sys.exit(f"{len(failed)} answers were not 200, e.g. {failed[0]!r}")
PY
}

# Total instructions of one service run that serves N requests.
count() {
  local bin=$1 n=$2 out="$work/callgrind.$2"
  (service valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve) >"$work/service.log" 2>&1 &
  svc_pid=$!
  # Valgrind starts the service slowly.
  wait_healthy "http://127.0.0.1:$port" "$svc_pid" 60 || die "no start (log: $work/service.log)"
  client "$n"
  kill -TERM "$svc_pid"
  wait "$svc_pid" || true
  svc_pid=
  awk '/^summary:/ { print $2 }' "$out"
}

echo "instructions per $OP request, ${N1} → ${N2} requests over $CONNS connections (PostgreSQL)"
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    psql -d postgres -qc "drop database if exists $database with (force)" -c "create database $database"
    # Migrations and a few tasks, by the binary itself at full speed.
    (service "$bin" serve) >"$work/seed.log" 2>&1 &
    svc_pid=$!
    wait_healthy "http://127.0.0.1:$port" "$svc_pid" || die "no start (log: $work/seed.log)"
    token=$(service "$bin" token 100001 --ttl 1h 2>/dev/null)
    for i in $(seq 20); do
      curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"title\": \"task $i\", \"tags\": [\"work\"]}" "http://127.0.0.1:$port/api/tasks"
    done
    id=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/tasks?limit=1" |
      "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
    kill -TERM "$svc_pid"
    wait "$svc_pid" || true
    svc_pid=
    case $OP in
      get) path="/api/tasks/$id" ;;
      list) path="/api/tasks?limit=20" ;;
      *) die "OP must be get or list" ;;
    esac
    low=$(count "$bin" "$N1")
    high=$(count "$bin" "$N2")
    echo "round $round  $bin  $(((high - low) / (N2 - N1))) instructions per request  (totals $low, $high)"
    # The larger run's profile, for callgrind_annotate.
    if [ -n "${PROFILE_DIR:-}" ]; then
      mkdir -p "$PROFILE_DIR"
      cp "$work/callgrind.$N2" "$PROFILE_DIR/callgrind.$(basename "$bin").$round"
    fi
  done
done
