#!/usr/bin/env bash
# The benchmark of todo-backend, in one run on one machine: build the release binary, then for
# PostgreSQL and for SQLite: a fresh database, USERS users × TASKS tasks, and for each step
# (operation × connections) an HTTP load test with wrk and the service's CPU time per request;
# on PostgreSQL also the ceiling, pgbench on the exact SQL the service sends, before and after
# the service's step. Then the start-up time. Prints markdown tables and
# writes them to bench/results/latest.md (raw tool output: bench/results/latest.log).
#
# It is a benchmark, not a test: it exits non-zero only when the harness itself breaks.
#
# Settings (environment):
#   BIN=PATH             benchmark this binary, do not build
#   BENCH_SKIP_BUILD=1   do not build; use target/release/todo-backend
#   BENCH_SMOKE=1        CI smoke: one 2 s step per table, no warm-up, 3 starts
#   DURATION=10          seconds per measured step (whole seconds; pgbench's -T)
#   WARMUP=2             seconds of unrecorded load before each measured step
#   STEPS="op:conns[:eddsa] …"   the steps (ops: get list filtered search filtered_nocount
#                        search_nocount (the two with Prefer: count=none) create update
#                        shared_get shared_list shared_create: the same through a list of five
#                        create_keyed patch_if changes);
#                        ":eddsa" sends
#                        EdDSA tokens verified against a JWKS (as Better Auth issues them)
#                        instead of HS256 ones
#   BACKENDS="postgres sqlite"
#   STARTS=5             starts for the start-up median (0: skip it)
#   TASKS=10000          tasks seeded per user
#   USERS=20             users, each with TASKS tasks; requests go to them at random (a writer
#                        holds its user's row lock until commit, so two users would serialise
#                        every write)
#   DB_MAX_CONNECTIONS=10  the service's pool (its default)
#   PG_HEADROOM=10       PostgreSQL connections pgbench leaves free for everybody else
#   WRK_TIMEOUT=5        seconds; a slower request counts as a timeout error
#   SERVICE_LOG_LEVEL=info  the service's RUST_LOG
#   RATE_LIMIT_PER_MINUTE=1000000, RATE_LIMIT_BURST=1000000  the in-process per-user limiter:
#                        on, as a user runs the service, but far above the load (0: off)
#   TOKIO_WORKER_THREADS   passed to the service when set (default: one per core)
#   FEATURES="get:100"   on PostgreSQL, that step again with metrics off and no rate limiter,
#                        metrics on, plus the in-process limiter, plus the Redis limiter
#                        (REDIS_URL, default redis://127.0.0.1:6379/), ROUNDS times alternating
#   ROUNDS=3
#   EVENTS="1000:100:100"  the live-events step, streams:users:writes per second, on PostgreSQL
#                        with two instances, once polling and once with LISTEN (empty: skip it)
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
  DURATION=${DURATION:-2} WARMUP=${WARMUP:-0} STARTS=${STARTS:-3}
  STEPS=${STEPS:-"update:10 changes:10 shared_get:10 shared_list:10 shared_create:10"}
else
  DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} STARTS=${STARTS:-5}
  STEPS=${STEPS:-"get:10 list:10 create:10 update:10 get:100 list:100 filtered:100 search:100 create:100 update:100 create_keyed:100 patch_if:100 changes:100 shared_get:100 shared_list:100 shared_create:100 get:100:eddsa list:100:eddsa create:100:eddsa list:1000 create:1000"}
fi
BACKENDS=${BACKENDS:-"postgres sqlite"}
FEATURES=${FEATURES-"get:100"}
ROUNDS=${ROUNDS:-3}
[ "${BENCH_SMOKE:-0}" = 1 ] && ROUNDS=1
BENCH_REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/}
if [ "${BENCH_SMOKE:-0}" = 1 ]; then EVENTS=${EVENTS-"20:4:20"}; else EVENTS=${EVENTS-"1000:100:100"}; fi
# The smoke run only checks that every step still runs: a small seed keeps it short.
if [ "${BENCH_SMOKE:-0}" = 1 ]; then TASKS=${TASKS:-200} USERS=${USERS:-4}; fi
TASKS=${TASKS:-10000}
USERS=${USERS:-20}
# Digit strings, so that pgbench, whose variables are numbers, can bind them.
user_ids=$(seq 100001 $((100000 + USERS)) | tr '\n' ' ')
DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-10}
PG_HEADROOM=${PG_HEADROOM:-10}
WRK_TIMEOUT=${WRK_TIMEOUT:-5}
WRK_THREADS=2
SERVICE_LOG_LEVEL=${SERVICE_LOG_LEVEL:-info} # the default: per-request logging is part of the cost
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
for n in "$DURATION" "$WARMUP" "$STARTS" "$TASKS" "$USERS"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "DURATION, WARMUP, STARTS, TASKS and USERS must be whole numbers"
done
[ "$USERS" -ge 1 ] || die "USERS must be at least 1"
[ "$DURATION" -ge 1 ] || die "DURATION must be at least 1"

