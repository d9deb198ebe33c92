#!/usr/bin/env bash
# CalDAV interoperability: the service's /dav/ against independent CalDAV clients.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
#        DAV_URL=... DAV_USER=... DAV_PASSWORD=... run.sh    (any CalDAV server, no REST)
#
# For each backend (a SQLite file, then a fresh PostgreSQL database that this script creates and
# drops) it starts `todo-backend serve` on a free loopback port, mints JWTs for alice and bob with
# `todo-backend token`, makes each an app password (POST /api/app-passwords), and runs:
#   tester     caldav-server-tester (pinned in requirements.txt; through tester.py, which keeps
#              one check's crash from ending the run) on http://127.0.0.1:PORT/dav/ as alice,
#              fixtures in a list "caldav-server-tester" made over REST; compare.py holds its
#              report (--format json) against expected.json
#   roundtrip  roundtrip.py: VTODOs between CalDAV and REST, sync-collection, app passwords,
#              sharing (bob)
#   todoman    todoman.sh: vdirsyncer + todoman (Debian packages) syncing a list both ways
#
# With DAV_URL set (and REST_URL empty) no service is started: the three parts run against that
# server as DAV_USER (and DAV_BOB_USER for the cross-user checks), with the REST checks skipped.
# That is how the scripts themselves are checked, against Radicale (see README.md).
#
# Environment (all optional):
#   BACKENDS   default "sqlite postgres"
#   PARTS      default "tester roundtrip todoman"
#   EXPECTED   the tester's expectations, default expected.json beside this script
#   KEEP       a directory to copy each run's tester report and logs into
#   PGHOST PGPORT PGUSER  PostgreSQL server, default 127.0.0.1 5432 postgres (trust auth)
#   DAV_URL DAV_USER DAV_PASSWORD [DAV_BOB_USER DAV_BOB_PASSWORD]  the no-service mode above
#
# Last line: "caldav: N passed, M failed" (tester features, roundtrip and todoman checks, all
# backends); exit status 1 on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
DAV_ONLY=""
if [[ -n ${DAV_URL:-} ]]; then
  if [[ $# -ne 0 || -n ${REST_URL:-} || -z ${DAV_USER:-} || -z ${DAV_PASSWORD:-} ]]; then
    echo "usage: DAV_URL=... DAV_USER=... DAV_PASSWORD=... $0   (no argument, REST_URL empty)" >&2
    exit 2
  fi
  DAV_ONLY=1
  BACKENDS=dav
else
  if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH_TO_TODO_BACKEND_BINARY" >&2
    exit 2
  fi
  require_service_bin "$1"
  BIN=$(realpath "$1")
  BACKENDS=${BACKENDS:-sqlite postgres}
fi
PARTS=${PARTS:-tester roundtrip todoman}
EXPECTED=${EXPECTED:-$HERE/expected.json}
KEEP=${KEEP:-}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
TESTER_CALENDAR=caldav-server-tester

# caldav-server-tester and caldav, pinned, in a virtual environment of their own.
VENV=$HERE/.venv
stamp_want="$(python3 --version 2>&1) $(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.stamp" 2>/dev/null || true)" != "$stamp_want" ]]; then
  echo "# installing caldav-server-tester into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp_want" >"$VENV/.stamp"
fi
PY=$VENV/bin/python
echo "# caldav-server-tester $("$VENV/bin/caldav-server-tester" --version | awk '{print $NF}'), caldav $("$PY" -c 'import caldav; print(caldav.__version__)')"

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
fail() { # fail MESSAGE [FILE]: one failure, with the end of FILE
  failed=$((failed + 1))
  echo "not ok - $1"
  if [[ -n ${2:-} && -s $2 ]]; then tail -n 30 "$2" | sed 's/^/#   /'; fi
}
# tally TARGET PART OUTPUT: prints OUTPUT, adds up its last line "PART: N passed, M failed"
tally() {
  local target=$1 part=$2 out=$3 last
  printf '%s\n' "$out" | sed "\$s/^$part:/# $target $part:/"
  last=$(printf '%s\n' "$out" | tail -n 1)
  if [[ $last =~ ^$part:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    fail "$target $part: no summary line"
  fi
}
# rest METHOD PATH TOKEN [JSON]: the response body; fails unless 2xx
rest() {
  curl -fsS -X "$1" "$url$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
    ${4:+--data "$4"}
}
json_field() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

run_parts() {
  local target=$1 out rc
  if [[ " $PARTS " == *" tester "* ]]; then
    rc=0
    timeout 1200 "$PY" "$HERE/tester.py" --caldav-url "$DAV_URL" \
      --caldav-username "$DAV_USER" --caldav-password "$DAV_PASSWORD" \
      --caldav-calendar "$TESTER_CALENDAR" --format json \
      >"$WORK/tester.json" 2>"$WORK/tester.log" || rc=$?
    if [[ -n $KEEP ]]; then
      mkdir -p "$KEEP"
      cp "$WORK/tester.json" "$KEEP/tester-$target.json"
      cp "$WORK/tester.log" "$KEEP/tester-$target.log"
    fi
    if ((rc != 0)); then fail "$target: caldav-server-tester exited with $rc" "$WORK/tester.log"; fi
    out=$("$PY" "$HERE/compare.py" "$EXPECTED" "$WORK/tester.json" 2>&1) || true
    tally "$target" tester "$out"
  fi
  if [[ " $PARTS " == *" roundtrip "* ]]; then
    out=$(timeout 600 "$PY" "$HERE/roundtrip.py" 2>&1) || true
    tally "$target" roundtrip "$out"
  fi
  if [[ " $PARTS " == *" todoman "* ]]; then
    out=$(PYTHON=$PY timeout 600 bash "$HERE/todoman.sh" 2>&1) || true
    tally "$target" todoman "$out"
  fi
}

for backend in $BACKENDS; do
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/todo-caldav-$backend.XXXXXX")
  echo "# $backend"
  if [[ -n $DAV_ONLY ]]; then
    export DAV_URL DAV_USER DAV_PASSWORD REST_URL="" TOKEN="" BOB_TOKEN=""
    export BOB_USER=${DAV_BOB_USER:-} BOB_PASSWORD=${DAV_BOB_PASSWORD:-}
    # The tester's fixtures go into a calendar of that name, made here when missing.
    "$PY" - "$TESTER_CALENDAR" <<'EOF'
import os, sys, caldav
principal = caldav.DAVClient(url=os.environ["DAV_URL"], username=os.environ["DAV_USER"],
                             password=os.environ["DAV_PASSWORD"]).principal()
if sys.argv[1] not in [c.get_display_name() for c in principal.calendars()]:
    principal.make_calendar(name=sys.argv[1], cal_id=sys.argv[1])
EOF
    run_parts "$backend"
    cleanup
    continue
  fi
  case $backend in
    sqlite) database_url="sqlite://$WORK/todo.db" ;;
    postgres)
      DB_NAME="todo_caldav_$(date +%s)_$$"
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
    fail "$backend: the service answers /health" "$WORK/service.log"
    cleanup
    continue
  fi
  alice_token=$(cd "$WORK" && "$BIN" token alice --ttl 1h)
  bob_token=$(cd "$WORK" && "$BIN" token bob --ttl 1h)
  if ! alice=$(rest POST /api/app-passwords "$alice_token" '{"name":"ci"}') ||
    ! bob=$(rest POST /api/app-passwords "$bob_token" '{"name":"ci"}') ||
    ! rest POST /api/lists "$alice_token" "{\"name\":\"$TESTER_CALENDAR\"}" >/dev/null; then
    fail "$backend: app passwords and the tester's list over REST" "$WORK/service.log"
    cleanup
    continue
  fi
  export DAV_URL="$url/dav/" REST_URL=$url TOKEN=$alice_token BOB_TOKEN=$bob_token
  DAV_USER=$(json_field username <<<"$alice") DAV_PASSWORD=$(json_field password <<<"$alice")
  BOB_USER=$(json_field username <<<"$bob") BOB_PASSWORD=$(json_field password <<<"$bob")
  export DAV_USER DAV_PASSWORD BOB_USER BOB_PASSWORD
  run_parts "$backend"
  if [[ -n $KEEP ]]; then cp "$WORK/service.log" "$KEEP/service-$backend.log"; fi
  cleanup
done
echo "caldav: $passed passed, $failed failed"
((failed == 0))
