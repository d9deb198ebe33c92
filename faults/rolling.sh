#!/usr/bin/env bash
# A rolling restart behind a real load balancer (see rolling.py): three instances on one
# private cluster behind HAProxy (round robin, health check on /ready), a steady load of
# keyed creates and reads through HAProxy, and each instance restarted in turn with SIGTERM.
# Nothing may fail, and no create may be lost or made twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
faults_init

HAPROXY_BIN=${HAPROXY_BIN:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[[ -x $HAPROXY_BIN ]] || die "haproxy is not installed (apt-get install haproxy)"
pg_start_cluster
URL="postgres://todo@127.0.0.1:$PG_PORT/todo?sslmode=verify-full&sslrootcert=$CA_CERT"
# /ready fails this long before the listener closes: HAProxy's check (every 200 ms, down after
# 2 failures) takes the instance out of the rotation well inside it.
GRACE=${ROLLING_GRACE_S:-2}

ports=()
pids=()
for n in 1 2 3; do
    port=$(free_port)
    SVC_LISTEN_PORT=$port svc_start "rolling-$n" "$URL" SHUTDOWN_GRACE_SECONDS="$GRACE" || die "instance $n did not start"
    ports+=("$port")
    pids+=("$SVC_PID")
done

lb_port=$(free_port)
cfg=$FAULTS_TMP/haproxy.cfg
{
    echo "global"
    echo "    maxconn 2000"
    echo "defaults"
    echo "    mode http"
    echo "    timeout connect 2s"
    echo "    timeout client 30s"
    echo "    timeout server 30s"
    # A connection refused (the instance closed its listener before the check noticed) is
    # tried again on another instance: nothing was sent, so that is safe for any method.
    echo "    retries 3"
    echo "    option redispatch 1"
    # A fresh server connection for every request: none is reused just as an instance
    # closes its idle ones while draining.
    echo "    option http-server-close"
    echo "    http-reuse never"
    echo "frontend api"
    echo "    bind 127.0.0.1:$lb_port"
    echo "    default_backend instances"
    echo "backend instances"
    echo "    balance roundrobin"
    echo "    option httpchk GET /ready"
    echo "    http-check expect status 200"
    for n in 0 1 2; do
        echo "    server s$((n + 1)) 127.0.0.1:${ports[$n]} check inter 200ms fall 2 rise 2"
    done
} >"$cfg"
"$HAPROXY_BIN" -f "$cfg" -D -p "$FAULTS_TMP/haproxy.pid" || die "haproxy did not start"
FAULTS_BG_PIDS+=("$(cat "$FAULTS_TMP/haproxy.pid")")
log "haproxy: 127.0.0.1:$lb_port -> ${ports[*]}"
wait_healthy "http://127.0.0.1:$lb_port" "$(cat "$FAULTS_TMP/haproxy.pid")" 10 || die "haproxy does not answer"

export LB_URL="http://127.0.0.1:$lb_port" ROLLING_PORTS="${ports[*]}" ROLLING_PIDS="${pids[*]}"
export ROLLING_DB_URL=$URL ROLLING_GRACE_S=$GRACE
run_child python3 "$FAULTS_DIR/rolling.py"