# --- tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || die "wrk is missing (apt-get install wrk)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
for tool in curl python3 node; do command -v $tool >/dev/null || die "$tool is missing"; done
if [[ " $BACKENDS " == *" postgres "* ]]; then
  for tool in psql pgbench pg_isready; do command -v $tool >/dev/null || die "$tool is missing"; done
  pg_isready -q || die "PostgreSQL is not answering on $PGHOST:$PGPORT"
fi
# The real interpreter, so that it runs under `env -i` (pyenv's shims need HOME and more).
PY=$(python3 -c 'import sys; print(sys.executable)')
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- the binary --------------------------------------------------------------------------
if [ -n "${BIN:-}" ]; then
  :
elif [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
  BIN=$root/target/release/todo-backend
else
  say "cargo build --release"
  (cd "$root" && cargo build --release --locked)
  BIN=$root/target/release/todo-backend
fi
require_service_bin "$BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- scratch space and clean-up ----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/todo-bench.XXXXXX")
results=$bench/results
mkdir -p "$results"
raw=$results/latest.log
: >"$raw"
printf 'backend\top\tauth\tconns\trequests\tduration_us\ttimed\tunpaired\tbusy_us\tmean_us\tp50_us\tp95_us\tp99_us\tconnect\tread\twrite\tstatus\ttimeout\tlisten_drops\trss_kib\tcpu_us\tceiling_tps\tceiling_clients\tceiling_failed\tceiling_before\tceiling_after\n' \
  >"$work/results.tsv"
: >"$work/startup.tsv"
svc_pid=
issuer_pid=
database=
cleanup() {
  if [ -n "$issuer_pid" ]; then kill "$issuer_pid" 2>/dev/null || true; fi
  if [ -n "$svc_pid" ]; then kill -TERM "$svc_pid" 2>/dev/null || true; wait "$svc_pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql -d postgres -qc "drop database if exists $database with (force)" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

# The service's settings, for env(1): exactly these, nothing from the caller's environment.
# Commands run with them in the scratch directory, so no .env is read either.
service_env() {
  svc_env=(env -i PATH="$PATH" HOME="$work" LANG=C.UTF-8
    DATABASE_URL="$db_url" HOST=127.0.0.1 BETTER_AUTH_SECRET="$secret"
    BETTER_AUTH_URL="http://127.0.0.1:$issuer_port"
    RUST_LOG="$SERVICE_LOG_LEVEL" DB_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS"
    RATE_LIMIT_PER_MINUTE="${RATE_LIMIT_PER_MINUTE:-1000000}"
    RATE_LIMIT_BURST="${RATE_LIMIT_BURST:-1000000}" AUTH_FAILURES_PER_MINUTE=0
    METRICS_ADDR=127.0.0.1:0
    ${TOKIO_WORKER_THREADS:+TOKIO_WORKER_THREADS="$TOKIO_WORKER_THREADS"})
}

# The kernel's count of connections dropped because a listen queue was full (machine-wide).
listen_overflows() {
  awk '/^TcpExt:/ { if (!seen++) { for (i = 2; i <= NF; i++) col[$i] = i } else print $col["ListenOverflows"] }' \
    /proc/net/netstat
}

start_service() {
  port=$(free_port)
  : >"$work/service.log"
  # The subshell execs env, which execs the binary: $! is the service's own pid.
  (cd "$work" && exec "${svc_env[@]}" PORT="$port" "$BIN" serve) >>"$work/service.log" 2>&1 &
  svc_pid=$!
  if ! wait_healthy "http://127.0.0.1:$port" "$svc_pid" 30; then
    tail -20 "$work/service.log" >&2
    die "the service did not start"
  fi
}

stop_service() {
  kill -TERM "$svc_pid"
  wait "$svc_pid" || true
  svc_pid=
}

# Seeds TASKS tasks for each user, 100001 on, one user after the other (so that user u owns
# ids u*TASKS+1 .. (u+1)*TASKS, as the pgbench scripts assume); prints "user|min id|max id|count"
# per user. Task g
# is pending, in progress or completed by g % 3, carries the tag "work" when g % 3 = 0 and
# "home" when g % 5 = 0, has priority g % 4, is due g minutes from now unless g % 4 = 0, and
# sits at position g in the manual order (the migration's key scheme).
seed() {
  case $backend in
    postgres)
      for user in $user_ids; do
        psql -d "$database" -v ON_ERROR_STOP=1 -qc "
          insert into tasks (user_id, title, title_key, description, status, created_at,
                             updated_at, due_at, priority, tags, tag_keys, position)
          select '$user', 'seed task ' || g, 'seed task ' || g, null,
                 (array['pending', 'in_progress', 'completed'])[g % 3 + 1], t, t,
                 case when g % 4 = 0 then null else now() + g * interval '1 minute' end,
                 g % 4, tags, tags,
                 'd' || substr(d, ((g / 238328) % 62 + 1)::int, 1)
                     || substr(d, ((g / 3844) % 62 + 1)::int, 1)
                     || substr(d, ((g / 62) % 62 + 1)::int, 1)
                     || substr(d, (g % 62 + 1)::int, 1)
            from generate_series(1, $TASKS) g,
                 lateral (select now() - ($TASKS - g) * interval '1 ms' as t,
                                 array_remove(array[case when g % 3 = 0 then 'work' end,
                                                    case when g % 5 = 0 then 'home' end], null)
                                   as tags,
                                 '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'::text
                                   as d) x"
      done
      # What autovacuum would have done by now: statistics, and the visibility map that lets
      # counts use index-only scans.
      psql -d "$database" -qc "vacuum analyze tasks"
      psql -d "$database" -Atc "select user_id, min(id), max(id), count(*) from tasks group by 1 order by 1" ;;
    sqlite)
      "$PY" - "$db_path" "$TASKS" $user_ids <<'PY'
