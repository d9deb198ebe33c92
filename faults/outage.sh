#!/usr/bin/env bash
# DB outage under load (see outage.py): private cluster over TLS, one service instance that
# lives through every fault, several runs per scenario.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
faults_init

pg_start_cluster
export DB_ACQUIRE_TIMEOUT_MS=${DB_ACQUIRE_TIMEOUT_MS:-2000}
export DB_MAX_CONNECTIONS=${OUTAGE_DB_MAX_CONNECTIONS:-10}
if ! svc_start outage "postgres://todo@127.0.0.1:$PG_PORT/todo?sslmode=verify-full&sslrootcert=$CA_CERT"; then
    report FAIL outage/setup "service did not start"
    exit 1
fi
run_child python3 "$FAULTS_DIR/outage.py"
rc=$?
# Live streams through the same kinds of outage: they stay open and catch up.
run_child python3 "$FAULTS_DIR/events.py" || rc=1

# Information: start-up while the database is unreachable (nothing listens on the port).
# Starting not-ready and connecting lazily would be the alternative to exiting.
dead_port=$(free_port)
svc_env_args
t0=$(date +%s.%N)
(cd "$FAULTS_TMP" && timeout 10 env -i "${SVC_ENV[@]}" PORT=0 \
    DATABASE_URL="postgres://todo@127.0.0.1:$dead_port/todo?sslmode=require" "$TODO_BIN" serve) \
    >"$FAULTS_TMP/boot-down.log" 2>&1
boot_rc=$?
elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if ((boot_rc == 124)); then
    report INFO outage/boot-with-db-down "the service stays up without its database (still running after 10 s)"
else
    report INFO outage/boot-with-db-down "the service refuses to start without its database: exit $boot_rc after $elapsed s: \
$(grep ERROR "$FAULTS_TMP/boot-down.log" | tail -1 | sed -E 's/^[^ ]+ +ERROR +[^ ]+ //' | cut -c1-200)"
fi
if ((rc != 0)); then
    log "service log (last warnings/errors):"
    grep -E 'WARN|ERROR' "$SVC_LOG" | sort | uniq -c | sort -rn | head -5 >&2 || true
fi
exit "$rc"
