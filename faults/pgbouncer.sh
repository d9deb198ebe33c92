#!/usr/bin/env bash
# The service behind PgBouncer in transaction mode (what Neon's pooled endpoints run).
#
#   stock     PgBouncer as configured out of the box (Debian's 1.18: no prepared-statement
#             support, and no ignore_startup_parameters): DB_TRANSACTION_POOLER=true must start
#             and serve a concurrent CRUD smoke with no errors.
#   tolerant  the same plus `ignore_startup_parameters = extra_float_digits` (the usual
#             workaround for drivers that send it, e.g. pgjdbc/lib/pq/sqlx) and client TLS with
#             the cluster's certificate (as Neon's pooler): DB_TRANSACTION_POOLER=true must start
#             (twice: migrations through the pooler must not leave a session advisory lock
#             behind), serve the CRUD smoke with no errors, and multiplex (fewer server
#             connections than the service opened).
#             crossexec.py: a user who only GETs must never lose a task while another user
#             creates and deletes (a named statement must never run as another one).
#   false     DB_TRANSACTION_POOLER=false through both: information only (expect
#             "prepared statement ... does not exist/already exists", and worse: statements
#             executed under another statement's name).
# PgBouncer's pool (PGB_POOL_SIZE, 4) is smaller than the service's (10), so consecutive
# transactions of one service connection land on different server connections.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
faults_init

if ! "$TODO_BIN" serve --help 2>/dev/null | grep -qi pooler; then
    report FAIL pgbouncer/binary "this build of todo-backend has no DB_TRANSACTION_POOLER setting (rebuild and re-run)"
fi
pg_start_cluster
export PGB_POOL_SIZE=${PGB_POOL_SIZE:-4}
export DB_MAX_CONNECTIONS=${PGB_DB_MAX_CONNECTIONS:-10}

pgb_start stock
STOCK_PORT=$PGB_PORT
PGB_CLIENT_TLS=1 PGB_EXTRA="ignore_startup_parameters = extra_float_digits" pgb_start tolerant
TOLERANT_PORT=$PGB_PORT
STOCK_URL="postgres://todo@127.0.0.1:$STOCK_PORT/todo?sslmode=disable"
TOLERANT_URL="postgres://todo@127.0.0.1:$TOLERANT_PORT/todo?sslmode=verify-full&sslrootcert=$CA_CERT"

start_error() { grep -E 'ERROR' "$SVC_LOG" | tail -1 | sed -E 's/^[^ ]+ +ERROR +[^ ]+ //' | cut -c1-300; }
advisory_locks() {
    psql_su -c "select count(*) from pg_locks l join pg_database d on d.oid = l.database
                where l.locktype = 'advisory' and d.datname = 'todo'"
}
crud() { run_child python3 "$FAULTS_DIR/crud.py" "$@"; }

# --- stock PgBouncer, DB_TRANSACTION_POOLER=true ------------------------------------------------
if svc_start stock-true "$STOCK_URL" DB_TRANSACTION_POOLER=true; then
    report PASS pgbouncer/stock/pooler-true-starts "started behind stock PgBouncer"
    crud pgbouncer/stock/pooler-true-crud
    svc_stop
else
    report FAIL pgbouncer/stock/pooler-true-starts "start-up failed behind a stock transaction-mode \
PgBouncer: $(start_error) (sqlx sends the startup parameter extra_float_digits, which PgBouncer \
refuses unless ignore_startup_parameters lists it; PgConnectOptions::extra_float_digits(None) in \
pooler mode would avoid it)"
fi