import json, sqlite3, sys, time, uuid
path, n, users = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
db = sqlite3.connect(path, timeout=30)
now = time.time_ns() // 1000  # the schema's timestamps: microseconds since the epoch
digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def position(g):
    return "d" + "".join(digits[(g // 62 ** k) % 62] for k in (3, 2, 1, 0))
def tags(g):
    return json.dumps([t for t, keep in (("work", g % 3 == 0), ("home", g % 5 == 0)) if keep])
for user in users:
    # The user's Inbox, as the service makes it on first need.
    db.execute("update feed_clock set last = last + 1")
    inbox = db.execute(
        "insert into lists (owner_id, inbox_of, name, change_pos, last_pos, created_at,"
        " updated_at) select ?, ?, 'Inbox', last, last, ?, ? from feed_clock returning id",
        (user, user, now, now)).fetchone()[0]
    db.execute(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,"
        " change_pos) values (?, ?, 'owner', 'a0', ?, 0, 0)", (inbox, user, now))
    # Every task has a uid (the service gives each new one its own; SQLite's column has no
    # default to do it).
    db.executemany(
        "insert into tasks (user_id, list_id, title, title_key, description, status, created_at,"
        " updated_at, due_at, priority, tags, tag_keys, position, uid)"
        " values (?, ?, ?, ?, null, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(user, inbox, f"seed task {g}", f"seed task {g}", ("pending", "in_progress", "completed")[g % 3],
          now - (n - g) * 1000, now - (n - g) * 1000,
          None if g % 4 == 0 else now + g * 60_000_000, g % 4, tags(g), tags(g), position(g),
          str(uuid.uuid4()))
         for g in range(1, n + 1)])
db.commit()
db.execute("analyze")
for row in db.execute("select user_id, min(id), max(id), count(*) from tasks group by 1 order by 1"):
    print("|".join(map(str, row)))
PY
      ;;
  esac
}

