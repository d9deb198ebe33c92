#!/usr/bin/env bash
# Repeating tasks against an independent implementation: compare.py creates random repeating
# tasks over HTTP, completes them, and checks every next due date with python-dateutil's rrule.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
#
# For each backend (a SQLite file, then a fresh PostgreSQL database that this script creates and
# drops) it starts `todo-backend serve` on a free loopback port, mints a token with
# `todo-backend token`, and runs compare.py with CASES random cases.
#
# Environment (all optional):
#   BACKENDS  default "sqlite postgres"
#   CASES     random cases per backend, default 500
#   SEED      default random (printed, so that a run can be repeated)
#   PGHOST PGPORT PGUSER  PostgreSQL server, default 127.0.0.1 5432 postgres (trust auth)
#
# Last line: "recurrence: N passed, M failed" (cases, both backends); exit status 1 on any
# failure.
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
BACKENDS=${BACKENDS:-sqlite postgres}
CASES=${CASES:-500}
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER

# python-dateutil, pinned, in a virtual environment of its own.
VENV=$HERE/.venv
stamp_want="$(python3 --version 2>&1) $(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.stamp" 2>/dev/null || true)" != "$stamp_want" ]]; then
  echo "# installing python-dateutil into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp_want" >"$VENV/.stamp"
fi
echo "# python-dateutil $("$VENV/bin/python" -c 'import dateutil; print(dateutil.__version__)'), seed $SEED, $CASES cases per backend"

WORK="" API_PID="" DB_NAME=""
cleanup() {
  if [[ -n $API_PID ]]; then
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=""
  fi
  if [[ -n $DB_NAME ]]; then
    psql -d postgres -qc "drop database if exists \"$DB_NAME\" with (force)" >/dev/null || true
    DB_NAME=""
  fi
  if [[ -n $WORK ]]; then
    rm -rf "$WORK"
    WORK=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
for backend in $BACKENDS; do
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/todo-recurrence-$backend.XXXXXX")
  case $backend in
    sqlite) database_url="sqlite://$WORK/todo.db" ;;
    postgres)
      DB_NAME="todo_recurrence_$(date +%s)_$$"
      psql -d postgres -v ON_ERROR_STOP=1 -qc "create database \"$DB_NAME\""
      database_url="postgres://$PGUSER@$PGHOST:$PGPORT/$DB_NAME"
      ;;
    *) echo "# unknown backend: $backend" >&2; exit 2 ;;
  esac
  port=$(free_port)
  url="http://127.0.0.1:$port"
  BETTER_AUTH_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
  export DATABASE_URL=$database_url PORT=$port HOST=127.0.0.1 BETTER_AUTH_SECRET
  export RATE_LIMIT_PER_MINUTE=0 METRICS_ADDR=127.0.0.1:0 LOG_FORMAT=text NO_COLOR=1
  (cd "$WORK" && exec "$BIN" serve) >"$WORK/service.log" 2>&1 &
  API_PID=$!
  if ! wait_healthy "$url" "$API_PID" 30; then
    cat "$WORK/service.log" >&2
    failed=$((failed + 1))
    cleanup
    continue
  fi
  token=$(cd "$WORK" && "$BIN" token alice --ttl 1h)
  echo "# $backend"
  out=$("$VENV/bin/python" "$HERE/compare.py" "$url" "$token" "$CASES" "$SEED") || true
  printf '%s\n' "$out" | sed "s/^recurrence:/# $backend:/"
  last=$(printf '%s\n' "$out" | tail -n 1)
  if [[ $last =~ ^recurrence:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1))
  fi
  cleanup
done
echo "recurrence: $passed passed, $failed failed"
((failed == 0))
