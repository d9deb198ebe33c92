# shellcheck shell=bash
# Helpers for the fault-injection scripts: a private PostgreSQL 15 cluster with TLS, PgBouncer
# in front of it, and the service itself. Source this file, then call faults_init. It sources
# scripts/lib.sh for free_port, wait_healthy, require_service_bin and write_pgbouncer_config.
#
# Everything lives in one temp dir ($FAULTS_TMP) and is torn down by the EXIT trap, also on
# failure or Ctrl-C: services and pgbouncer are killed by pid, clusters stopped, the dir removed.
# FAULTS_KEEP=1 keeps the temp dir (logs) for debugging.

set -u -o pipefail

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$FAULTS_DIR/../scripts/lib.sh"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TODO_BIN=${TODO_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/debug/todo-backend}
PGBOUNCER_BIN=${PGBOUNCER_BIN:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
# A fixed test secret (>= 32 bytes); only ever used against the private cluster.
BETTER_AUTH_SECRET=${FAULTS_AUTH_SECRET:-faults-test-secret-0123456789abcdef-0123456789}
export PG_BIN TODO_BIN BETTER_AUTH_SECRET FAULTS_DIR
export PYTHONDONTWRITEBYTECODE=1 # keep faults/ free of __pycache__

FAULTS_SVC_PIDS=()
FAULTS_BG_PIDS=()
FAULTS_PGB_PIDFILES=()
FAULTS_PGDATAS=()
FAULTS_FAILED=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# report PASS|FAIL|INFO NAME DETAIL...: one result line, also appended to $FAULTS_RESULTS
# (run.sh counts PASS and FAIL lines there).
report() {
    local kind=$1 name=$2
    shift 2
    local line="[$kind] $name: $*"
    printf '%s\n' "$line"
    if [[ -n ${FAULTS_RESULTS:-} ]]; then printf '%s\n' "$line" >>"$FAULTS_RESULTS"; fi
    if [[ $kind == FAIL ]]; then FAULTS_FAILED=$((FAULTS_FAILED + 1)); fi
    return 0
}

faults_init() {
    [[ $(id -u) == 0 ]] || die "run as root (clusters run as the postgres user via runuser)"
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"
    require_service_bin "$TODO_BIN"
    FAULTS_TMP=$(mktemp -d /tmp/faults.XXXXXX)
    chmod 755 "$FAULTS_TMP" # the postgres user must traverse it
    export FAULTS_TMP
    trap faults_cleanup EXIT
    trap 'faults_on_signal INT' INT
    trap 'faults_on_signal TERM' TERM
    trap 'faults_on_signal HUP' HUP
}

faults_on_signal() {
    log "caught SIG$1: cleaning up"
    trap - INT TERM HUP
    exit 130
}

faults_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    local pid
    for pid in "${FAULTS_BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${FAULTS_SVC_PIDS[@]}"; do stop_pid "$pid"; done
    local pidfile
    for pidfile in "${FAULTS_PGB_PIDFILES[@]}"; do
        [[ -s $pidfile ]] && stop_pid "$(cat "$pidfile")"
    done
    local data
    for data in "${FAULTS_PGDATAS[@]}"; do pg_kill_cluster "$data"; done
    for pid in "${FAULTS_BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    if [[ ${FAULTS_KEEP:-0} == 1 ]]; then
        log "kept $FAULTS_TMP"
    elif [[ -n ${FAULTS_TMP:-} && -d $FAULTS_TMP ]]; then
        rm -rf -- "$FAULTS_TMP"
    fi
    exit "$rc"
}

# stop_pid PID: TERM, wait up to 3 s, then KILL. Only for processes these scripts started.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# run_child CMD...: runs CMD in the background and waits, so a TERM/INT to this script is
# handled at once (the trap kills the child) instead of after CMD finishes.
run_child() {
    "$@" &
    local pid=$!
    FAULTS_BG_PIDS+=("$pid")
    wait "$pid"
}

# ---------------------------------------------------------------------------------------------
# Certificates

# gen_ca DIR NAME: a self-signed CA, DIR/NAME.crt and DIR/NAME.key.
gen_ca() {
    local dir=$1 name=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=faults test CA $name" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null ||
        die "openssl: cannot create CA $name"
}

# gen_server_cert DIR CA_NAME NAME: DIR/NAME.crt and .key, signed by CA_NAME, for 127.0.0.1 and
# localhost.
gen_server_cert() {
    local dir=$1 ca=$2 name=$3
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null ||
        die "openssl: cannot create CSR $name"
    printf '%s\n' \
        "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$dir/$name.ext" \
        -out "$dir/$name.crt" 2>/dev/null || die "openssl: cannot sign $name"
}