# Shared lists: the users in groups of five, the first of each the owner of a list with
# the others as editors, holding TASKS tasks of its owner's (made as seed() makes them). Prints
# one "user|list|min id|max id" line per user: the list of the user's group and its ids.
seed_shared() {
  local sql="" n=0 group owner
  for user in $user_ids; do
    group=$((n / 5))
    [ $((n % 5)) = 0 ] && owner=$user
    echo "$group $owner $user"
    n=$((n + 1))
  done >"$work/groups"
  case $backend in
    postgres)
      while read -r group owner user; do
        if [ "$owner" = "$user" ]; then
          psql -d "$database" -v ON_ERROR_STOP=1 -qAtc "
            insert into lists (owner_id, name, change_pos, last_pos, created_at, updated_at)
            values ('$owner', 'shared $group', feed_position(), 0, now(), now())" >/dev/null
        fi
        psql -d "$database" -v ON_ERROR_STOP=1 -qc "
          insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,
                                    change_pos)
          select id, '$user', case when '$user' = '$owner' then 'owner' else 'editor' end,
                 'b00', now(), 0, 0
          from lists where name = 'shared $group'"
        if [ "$owner" = "$user" ]; then
          psql -d "$database" -v ON_ERROR_STOP=1 -qc "
            insert into tasks (user_id, list_id, title, title_key, status, created_at,
                               updated_at, priority, position)
            select '$owner', (select id from lists where name = 'shared $group'),
                   'shared task ' || g, 'shared task ' || g, 'pending', now(), now(), g % 4,
                   'd' || substr(d, ((g / 238328) % 62 + 1)::int, 1)
                       || substr(d, ((g / 3844) % 62 + 1)::int, 1)
                       || substr(d, ((g / 62) % 62 + 1)::int, 1)
                       || substr(d, (g % 62 + 1)::int, 1)
            from generate_series(1, $TASKS) g,
                 lateral (select '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'::text
                          as d) x"
        fi
      done <"$work/groups"
      psql -d "$database" -qc "vacuum analyze tasks"
      psql -d "$database" -Atc "
        select m.user_id, l.id, min(t.id), max(t.id)
        from list_members m join lists l on l.id = m.list_id join tasks t on t.list_id = l.id
        where l.name like 'shared %' group by 1, 2 order by 1" ;;
    sqlite)
      "$PY" - "$db_path" "$TASKS" "$work/groups" <<'PY'
import sqlite3, sys, time, uuid
path, n, groups = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = sqlite3.connect(path, timeout=30)
now = time.time_ns() // 1000
digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def position(g):
    return "d" + "".join(digits[(g // 62 ** k) % 62] for k in (3, 2, 1, 0))
lists = {}
for line in open(groups):
    group, owner, user = line.split()
    if group not in lists:
        db.execute("update feed_clock set last = last + 1")
        lists[group] = db.execute(
            "insert into lists (owner_id, name, change_pos, last_pos, created_at, updated_at)"
            " select ?, ?, last, last, ?, ? from feed_clock returning id",
            (owner, f"shared {group}", now, now)).fetchone()[0]
    db.execute(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,"
        " change_pos) values (?, ?, ?, 'b00', ?, 0, 0)",
        (lists[group], user, "owner" if user == owner else "editor", now))
    if user == owner:
        db.executemany(
            "insert into tasks (user_id, list_id, title, title_key, status, created_at,"
            " updated_at, priority, position, uid) values (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
            [(owner, lists[group], f"shared task {g}", f"shared task {g}", now, now, g % 4,
              position(g), str(uuid.uuid4())) for g in range(1, n + 1)])
db.commit()
db.execute("analyze")
for row in db.execute(
        "select m.user_id, l.id, min(t.id), max(t.id) from list_members m"
        " join lists l on l.id = m.list_id join tasks t on t.list_id = l.id"
        " where l.name like 'shared %' group by 1, 2 order by 1"):
    print("|".join(map(str, row)))
PY
      ;;
  esac
}

# Each user's own feed, as "min position-max position" of their seeded tasks: any cursor in
# it is one the service handed out.
feed_ranges() {
  local sql="select user_id, min(change_pos), max(change_pos) from tasks
             where title like 'seed task %' group by 1 order by 1"
  case $backend in
    postgres) psql -d "$database" -AtF'|' -c "$sql" ;;
    sqlite) "$PY" -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("|".join(map(str, row)))' "$db_path" "$sql" ;;
  esac | awk -F'|' '{ printf "%s%s-%s", (NR > 1 ? " " : ""), $2, $3 }'
}

# EdDSA tokens for the users, from bench/issuer.mjs, which also serves their JWKS (at
# BETTER_AUTH_URL's /api/auth/jwks) for as long as the run lasts.
start_issuer() {
  issuer_port=$(free_port)
  # shellcheck disable=SC2086 # one argument per user
  node "$bench/issuer.mjs" "$issuer_port" 43200 $user_ids >"$work/issuer.out" 2>&1 &
  issuer_pid=$!
  for _ in $(seq 100); do
    [ "$(wc -l <"$work/issuer.out")" -ge "$USERS" ] && break
    kill -0 "$issuer_pid" 2>/dev/null || { cat "$work/issuer.out" >&2; die "issuer.mjs exited"; }
    sleep 0.05
  done
  eddsa_tokens=$(head -n "$USERS" "$work/issuer.out" | tr '\n' ' ')
  [ -n "$eddsa_tokens" ] || die "issuer.mjs printed no tokens"
}

