#!/usr/bin/env bash
# A real browser reads the live event stream (see events.mjs): Debian's Chromium, headless,
# driven by playwright-core from npm (no browser download), against the todo-backend binary
# on an in-memory SQLite database, from a page on another origin that CORS allows.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
# Last line: "browser: N passed, M failed"; exit status 1 if anything failed.
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
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
cd "$HERE"

if [[ ! -x $CHROMIUM ]]; then
  echo "error: no browser at $CHROMIUM (apt-get install chromium)" >&2
  exit 2
fi
# playwright-core downloads no browser; this one is Debian's.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_ci_once browser

dir=$(mktemp -d "${TMPDIR:-/tmp}/browser-events.XXXXXX")
api_port=$(free_port)
page_port=$(free_port)
while [[ $page_port == "$api_port" ]]; do page_port=$(free_port); done
api="http://127.0.0.1:$api_port"
secret="browser-test-secret-$(date +%s%N)-0123456789"
(cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" \
  BETTER_AUTH_SECRET="$secret" DATABASE_URL=sqlite::memory: PORT="$api_port" HOST=127.0.0.1 \
  CORS_ALLOWED_ORIGINS="http://127.0.0.1:$page_port" SHUTDOWN_GRACE_SECONDS=0 \
  METRICS_ADDR=127.0.0.1:0 \
  "$BIN" serve) >"$dir/api.log" 2>&1 &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true' EXIT
if ! wait_healthy "$api" "$api_pid" 30; then
  tail -n 20 "$dir/api.log" | sed 's/^/#   /'
  echo "browser: 0 passed, 1 failed"
  exit 1
fi
token=$(env -i PATH="$PATH" BETTER_AUTH_SECRET="$secret" "$BIN" token browser-user)

status=0
API=$api TOKEN=$token PAGE_PORT=$page_port CHROMIUM=$CHROMIUM node events.mjs || status=$?
if ((status != 0)); then
  echo "# todo-backend log:"; tail -n 20 "$dir/api.log" | sed 's/^/#   /'
  echo "# kept in $dir"
else
  rm -rf "$dir"
fi
exit "$status"
