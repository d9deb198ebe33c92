#!/usr/bin/env bash
# TLS to PostgreSQL: the private cluster accepts only TLS (hostssl) with a certificate signed
# by a CA generated here (SAN 127.0.0.1 + localhost); it also listens on 127.0.0.2, an address
# the certificate does not name.
#   must work: sslmode=require; verify-full + our CA (by IP and by name); verify-ca + our CA on
#              the unnamed address (verify-ca does not check the host)
#   must fail fast (non-zero exit, one clear error line): verify-full with another CA, with no
#              CA (system roots), on the unnamed address; a missing sslrootcert file;
#              sslmode=disable against a TLS-only server.
#   reported:  require + another CA as sslrootcert (libpq would verify; see below).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
faults_init

TLS_FAST_S=${TLS_FAST_S:-5} # "fails fast": exit within this many seconds
PG_HBA_HOST=hostssl PG_LISTEN='127.0.0.1,127.0.0.2' pg_start_cluster
gen_ca "$CERT_DIR" wrongca
chmod 644 "$CERT_DIR"/*.crt
WRONG_CA=$CERT_DIR/wrongca.crt
export DB_ACQUIRE_TIMEOUT_MS=${DB_ACQUIRE_TIMEOUT_MS:-2000}

url() { echo "postgres://todo@$1:$PG_PORT/todo?$2"; }

# must_work NAME URL: serve + create + list + ready work, and the service's connections use TLS.
must_work() {
    local name=tls/$1 url=$2
    if ! svc_start "${1//[^a-z0-9-]/_}" "$url"; then
        report FAIL "$name" "service did not start: $(grep -E 'ERROR' "$SVC_LOG" | tail -1)"
        return
    fi
    local token created id list ready ssl
    token=$(svc_token "tls-$1")
    created=$(curl -sS -m 5 -w ' %{http_code}' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "{\"title\":\"tls $1\"}" "$SVC_URL/api/tasks")
    id=$(sed -nE 's/.*"id":([0-9]+).*/\1/p' <<<"$created")
    list=$(curl -sS -m 5 -w ' %{http_code}' -H "Authorization: Bearer $token" "$SVC_URL/api/tasks?limit=100")
    ready=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$SVC_URL/ready")
    ssl=$(psql_su -c "select string_agg(distinct s.ssl::text || ' ' || coalesce(s.version, '-'), ', ')
        from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'todo'")
    if [[ ${created##* } == 201 && -n $id && ${list##* } == 200 && $list == *"\"id\":$id,"* &&
        $ready == 200 && $ssl == "true TLSv1."* ]]; then
        report PASS "$name" "serve + create (id $id) + list + /ready work; service connections: ssl=$ssl"
    else
        report FAIL "$name" "create: ${created:0:120}; list status ${list##* }; ready $ready; ssl=$ssl"
    fi
    svc_stop "$SVC_PID"
}

# must_fail NAME URL REGEX: start-up exits non-zero within TLS_FAST_S s and its last error line
# matches REGEX (case-insensitive).
must_fail() {
    local name=tls/$1 url=$2 regex=$3
    local dir=$FAULTS_TMP/fail-$1 out rc t0 t1 line elapsed
    mkdir -p "$dir"
    svc_env_args
    t0=$(date +%s.%N)
    (cd "$dir" && timeout 30 env -i "${SVC_ENV[@]}" DATABASE_URL="$url" PORT=0 "$TODO_BIN" serve) \
        >"$dir/out.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    line=$(grep -E 'ERROR' "$dir/out.log" | tail -1 | sed -E 's/^[^ ]+ +ERROR +[^ ]+ //')
    [[ -n $line ]] || line=$(tail -1 "$dir/out.log")
    if ((rc == 124)); then
        report FAIL "$name" "still running after 30 s (expected a fast failure)"
    elif ((rc == 0)); then
        report FAIL "$name" "start-up succeeded (exit 0) but must fail"
    elif awk -v e="$elapsed" -v f="$TLS_FAST_S" 'BEGIN { exit !(e > f) }'; then
        report FAIL "$name" "exit $rc but only after ${elapsed} s (> ${TLS_FAST_S} s): $line"
    elif ! grep -qiE "$regex" <<<"$line"; then
        report FAIL "$name" "exit $rc in ${elapsed} s, but the error line does not say why (/$regex/): $line"
    else
        report PASS "$name" "exit $rc in ${elapsed} s: $line"
    fi
}

must_work require "$(url 127.0.0.1 'sslmode=require')"
must_work verify-full-ip "$(url 127.0.0.1 "sslmode=verify-full&sslrootcert=$CA_CERT")"
must_work verify-full-localhost "$(url localhost "sslmode=verify-full&sslrootcert=$CA_CERT")"
must_work verify-ca-unnamed-host "$(url 127.0.0.2 "sslmode=verify-ca&sslrootcert=$CA_CERT")"

cert_re='certificate|issuer|tls|ssl|trust'
must_fail verify-full-wrong-ca "$(url 127.0.0.1 "sslmode=verify-full&sslrootcert=$WRONG_CA")" "$cert_re"
must_fail verify-full-system-roots "$(url 127.0.0.1 'sslmode=verify-full')" "$cert_re"
must_fail verify-full-host-mismatch "$(url 127.0.0.2 "sslmode=verify-full&sslrootcert=$CA_CERT")" \
    "$cert_re|name|host"

# libpq (and sqlx's own PgSslMode::Require doc) verify the chain when sslmode=require comes with
# a root certificate; sqlx 0.9 does not (it accepts any certificate under require). Reported as a
# warning unless TLS_STRICT_REQUIRE=1.
name=require-with-other-ca
if svc_start "$name" "$(url 127.0.0.1 "sslmode=require&sslrootcert=$WRONG_CA")" 2>/dev/null; then
    svc_stop "$SVC_PID"
    msg="WARNING: sslmode=require&sslrootcert=<a CA that did not sign the server> is accepted: \
the root certificate is ignored under require (libpq, and sqlx's PgSslMode::Require doc, would \
verify the chain as verify-ca does); use verify-full"
    if [[ ${TLS_STRICT_REQUIRE:-0} == 1 ]]; then report FAIL "tls/$name" "$msg"; else report INFO "tls/$name" "$msg"; fi
else
    report PASS "tls/$name" "start-up refused: $(grep -E 'ERROR' "$SVC_LOG" | tail -1 | cut -c1-200)"
fi
must_fail missing-rootcert "$(url 127.0.0.1 "sslmode=verify-full&sslrootcert=$FAULTS_TMP/nope.crt")" \
    "nope\.crt|no such file|not found|sslrootcert|certificate"
must_fail disable-on-tls-only "$(url 127.0.0.1 'sslmode=disable')" "pg_hba|encryption|ssl"

exit $((FAULTS_FAILED > 0))