# wrk OP CONNS SECONDS AUTH: prints wrk's output, whose "BENCH " line has the numbers.
run_wrk() {
  local threads=$((${2} < WRK_THREADS ? ${2} : WRK_THREADS))
  local step_tokens=$tokens
  [ "${4:-hs256}" = eddsa ] && step_tokens=$eddsa_tokens
  [ "$1" != patch_if ] || write_versions
  BENCH_OP=$1 BENCH_TOKENS="$step_tokens" BENCH_IDS="$ids" BENCH_THREADS="$threads" \
    BENCH_FEEDS="$feeds" BENCH_SHARED="$shared" \
    BENCH_VERSIONS="$work/versions" \
    wrk -t "$threads" -c "$2" -d "${3}s" --timeout "${WRK_TIMEOUT}s" --latency \
    -s "$bench/wrk.lua" "http://127.0.0.1:$port"
}

# Every live task's current version, as "id version" lines, for patch_if's If-Match.
write_versions() {
  case $backend in
    postgres) psql -d "$database" -AtF' ' -c "select id, version from tasks where deleted_at is null" ;;
    sqlite) "$PY" -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute("select id, version from tasks where deleted_at is null"):
    print(*row)' "$db_path" ;;
  esac >"$work/versions"
}

# The pgbench script of OP, or nothing when it has none. filtered_nocount and search_nocount
# run their op's script without its last statement, the count (Prefer: count=none).
pgbench_script() {
  local op=$1 base=${1%_nocount}
  case $op in
    filtered_nocount | search_nocount)
      awk '/^select count\(\*\)/ { exit } { print }' "$bench/pgbench/$base.sql" >"$work/$op.sql"
      echo "$work/$op.sql" ;;
    *) if [ -f "$bench/pgbench/$op.sql" ]; then echo "$bench/pgbench/$op.sql"; fi ;;
  esac
}

# The ceiling for OP at CONNS clients: prints "tps clients failed".
run_pgbench() {
  local op=$1 clients=$2 cap
  cap=$(psql -d postgres -Atc "select current_setting('max_connections')::int - count(*) - $PG_HEADROOM
                                 from pg_stat_activity where backend_type = 'client backend'")
  [ "$clients" -le "$cap" ] || clients=$cap
  [ "$clients" -ge 1 ] || die "no PostgreSQL connections left for pgbench"
  local out
  out=$(pgbench -n -M prepared -c "$clients" -j $((clients < 2 ? clients : 2)) -T "$DURATION" \
    -D tasks="$TASKS" -D users="$USERS" -D "title=bench task" -D status_new=pending -D status_done=completed \
    -D feed_lo="$feed_lo" -D feed_hi="$feed_hi" \
    -f "$(pgbench_script "$op")" "$database" 2>&1) || { echo "$out" >&2; die "pgbench failed"; }
  printf '\n== %s ceiling: pgbench %s, %s clients\n%s\n' "$backend" "$op" "$clients" "$out" >>"$raw"
  # pgbench's creates carry positions that are unique but no valid key: gone before the
  # service lists or creates again.
  case $op in
    create | create_keyed)
      psql -d "$database" -qc "delete from tasks where title = 'pgbench ceiling'"
      psql -d "$database" -qc "delete from idempotency_keys where key like 'pgbench%'" ;;
  esac
  local tps failed
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$tps" ] || { echo "$out" >&2; die "no tps in pgbench's output"; }
  echo "$tps $clients ${failed:-0}"
}

# The service's CPU time so far (user + system), in microseconds.
service_cpu_us() {
  # Fields 14 and 15 of /proc/PID/stat, counted after the command name's closing parenthesis
  # (the name itself may hold spaces).
  awk -v hz="$clock_ticks" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000000 / hz }' \
    "/proc/$svc_pid/stat"
}
clock_ticks=$(getconf CLK_TCK)

