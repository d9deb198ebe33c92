# shellcheck shell=bash
# Helpers shared by the test scripts (.ci/run, faults/, fuzz/, bench/, interop/).
# Source it; it defines functions only and changes no shell option.

# free_port: prints a loopback TCP port that nothing listens on (the kernel's pick; it is free
# when printed, so bind it soon).
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
  fi
}

# require_service_bin PATH: exits with status 2 and a message naming PATH unless PATH is an
# executable file (the todo-backend binary a script is about to run).
require_service_bin() {
  local bin=${1:-} why
  if [[ -z $bin ]]; then
    why="no path given"
  elif [[ ! -e $bin ]]; then
    why="$bin does not exist"
  elif [[ -d $bin ]]; then
    why="$bin is a directory"
  elif [[ ! -x $bin ]]; then
    why="$bin is not executable"
  else
    return 0
  fi
  echo "error: no todo-backend binary to run: $why (build it first, e.g. \`cargo build\`)" >&2
  exit 2
}

# npm_ci_once NAME: in the current directory, installs the locked npm dependencies unless the
# install stamped NAME already did it for this lock file and this Node (native addons are
# built for one Node version).
npm_ci_once() {
  local stamp="node_modules/.$1-stamp" want
  want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "# npm ci"
    npm ci --no-audit --no-fund
    echo "$want" >"$stamp"
  fi
}

# wait_healthy URL PID [TIMEOUT_S]: polls URL/health until it answers 2xx (status 0). Returns 1,
# with one line on stderr, when process PID exits first or TIMEOUT_S (default 30) seconds pass.
wait_healthy() {
  local url=$1 pid=$2 timeout=${3:-30}
  local deadline=$((SECONDS + timeout))
  until curl -fs -o /dev/null --max-time 2 "$url/health"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the service (pid $pid) exited before $url/health answered" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "error: $url/health did not answer within $timeout s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# write_pgbouncer_config DIR LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT POOL_MODE [SETTING...]
# Writes DIR/pgbouncer.ini and DIR/users.txt: PgBouncer on 127.0.0.1:LISTEN_PORT (TCP only, no
# Unix socket) in POOL_MODE (session|transaction|statement), every database on
# UPSTREAM_HOST:UPSTREAM_PORT, trust authentication for the users postgres and todo (trust still
# needs each user in the auth file), postgres as admin (the `pgbouncer` console), log and pid
# file in DIR. Each SETTING is one more `key = value` line in [pgbouncer], e.g.
# "default_pool_size = 4", "max_client_conn = 500", or the TLS settings
# ("server_tls_sslmode = require", "client_tls_sslmode = require", "client_tls_cert_file = ...").
write_pgbouncer_config() {
  local dir=$1 port=$2 host=$3 upstream_port=$4 mode=$5
  shift 5
  printf '"postgres" ""\n"todo" ""\n' >"$dir/users.txt"
  {
    printf '%s\n' \
      "[databases]" \
      "* = host=$host port=$upstream_port" \
      "" \
      "[pgbouncer]" \
      "listen_addr = 127.0.0.1" \
      "listen_port = $port" \
      "unix_socket_dir =" \
      "auth_type = trust" \
      "auth_file = $dir/users.txt" \
      "admin_users = postgres" \
      "pool_mode = $mode" \
      "logfile = $dir/pgbouncer.log" \
      "pidfile = $dir/pgbouncer.pid"
    if (($#)); then printf '%s\n' "$@"; fi
  } >"$dir/pgbouncer.ini"
}