# --- tolerant PgBouncer (client TLS), DB_TRANSACTION_POOLER=true -----------------------------------
if svc_start tolerant-true "$TOLERANT_URL" DB_TRANSACTION_POOLER=true; then
    locks=$(advisory_locks)
    report PASS pgbouncer/tolerant/pooler-true-starts "started through PgBouncer (verify-full TLS to the pooler); advisory locks left in db todo: $locks"
    crud pgbouncer/tolerant/pooler-true-crud
    run_child python3 "$FAULTS_DIR/crossexec.py" pgbouncer/tolerant/pooler-true-no-statement-mixups --check
    server=$(psql_su -c "select count(*) from pg_stat_activity where usename = 'todo' and datname = 'todo'")
    clients=$(psql_su -p "$TOLERANT_PORT" -d pgbouncer -c 'show clients' 2>/dev/null | grep -c '^C|todo|todo|')
    report INFO pgbouncer/tolerant/multiplexing "the service holds $clients connections to PgBouncer, PostgreSQL sees $server server connections (default_pool_size=$PGB_POOL_SIZE)"
    svc_stop
    # A second start through the pooler: migrations run again (and take sqlx's migration lock).
    t0=$SECONDS
    if SVC_WAIT=20 svc_start tolerant-true-again "$TOLERANT_URL" DB_TRANSACTION_POOLER=true; then
        locks=$(advisory_locks)
        if [[ $locks == 0 ]]; then
            report PASS pgbouncer/tolerant/restart "second start through the pooler in $((SECONDS - t0)) s; no advisory lock left behind"
        else
            report FAIL pgbouncer/tolerant/restart "second start ok, but $locks session advisory lock(s) held in db todo (a leaked migration lock would block the next start)"
        fi
        crud pgbouncer/tolerant/pooler-true-crud-after-restart
        svc_stop
    else
        report FAIL pgbouncer/tolerant/restart "second start through the pooler failed or hung: $(start_error); advisory locks: $(advisory_locks)"
    fi
else
    report FAIL pgbouncer/tolerant/pooler-true-starts "start-up failed: $(start_error)"
fi

# --- DB_TRANSACTION_POOLER unset (auto) on PgBouncer's usual port 6432 --------------------------
if python3 -c 'import socket; socket.socket().bind(("127.0.0.1", 6432))' 2>/dev/null; then
    PGB_LISTEN_PORT=6432 pgb_start auto6432
    if svc_start auto-6432 "postgres://todo@127.0.0.1:6432/todo?sslmode=disable"; then
        report PASS pgbouncer/auto/port-6432-starts "with DB_TRANSACTION_POOLER unset, port 6432 switched pooler mode on"
        crud pgbouncer/auto/port-6432-crud
        svc_stop
    else
        report FAIL pgbouncer/auto/port-6432-starts "start-up on port 6432 with DB_TRANSACTION_POOLER unset failed: $(start_error)"
    fi
else
    report INFO pgbouncer/auto/port-6432 "port 6432 is taken on this machine: auto detection by port not exercised"
fi

# --- DB_TRANSACTION_POOLER=false: information only -----------------------------------------------
for which in tolerant stock; do
    url=$TOLERANT_URL port=$TOLERANT_PORT
    [[ $which == stock ]] && url=$STOCK_URL port=$STOCK_PORT
    started=0 errors=()
    for attempt in 1 2 3; do
        # Fresh server connections, so statements left by earlier runs don't decide the outcome.
        psql_su -p "$port" -d pgbouncer -c "reconnect todo" >/dev/null 2>&1
        if svc_start "$which-false-$attempt" "$url" DB_TRANSACTION_POOLER=false 2>/dev/null; then
            started=$attempt
            break
        fi
        errors+=("attempt $attempt: $(start_error)")
        [[ ${errors[-1]} == *"prepared statement"* ]] || break # only that failure is a matter of luck
    done
    if ((started)); then
        report INFO "pgbouncer/$which/pooler-false" "started (attempt $started)${errors:+; failed before: ${errors[*]}}"
        CRUD_ITERATIONS=${CRUD_INFO_ITERATIONS:-5} crud "pgbouncer/$which/pooler-false-crud" --info
        run_child python3 "$FAULTS_DIR/crossexec.py" "pgbouncer/$which/pooler-false-statement-mixups"
        svc_stop
    else
        report INFO "pgbouncer/$which/pooler-false" "start-up failed: ${errors[*]}"
    fi
done

exit $((FAULTS_FAILED > 0))