run_step() {
  local op=$1 conns=$2 auth=$3 out numbers drops rss ceiling requests duration_us cpu before after
  # The shared-list steps have no pgbench script of their own: the ceiling to compare them
  # with is the same step on the user's own list, in the same run.
  [ -n "$(pgbench_script "$op")" ] || [[ $op == shared_* ]] || die "unknown operation $op in STEPS"
  [[ $auth == hs256 || $auth == eddsa ]] || die "unknown token kind $auth in STEPS"
  # The ceiling swings between runs as much as the service does: measure it on both sides of
  # the service's step and use the mean.
  before="0 0 0"
  if [ "$backend" = postgres ] && [ -n "$(pgbench_script "$op")" ]; then
    before=$(run_pgbench "$op" "$conns")
  fi
  if [ "$WARMUP" -gt 0 ]; then run_wrk "$op" "$conns" "$WARMUP" "$auth" >/dev/null; fi
  : >"$work/service.log" # opened for appending: truncating keeps the log from piling up
  echo 5 >"/proc/$svc_pid/clear_refs" 2>/dev/null || say "cannot reset the peak RSS; it covers the whole run"
  drops=$(listen_overflows)
  cpu=$(service_cpu_us)
  out=$(run_wrk "$op" "$conns" "$DURATION" "$auth")
  cpu=$(awk -v a="$cpu" -v b="$(service_cpu_us)" 'BEGIN { printf "%.0f", b - a }')
  drops=$(($(listen_overflows) - drops))
  kill -0 "$svc_pid" 2>/dev/null || { tail -20 "$work/service.log" >&2; die "the service died during $op c=$conns"; }
  rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$svc_pid/status")
  printf '\n== %s service: %s, %s connections, %s tokens\n%s\n' "$backend" "$op" "$conns" "$auth" "$out" >>"$raw"
  # "BENCH requests=1 duration_us=2 …" → the values, in the order of the TSV's columns.
  numbers=$(sed -n 's/^BENCH //p' <<<"$out" | sed 's/[a-z0-9_]*=//g')
  [ -n "$numbers" ] || { echo "$out" >&2; die "no BENCH line in wrk's output"; }
  # A step whose every answer is an error measures nothing: the seed and the service disagree.
  local failed answered
  answered=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$out")
  failed=$(sed -n 's/^BENCH .* status=\([0-9]*\).*/\1/p' <<<"$out")
  if [ "${answered:-0}" -gt 0 ] && [ "${failed:-0}" -ge "$answered" ]; then
    tail -5 "$work/service.log" >&2
    die "every request of $op c=$conns on $backend was answered with an error status"
  fi
  after="0 0 0"
  if [ "$backend" = postgres ] && [ -n "$(pgbench_script "$op")" ]; then
    after=$(run_pgbench "$op" "$conns")
  fi
  # "tps clients failed" twice → mean tps, clients, failed in all, then both tps figures.
  ceiling=$(awk -v b="$before" -v a="$after" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    printf "%s %s %s %s %s", (x[1] + y[1]) / 2, x[2], x[3] + y[3], x[1], y[1] }')
  echo "$backend $op $auth $conns $numbers $drops $rss $cpu $ceiling" | tr ' ' '\t' >>"$work/results.tsv"
  read -r requests duration_us _ <<<"$numbers"
  say "$backend $op c=$conns $auth: $(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / d * 1e6 }') req/s" \
    "$([ "$backend" = postgres ] && echo "(ceiling ${ceiling%% *} tps)")"
}

# What metrics and rate limiting cost: the FEATURES step with neither, with metrics, with
# metrics and the in-process limiter, with metrics and the Redis limiter (limits far above the
# load, so that every request is counted and none refused), ROUNDS rounds alternating.
bench_features() {
  local op conns round variant extra out numbers cpu base_env=("${svc_env[@]}")
  IFS=: read -r op conns _ <<<"$FEATURES"
  local huge=(RATE_LIMIT_PER_MINUTE=1000000 RATE_LIMIT_BURST=1000000)
  for round in $(seq "$ROUNDS"); do
    for variant in neither metrics limiter redis; do
      case $variant in
        neither) extra=(METRICS=false RATE_LIMIT_PER_MINUTE=0) ;;
        metrics) extra=(RATE_LIMIT_PER_MINUTE=0) ;;
        limiter) extra=("${huge[@]}") ;;
        redis) extra=("${huge[@]}" REDIS_URL="$BENCH_REDIS_URL" REDIS_TIMEOUT_MS=50) ;;
      esac
      stop_service
      svc_env=("${base_env[@]}" "${extra[@]}")
      start_service
      if [ "$WARMUP" -gt 0 ]; then run_wrk "$op" "$conns" "$WARMUP" >/dev/null; fi
      cpu=$(service_cpu_us)
      out=$(run_wrk "$op" "$conns" "$DURATION")
      cpu=$(awk -v a="$cpu" -v b="$(service_cpu_us)" 'BEGIN { printf "%.0f", b - a }')
      printf '\n== features %s round %s: %s c=%s\n%s\n' "$variant" "$round" "$op" "$conns" "$out" >>"$raw"
      numbers=$(sed -n 's/^BENCH //p' <<<"$out")
      echo "$variant $round $op $conns $numbers cpu_us=$cpu" >>"$work/features.txt"
      say "features $variant round $round: $(awk -v l="$numbers" 'BEGIN { split(l, f, " "); for (i in f) { split(f[i], kv, "="); v[kv[1]] = kv[2] } printf "%.0f", v["requests"] / v["duration_us"] * 1e6 }') req/s"
    done
  done
  svc_env=("${base_env[@]}")
}

