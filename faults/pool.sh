#!/usr/bin/env bash
# Pool exhaustion (see pool.py): DB_MAX_CONNECTIONS=2, 200 concurrent clients.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
faults_init

pg_start_cluster
export DB_MAX_CONNECTIONS=${POOL_DB_MAX_CONNECTIONS:-2}
export DB_ACQUIRE_TIMEOUT_MS=${DB_ACQUIRE_TIMEOUT_MS:-2000}
if ! svc_start pool "postgres://todo@127.0.0.1:$PG_PORT/todo?sslmode=verify-full&sslrootcert=$CA_CERT"; then
    report FAIL pool/setup "service did not start"
    exit 1
fi
run_child python3 "$FAULTS_DIR/pool.py"
rc=$?
if ((rc != 0)); then
    log "service log (most frequent warnings/errors):"
    grep -E 'WARN|ERROR' "$SVC_LOG" | sed -E 's/^[^ ]+ +//; s/request_id=[^ ]+//' | sort | uniq -c |
        sort -rn | head -5 >&2 || true
fi
exit "$rc"
