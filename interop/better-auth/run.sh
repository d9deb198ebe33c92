#!/usr/bin/env bash
# Interop test: a real Better Auth server (Node) issues JWTs, todo-backend verifies them via JWKS.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
#
# For each signing algorithm, starts `node server.mjs` and the todo-backend binary on free
# loopback ports, runs `node e2e.mjs` against both, then stops them. The setup is that of
# docs/better-auth.md, "Connect a Better Auth frontend": Better Auth's jwt plugin gives the tokens the API's URL as
# audience, and the service runs with BETTER_AUTH_URL and JWT_AUDIENCE (that URL) and nothing
# else, in an empty temp dir of its own (no .env read, nothing written into the checkout).
# Last line: "interop: N passed, M failed"; exit status 1 if anything failed.
set -euo pipefail

ALGS=(EdDSA ES256 RS256)
READY_TIMEOUT=${READY_TIMEOUT:-30}   # seconds, for each server to come up

if [[ $# -ne 1 ]]; then
  echo "usage: $0 PATH_TO_TODO_BACKEND_BINARY" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
require_service_bin "$1"
BIN=$(realpath "$1")
cd "$HERE"

# The pinned dependencies, once (better-sqlite3 is a native addon, built for one Node).
npm_ci_once interop

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/better-auth-e2e.XXXXXX")
AUTH_PID=""
API_PID=""

stop() {  # stop the servers of the current round, if any
  for pid in $AUTH_PID $API_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  AUTH_PID="" API_PID=""
}
trap stop EXIT
trap 'exit 130' INT TERM  # make sure the EXIT trap also runs when we are interrupted

# wait_for PID DESCRIPTION COMMAND...: poll COMMAND until it succeeds, the process dies, or timeout.
wait_for() {
  local pid=$1 what=$2 deadline=$((SECONDS + READY_TIMEOUT))
  shift 2
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "# $what exited before it was ready"; return 1; fi
    if ((SECONDS >= deadline)); then echo "# $what not ready after ${READY_TIMEOUT}s"; return 1; fi
    sleep 0.2
  done
}

passed=0
failed=0
for alg in "${ALGS[@]}"; do
  echo "# === $alg"
  auth_port=$(free_port)
  api_port=$(free_port)
  while [[ $api_port == "$auth_port" ]]; do api_port=$(free_port); done
  auth_url="http://127.0.0.1:$auth_port"
  api_url="http://127.0.0.1:$api_port"

  : >"$LOGS/auth-$alg.log"  # exists before we poll it
  AUTH_PORT=$auth_port JWT_AUDIENCE=$api_url JWT_ALG=$alg node server.mjs >"$LOGS/auth-$alg.log" 2>&1 &
  AUTH_PID=$!
  if ! wait_for "$AUTH_PID" "better-auth ($alg)" grep -q '^READY$' "$LOGS/auth-$alg.log"; then
    echo "not ok - $alg: better-auth server did not start"; sed 's/^/#   /' "$LOGS/auth-$alg.log"
    failed=$((failed + 1)); stop; continue
  fi

  # exec twice (subshell, env), so $! is the service itself.
  api_dir=$LOGS/api-$alg
  mkdir "$api_dir"
  (cd "$api_dir" && exec env -i PATH="$PATH" HOME="$api_dir" \
    BETTER_AUTH_URL="$auth_url" JWT_AUDIENCE="$api_url" \
    DATABASE_URL=sqlite::memory: PORT="$api_port" HOST=127.0.0.1 METRICS_ADDR=127.0.0.1:0 \
    "$BIN" serve) >"$LOGS/api-$alg.log" 2>&1 &
  API_PID=$!
  if ! wait_healthy "$api_url" "$API_PID" "$READY_TIMEOUT"; then
    echo "not ok - $alg: todo-backend did not become healthy"; tail -n 20 "$LOGS/api-$alg.log" | sed 's/^/#   /'
    failed=$((failed + 1)); stop; continue
  fi

  # e2e.mjs exits non-zero on failures; its summary line is what we count. Shown as a comment,
  # so that this script's own last line is the only "WORD: N passed, M failed" line it prints.
  AUTH_URL=$auth_url API_URL=$api_url JWT_AUDIENCE=$api_url JWT_ALG=$alg node e2e.mjs |
    tee "$LOGS/e2e-$alg.log" | sed -u "s/^e2e: /# e2e ($alg): /" || true
  summary=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$LOGS/e2e-$alg.log" || true)
  if [[ $summary =~ ^e2e:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    echo "not ok - $alg: e2e.mjs printed no summary"
    failed=$((failed + 1))
  fi
  if grep -q '^not ok' "$LOGS/e2e-$alg.log"; then
    echo "# todo-backend log ($alg):"; tail -n 20 "$LOGS/api-$alg.log" | sed 's/^/#   /'
  fi
  stop
  # With BETTER_AUTH_URL set, nothing may sign tokens the service accepts but Better Auth.
  if [[ -e $api_dir/data/dev-secret ]]; then
    echo "not ok - $alg: the service created a development secret although BETTER_AUTH_URL was set"
    failed=$((failed + 1))
  else
    echo "ok - $alg: the service created no development secret"
    passed=$((passed + 1))
  fi
done

if ((failed == 0)); then rm -rf "$LOGS"; else echo "# logs kept in $LOGS"; fi
echo "interop: $passed passed, $failed failed"
((failed == 0))