bench_backend() {
  backend=$1
  case $backend in
    postgres)
      database="todo_bench_$(date +%s)_$$"
      psql -d postgres -v ON_ERROR_STOP=1 -qc "create database $database"
      db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$database"
      pg_ssl=$(psql -d postgres -Atc "show ssl") ;;
    sqlite)
      db_path=$work/sqlite/bench.db
      db_url="sqlite://$db_path" ;;
    *) die "unknown backend $backend" ;;
  esac
  service_env
  start_service # applies the migrations
  local seeded
  seeded=$(seed)
  # pgbench's scripts take user u's ids to be u*TASKS+1 .. (u+1)*TASKS: a fresh table's.
  local expected="" u=0
  for user in $user_ids; do
    expected+="$user|$((u * TASKS + 1))|$(((u + 1) * TASKS))|$TASKS"$'\n'
    u=$((u + 1))
  done
  [ "$seeded"$'\n' = "$expected" ] || die "unexpected seed: $seeded"
  ids=$(awk -F'|' '{ printf "%s%s-%s", (NR > 1 ? " " : ""), $2, $3 }' <<<"$seeded")
  feeds=$(feed_ranges)
  # The first user's feed, for pgbench's changes: every user's is alike, and any cursor in it
  # is a valid one for each.
  feed_lo=${feeds%%-*}
  feed_hi=${feeds#*-}
  feed_hi=$((${feed_hi%% *} - 100))
  shared=$(seed_shared | awk -F'|' '{ printf "%s%s:%s-%s", (NR > 1 ? " " : ""), $2, $3, $4 }')
  tokens=""
  for user in $user_ids; do
    tokens+="$(cd "$work" && "${svc_env[@]}" "$BIN" token "$user" --ttl 12h) "
  done
  local op conns auth
  for step in $STEPS; do
    IFS=: read -r op conns auth <<<"$step"
    run_step "$op" "$conns" "${auth:-hs256}"
  done
  if [ "$backend" = postgres ] && [ -n "$FEATURES" ]; then bench_features; fi
  stop_service
  if [ "$STARTS" -gt 0 ]; then
    say "$backend start-up time, $STARTS starts"
    echo "$backend $(cd "$work" && "${svc_env[@]}" "$PY" "$bench/startup.py" "$BIN" "$STARTS" "$work")" \
      >>"$work/startup.tsv"
  fi
  if [ "$backend" = postgres ]; then
    psql -d postgres -qc "drop database $database with (force)"
    database=
  else
    rm -rf "$work/sqlite"
  fi
}

# The streams' reads of the feed on the instances at these ports, summed, by outcome:
# "feed_read=N feed_shared=N feed_skipped=N" (0 when a build does not count them).
feed_reads() {
  local port metrics=""
  for port in "$@"; do metrics+=$(curl -s "http://127.0.0.1:$port/metrics" || true)$'\n'; done
  awk '/^events_feed_reads_total\{/ {
         match($0, /outcome="[a-z]+"/); n[substr($0, RSTART + 9, RLENGTH - 10)] += $NF }
       END { printf "feed_read=%d feed_shared=%d feed_skipped=%d", n["read"], n["shared"], n["skipped"] }' \
    <<<"$metrics"
}

