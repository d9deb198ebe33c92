#!/usr/bin/env bash
# Runs the fault-injection suite and prints every result; the last line is
#   faults: N passed, M failed
# and the exit status is non-zero when anything failed.
#
# usage: faults/run.sh [outage|pool|tls|pgbouncer|rolling ...]   (default: all, in that order)
# Needs root, PostgreSQL 15 in /usr/lib/postgresql/15/bin, pgbouncer, openssl, python3, curl,
# and a built service (TODO_BIN, default target/debug/todo-backend in this checkout). Each script
# starts its own private cluster on a free loopback port and removes everything on exit.
set -u
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=("$@")
((${#SCRIPTS[@]})) || SCRIPTS=(outage pool tls pgbouncer rolling)

FAULTS_RESULTS=$(mktemp /tmp/faults-results.XXXXXX)
export FAULTS_RESULTS
child=""

on_signal() {
    trap - INT TERM HUP
    echo "run.sh: interrupted, stopping ${child:-nothing}" >&2
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null # its EXIT trap stops its clusters and processes
        wait "$child" 2>/dev/null
    fi
    rm -f "$FAULTS_RESULTS"
    exit 130
}
trap on_signal INT TERM HUP
trap 'rm -f "$FAULTS_RESULTS"' EXIT

count() { grep -c "^\[$1\]" "$FAULTS_RESULTS"; }

start=$SECONDS
for name in "${SCRIPTS[@]}"; do
    script=$DIR/$name.sh
    if [[ ! -f $script ]]; then
        echo "[FAIL] $name: no such script $script" | tee -a "$FAULTS_RESULTS"
        continue
    fi
    echo "=== $name"
    before=$(count FAIL)
    t0=$SECONDS
    # In the background + wait, so that a signal reaches our trap at once.
    bash "$script" &
    child=$!
    wait "$child"
    rc=$?
    child=""
    if ((rc != 0 && $(count FAIL) == before)); then
        echo "[FAIL] $name: script exited with status $rc without reporting a result" |
            tee -a "$FAULTS_RESULTS"
    fi
    echo "=== $name: $((SECONDS - t0)) s, exit $rc"
done

passed=$(count PASS)
failed=$(count FAIL)
echo
echo "=== summary ($((SECONDS - start)) s)"
grep -E '^\[(FAIL|INFO)\] .*(summary|WARNING)' "$FAULTS_RESULTS" || true
grep '^\[FAIL\]' "$FAULTS_RESULTS" | cut -c1-300 || true
echo "faults: $passed passed, $failed failed"
((failed == 0))