# ---------------------------------------------------------------------------------------------
# The private PostgreSQL cluster

as_postgres() { (cd "$FAULTS_TMP" && runuser -u postgres -- "$@"); }

# pg_start_cluster: initdb + TLS + trust auth on loopback, started on a free port, with a role
# and database `todo` for the service. Sets PGDATA_DIR, PG_PORT, PG_LOG, CERT_DIR, CA_CERT.
# Knobs (set before calling): PG_LISTEN (default 127.0.0.1), PG_HBA_HOST (host|hostssl).
pg_start_cluster() {
    CERT_DIR=$FAULTS_TMP/certs
    gen_ca "$CERT_DIR" ca
    gen_server_cert "$CERT_DIR" ca server
    chmod 755 "$CERT_DIR"
    chmod 644 "$CERT_DIR"/*.crt
    CA_CERT=$CERT_DIR/ca.crt

    local pgroot=$FAULTS_TMP/pg
    mkdir -p "$pgroot"
    chown postgres: "$pgroot"
    chmod 700 "$pgroot"
    PGDATA_DIR=$pgroot/data
    PG_LOG=$pgroot/postgres.log
    PG_PORT=$(free_port)
    as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$FAULTS_TMP/initdb.log" 2>&1 ||
        { cat "$FAULTS_TMP/initdb.log" >&2; die "initdb failed"; }
    FAULTS_PGDATAS+=("$PGDATA_DIR")
    install -o postgres -g postgres -m 600 "$CERT_DIR/server.key" "$PGDATA_DIR/server.key"
    install -o postgres -g postgres -m 644 "$CERT_DIR/server.crt" "$PGDATA_DIR/server.crt"
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# --- faults/lib.sh ---
port = $PG_PORT
listen_addresses = '${PG_LISTEN:-127.0.0.1}'
unix_socket_directories = '$pgroot'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
max_connections = 100
shared_buffers = 32MB
fsync = off
full_page_writes = off
log_min_messages = warning
log_connections = off
EOF
    local hba=${PG_HBA_HOST:-host}
    cat >"$PGDATA_DIR/pg_hba.conf" <<EOF
local   all all                 trust
$hba    all all 127.0.0.1/32    trust
$hba    all all 127.0.0.2/32    trust
EOF
    pg_start || die "cannot start the private cluster (log: $PG_LOG)"
    psql_su -c "create role todo login" -c "create database todo owner todo" >/dev/null ||
        die "cannot create role/database todo"
    export PGDATA_DIR PG_PORT PG_LOG CERT_DIR CA_CERT
    log "private cluster: 127.0.0.1:$PG_PORT ($PGDATA_DIR)"
}

pg_start() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 start >/dev/null; }
# pg_stop [fast|immediate|smart]
pg_stop() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m "${1:-fast}" -w -t 60 stop >/dev/null; }
# pg_restart [fast|immediate]
pg_restart() {
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -m "${1:-fast}" -w -t 60 restart >/dev/null
}

pg_kill_cluster() {
    local data=$1
    [[ -f $data/postmaster.pid ]] || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 && return 0
    local pid
    pid=$(head -1 "$data/postmaster.pid" 2>/dev/null)
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    return 0
}

# psql_su ARGS...: psql as superuser into database `todo` (override with PSQL_DB), unaligned.
psql_su() {
    PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
        -U postgres -d "${PSQL_DB:-postgres}" "$@"
}
psql_todo() { PSQL_DB=todo psql_su "$@"; }

# ---------------------------------------------------------------------------------------------
# PgBouncer

# pgb_start [NAME]: PgBouncer in transaction mode on a free loopback port in front of the
# cluster, running as postgres (several can run, one per NAME). Sets PGB_PORT, PGB_LOG.
# Knobs: PGB_POOL_SIZE (default_pool_size, 10), PGB_CLIENT_TLS=1 (clients must use TLS, with
# the cluster's certificate), PGB_EXTRA (extra [pgbouncer] lines), PGB_LISTEN_PORT (a fixed
# port instead of a free one).
pgb_start() {
    local name=${1:-main}
    local dir=$FAULTS_TMP/pgbouncer-$name
    mkdir -p "$dir"
    PGB_PORT=${PGB_LISTEN_PORT:-$(free_port)}
    PGB_LOG=$dir/pgbouncer.log
    local settings=("max_client_conn = 1000" "default_pool_size = ${PGB_POOL_SIZE:-10}"
        "server_tls_sslmode = require")
    if [[ ${PGB_CLIENT_TLS:-0} == 1 ]]; then
        cp "$CERT_DIR/server.crt" "$CERT_DIR/server.key" "$dir/"
        settings+=("client_tls_sslmode = require" "client_tls_cert_file = $dir/server.crt"
            "client_tls_key_file = $dir/server.key")
    fi
    if [[ -n ${PGB_EXTRA:-} ]]; then settings+=("$PGB_EXTRA"); fi
    write_pgbouncer_config "$dir" "$PGB_PORT" 127.0.0.1 "$PG_PORT" transaction "${settings[@]}"
    chown -R postgres: "$dir"
    chmod 600 "$dir"/*.key 2>/dev/null
    FAULTS_PGB_PIDFILES+=("$dir/pgbouncer.pid")
    as_postgres "$PGBOUNCER_BIN" -d "$dir/pgbouncer.ini" || die "pgbouncer $name failed to start"
    for _ in $(seq 50); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGB_PORT" -U todo -d todo; then
            export PGB_PORT PGB_LOG
            log "pgbouncer $name: 127.0.0.1:$PGB_PORT (transaction mode) -> $PG_PORT"
            return 0
        fi
        sleep 0.1
    done
    cat "$PGB_LOG" >&2
    die "pgbouncer $name did not come up"
}

# pgb_stop [NAME]
pgb_stop() {
    local pidfile=$FAULTS_TMP/pgbouncer-${1:-main}/pgbouncer.pid
    [[ -s $pidfile ]] && stop_pid "$(cat "$pidfile")"
    return 0
}

# ---------------------------------------------------------------------------------------------
# The service

# svc_env_args: sets SVC_ENV, the clean environment (for `env -i`) the service runs with.
svc_env_args() {
    SVC_ENV=(PATH="$PATH" HOME="$FAULTS_TMP" HOST=127.0.0.1
        BETTER_AUTH_SECRET="$BETTER_AUTH_SECRET"
        DB_MAX_CONNECTIONS="${DB_MAX_CONNECTIONS:-10}"
        DB_ACQUIRE_TIMEOUT_MS="${DB_ACQUIRE_TIMEOUT_MS:-2000}"
        RUST_LOG="${SVC_RUST_LOG:-info}" LOG_FORMAT=text NO_COLOR=1
        # Load from a few users far past any quota: limits are not what these suites test.
        RATE_LIMIT_PER_MINUTE="${RATE_LIMIT_PER_MINUTE:-0}" AUTH_FAILURES_PER_MINUTE="${AUTH_FAILURES_PER_MINUTE:-0}"
        # Several instances on one machine: each its own metrics port.
        METRICS_ADDR=127.0.0.1:0)
}

# svc_start NAME DATABASE_URL [NAME=VALUE...]: starts `todo-backend serve` in its own temp dir
# and waits for /health, on SVC_LISTEN_PORT when set (else a free port). Sets SVC_URL, SVC_PID,
# SVC_LOG, SVC_PORT. Returns 1 (with the log
# tail on stderr) if the process exits or /health does not answer within $SVC_WAIT s (30).
svc_start() {
    local name=$1 url=$2
    shift 2
    local dir=$FAULTS_TMP/svc-$name
    mkdir -p "$dir"
    SVC_PORT=${SVC_LISTEN_PORT:-$(free_port)}
    SVC_LOG=$dir/service.log
    SVC_URL=http://127.0.0.1:$SVC_PORT
    svc_env_args
    (cd "$dir" && exec env -i "${SVC_ENV[@]}" DATABASE_URL="$url" PORT="$SVC_PORT" "$@" \
        "$TODO_BIN" serve) >"$SVC_LOG" 2>&1 &
    SVC_PID=$!
    FAULTS_SVC_PIDS+=("$SVC_PID")
    export SVC_URL SVC_PID SVC_LOG SVC_PORT
    if ! wait_healthy "$SVC_URL" "$SVC_PID" "${SVC_WAIT:-30}"; then
        log "service $name did not start; log tail:"
        tail -5 "$SVC_LOG" >&2
        return 1
    fi
    log "service $name: $SVC_URL (pid $SVC_PID)"
}

svc_stop() { stop_pid "${1:-$SVC_PID}"; }

# svc_token USER: a valid bearer token for USER.
svc_token() {
    svc_env_args
    (cd "$FAULTS_TMP" && env -i "${SVC_ENV[@]}" "$TODO_BIN" token "$1")
}