# The live-events step: two instances on a fresh PostgreSQL database, STREAMS streams over
# USERS users half on each, a writer at RATE creates per second through both (events.py), then
# wrk's plain create against one instance with the streams still open, set against the same wrk
# run with no stream open. Once with polling only, once with DATABASE_LISTEN_URL.
bench_events() {
  local streams users rate mode out line baseline loaded pids=() ports=()
  IFS=: read -r streams users rate <<<"$EVENTS"
  backend=postgres
  database="todo_bench_events_$(date +%s)_$$"
  psql -d postgres -v ON_ERROR_STOP=1 -qc "create database $database"
  db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$database"
  service_env
  local base_env=("${svc_env[@]}")
  : >"$work/event-tokens"
  tokens="" ids=""
  for user in $(seq 200001 $((200000 + users))); do
    local token
    token=$(cd "$work" && "${svc_env[@]}" "$BIN" token "$user" --ttl 12h)
    echo "$token" >>"$work/event-tokens"
    tokens+="$token "
    ids+="1-1 " # creates name no task
  done
  for mode in poll listen; do
    # Metrics on the main port: the step reads the streams' feed reads from them.
    svc_env=("${base_env[@]}" EVENTS_MAX_PER_USER=$((streams / users + 10)) METRICS_ADDR=main)
    [ "$mode" = listen ] && svc_env+=(DATABASE_LISTEN_URL="$db_url")
    pids=() ports=()
    for _ in a b; do
      start_service
      pids+=("$svc_pid") ports+=("$port")
      svc_pid=
    done
    port=${ports[1]}
    baseline=$(run_wrk create 10 "$DURATION" | sed -n 's/^BENCH //p')
    out=$("$PY" "$bench/events.py" "http://127.0.0.1:${ports[0]}" "${pids[0]}" \
      "http://127.0.0.1:${ports[1]}" "${pids[1]}" "$work/event-tokens" "$streams" "$rate" "$DURATION" \
      env BENCH_OP=create BENCH_TOKENS="$tokens" BENCH_IDS="$ids" BENCH_THREADS="$WRK_THREADS" \
      wrk -t "$WRK_THREADS" -c 10 -d "${DURATION}s" --timeout "${WRK_TIMEOUT}s" --latency \
      -s "$bench/wrk.lua" "http://127.0.0.1:$port")
    printf '\n== events (%s): baseline create\n%s\n== events (%s): with streams\n%s\n' \
      "$mode" "$baseline" "$mode" "$out" >>"$raw"
    line="$(head -1 <<<"$out") $(feed_reads "${ports[@]}")"
    loaded=$(sed -n 's/^BENCH //p' <<<"$out")
    echo "$mode $streams $users $rate $line baseline:$baseline loaded:$loaded" >>"$work/events.txt"
    say "events ($mode): $line"
    for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
  done
  psql -d postgres -qc "drop database $database with (force)"
  database=
}

start_issuer
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load=$(cut -d' ' -f1-3 /proc/loadavg)
for backend in $BACKENDS; do bench_backend "$backend"; done
: >"$work/events.txt"
touch "$work/features.txt"
if [ -n "$EVENTS" ] && [[ " $BACKENDS " == *" postgres "* ]]; then bench_events; fi

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- backend 2>/dev/null || commit="$commit (with uncommitted changes)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cat >"$work/header.md" <<EOF
# todo-backend benchmark$([ "${BENCH_SMOKE:-0}" = 1 ] && echo " (smoke run: numbers mean nothing)")

$started · commit $commit · $(nproc) × ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) ·
load average at the start $load · binary built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')

wrk $WRK_THREADS threads, ${DURATION} s per step after ${WARMUP} s of warm-up; $TASKS tasks seeded for each of $USERS users,
requests spread over both; the service with \`RUST_LOG=$SERVICE_LOG_LEVEL\` (its log to a file) and a pool of
$DB_MAX_CONNECTIONS database connections; HS256 tokens unless the row says EdDSA (verified against a JWKS, as
Better Auth issues them; each token is verified once, then found in the cache of verified tokens). wrk, the service and the database share the machine's cores.
EOF
if [ -n "${pg_ssl:-}" ]; then
  tls=""
  [ "$pg_ssl" = on ] && tls=", so over TLS"
  printf '\nPostgreSQL %s, ssl=%s: the service and pgbench both connect with sslmode=prefer%s.\n' \
    "$(psql -d postgres -Atc "show server_version")" "$pg_ssl" "$tls" >>"$work/header.md"
fi
{
  "$PY" "$bench/report.py" "$work/results.tsv" "$work/startup.tsv" "$work/header.md"
  "$PY" "$bench/report.py" --features "$work/features.txt"
  "$PY" "$bench/report.py" --events "$work/events.txt"
} | tee "$results/latest.md"
