#!/usr/bin/env bash
# The TypeScript client against the service: regenerates its types from the document the
# binary serves and fails on any drift from the committed src/schema.ts, type-checks the
# client, its tests and examples/usage.ts, then runs the tests (Node's test runner) against the
# service on SQLite.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
# Last line: "typescript: N passed, M failed" (the drift check and each test); exit status 1
# on any failure.
set -euo pipefail

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
npm_ci_once client

passed=0 failed=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/todo-client.XXXXXX")
API_PID=""
cleanup() {
  if [[ -n $API_PID ]]; then
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The types, from the document as the binary serves it, with the pinned generator.
"$BIN" openapi >openapi.json
npx --no-install openapi-typescript openapi.json --output "$WORK/schema.ts" >/dev/null
if diff -u src/schema.ts "$WORK/schema.ts"; then
  echo "ok - the committed types are those of the document"
  passed=$((passed + 1))
else
  echo "not ok - src/schema.ts differs from the document: run \`npm run generate\` here"
  failed=$((failed + 1))
fi
rm -rf dist build-test
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.test.json

port=$(free_port)
url="http://127.0.0.1:$port"
BETTER_AUTH_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
export DATABASE_URL="sqlite://$WORK/todo.db" PORT=$port HOST=127.0.0.1 BETTER_AUTH_SECRET
export RATE_LIMIT_PER_MINUTE=0 METRICS_ADDR=127.0.0.1:0 LOG_FORMAT=text NO_COLOR=1
(cd "$WORK" && exec "$BIN" serve) >"$WORK/service.log" 2>&1 &
API_PID=$!
wait_healthy "$url" "$API_PID" 30
TODO_TOKEN=$(cd "$WORK" && "$BIN" token alice --ttl 1h)
export TODO_BASE_URL=$url TODO_TOKEN
report=$WORK/tap
node --test --test-reporter=tap build-test/test/ | tee "$report" || true
tests_passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$report" | tail -n 1)
tests_failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$report" | tail -n 1)
if [[ -z $tests_passed || -z $tests_failed ]]; then
  tests_passed=0 tests_failed=1
fi
passed=$((passed + tests_passed))
failed=$((failed + tests_failed))
echo "typescript: $passed passed, $failed failed"
((failed == 0))
