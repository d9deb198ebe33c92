#!/usr/bin/env bash
# vdirsyncer + todoman against a CalDAV server: tasks made, completed, edited and deleted with
# todoman in a local vdir reach the server through `vdirsyncer sync`, and tasks made or changed
# on the server reach todoman.
#
# Usage: todoman.sh   (run.sh runs it; alone, set the environment below)
#
# Environment:
#   DAV_URL DAV_USER DAV_PASSWORD  the CalDAV root (http://HOST:PORT/dav/) and an app password
#   REST_URL TOKEN                 the service and a JWT of the same user: the server side is
#                                  checked and changed over REST; REST_URL empty: over CalDAV
#                                  (with roundtrip.py's mapping), for any CalDAV server
#   PYTHON                         a Python with caldav (default: this directory's .venv)
#
# Needs the Debian packages vdirsyncer and todoman (installed with apt-get when missing and
# root). One line per check, "ok - ..." or "not ok - ..."; last line
# "todoman: N passed, M failed"; exit status 1 on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-$HERE/.venv/bin/python}
: "${DAV_URL:?}" "${DAV_USER:?}" "${DAV_PASSWORD:?}"
REST_URL=${REST_URL:-}
TOKEN=${TOKEN:-}
export DAV_URL DAV_USER DAV_PASSWORD REST_URL TOKEN

passed=0 failed=0
ok() { # ok NAME COMMAND...: runs COMMAND, "ok - NAME" when it succeeds
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "ok - $name"
  else
    failed=$((failed + 1))
    echo "not ok - $name"
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
  fi
}
finish() {
  echo "todoman: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

# The tools: Debian's packages (todoman's command is `todoman` there, `todo` elsewhere).
if ! command -v vdirsyncer >/dev/null || ! { command -v todoman || command -v todo; } >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "# installing vdirsyncer and todoman (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q vdirsyncer todoman >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q vdirsyncer todoman >/dev/null; }
  fi
fi
TODO=$(command -v todoman || command -v todo || true)
if ! command -v vdirsyncer >/dev/null || [[ -z $TODO ]]; then
  failed=$((failed + 1))
  echo "not ok - vdirsyncer and todoman are installed"
  finish
fi
echo "# $(vdirsyncer --version), $("$TODO" --version)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/todo-caldav-todoman.XXXXXX")
COLLECTION=""
cleanup() {
  if [[ -n $COLLECTION ]]; then remote teardown >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Nothing of the user's: config, status and cache in $WORK; dates in UTC; no editor, no pager.
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
export XDG_CACHE_HOME=$WORK/home/.cache TZ=UTC LANG=C.UTF-8 LC_ALL=C.UTF-8 EDITOR=false PAGER=cat
mkdir -p "$HOME" "$WORK/vdir"

# remote COMMAND ARGS: the server side, over REST or CalDAV, with roundtrip.py's helpers.
#   setup                        makes a list/calendar "Todoman"; prints "ID HOME_URL"
#   tasks                        prints the collection's tasks: JSON {title: [status, priority, due_at]}
#   create TITLE PRIORITY DUE    creates a task
#   complete TITLE | delete TITLE
#   teardown                     (CalDAV only) deletes the calendar
remote() {
  COLLECTION=$COLLECTION "$PYTHON" - "$@" <<'EOF'
import json, os, sys, urllib.parse
sys.path.insert(0, os.environ["HERE"])
import caldav
import roundtrip as rt

command, args = sys.argv[1], sys.argv[2:]
client = caldav.DAVClient(url=rt.DAV_URL, username=rt.DAV_USER, password=rt.DAV_PASSWORD)
home = str(client.principal().calendar_home_set.url).rstrip("/") + "/"
collection = os.environ.get("COLLECTION", "")
if command == "setup":
    if rt.REST_URL:
        status, body = rt.rest("POST", "/api/lists", {"name": "Todoman"})
        assert status == 201, (status, body)
        collection = str(body["id"])
    else:
        collection = f"todoman-{rt.RUN}"
        client.principal().make_calendar(name="Todoman", cal_id=collection,
                                         supported_calendar_component_set=["VTODO"])
    print(collection, home)
    sys.exit()
if rt.REST_URL:
    side = rt.RestSide()
    side.list_id = int(collection)
else:
    side = rt.DavSide(home + collection + "/")
rt.ok = lambda name, good, detail="": good or sys.exit(f"{name}: {detail}")
tasks = side.tasks()
by_title = {t["title"]: t for t in tasks.values()}
if command == "tasks":
    print(json.dumps({t["title"]: [t["status"], t["priority"], rt.utc(t["due_at"])]
                      for t in tasks.values()}, sort_keys=True))
elif command == "create":
    side.create({"title": args[0], "priority": args[1], "due_at": args[2]})
elif command == "complete":
    side.patch(by_title[args[0]], {"status": "completed"})
elif command == "delete":
    side.delete(by_title[args[0]])
elif command == "teardown" and not rt.REST_URL:
    caldav.Calendar(client, url=home + collection + "/").delete()
EOF
}
export HERE

if ! read -r COLLECTION HOME_URL < <(remote setup); then
  failed=$((failed + 1))
  echo "not ok - a list/calendar to sync with"
  finish
fi
echo "# collection $COLLECTION in $HOME_URL"

mkdir -p "$XDG_CONFIG_HOME/vdirsyncer" "$XDG_CONFIG_HOME/todoman"
cat >"$XDG_CONFIG_HOME/vdirsyncer/config" <<EOF
[general]
status_path = "$WORK/status/"

[pair tasks]
a = "tasks_local"
b = "tasks_remote"
collections = ["$COLLECTION"]
metadata = ["displayname", "color"]
conflict_resolution = "b wins"

[storage tasks_local]
type = "filesystem"
path = "$WORK/vdir/"
fileext = ".ics"

[storage tasks_remote]
type = "caldav"
url = "$HOME_URL"
username = "$DAV_USER"
password = "$DAV_PASSWORD"
item_types = ["VTODO"]
EOF
cat >"$XDG_CONFIG_HOME/todoman/config.py" <<EOF
path = "$WORK/vdir/*"
cache_path = "$WORK/todoman-cache.sqlite3"
date_format = "%Y-%m-%d"
time_format = "%H:%M"
default_list = "Todoman"
default_due = 0
EOF

sync() { vdirsyncer sync && vdirsyncer metasync; }
todo() { "$TODO" --color never "$@"; }
# local_tasks [all]: todoman's tasks as JSON {summary: [completed, priority, due]}
local_tasks() {
  local status=()
  [[ ${1:-} == all ]] && status=(--status ANY)
  todo --porcelain list "${status[@]}" | "$PYTHON" -c '
import json, sys
from datetime import datetime, timezone
due = lambda t: t and datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({t["summary"]: [t["completed"], t["priority"], due(t["due"])]
                  for t in json.load(sys.stdin)}, sort_keys=True))'
}
id_of() { todo --porcelain list --status ANY | "$PYTHON" -c '
import json, sys
print(next(t["id"] for t in json.load(sys.stdin) if t["summary"] == sys.argv[1]))' "$1"; }
expect() { # expect WHAT WANT: WHAT's output is the JSON WANT
  local got
  got=$("$@" 2>&1 | tail -n 1) || true
  "$PYTHON" -c 'import json, sys
want, got = json.loads(sys.argv[1]), sys.argv[2]
try:
    same = json.loads(got) == want
except ValueError:
    same = False
sys.exit(0 if same else f"want {json.dumps(want, sort_keys=True)}\ngot  {got}")' "$WANT" "$got"
}

ok "vdirsyncer discover" bash -c 'yes | vdirsyncer discover'
ok "first vdirsyncer sync and metasync" sync
ok "the list's displayname reaches the vdir" \
  bash -c "[[ \$(cat '$WORK/vdir/$COLLECTION/displayname' 2>/dev/null) == Todoman ]]"

# todoman -> server
ok "todoman new (due, priority high)" todo new -l Todoman --due "2030-03-01 10:00" --priority high "Bought milk"
ok "todoman new" todo new -l Todoman "Walk the dog"
ok "vdirsyncer sync uploads them" sync
WANT='{"Bought milk": ["pending", "high", "2030-03-01T10:00:00Z"], "Walk the dog": ["pending", "none", null]}'
ok "the server has exactly the two new tasks" expect remote tasks

ok "todoman done" todo done "$(id_of "Bought milk")"
ok "vdirsyncer sync uploads the completion" sync
WANT='{"Bought milk": ["completed", "high", "2030-03-01T10:00:00Z"], "Walk the dog": ["pending", "none", null]}'
ok "the server sees it completed" expect remote tasks

ok "todoman edit (due, priority low)" todo edit "$(id_of "Walk the dog")" --due "2030-03-02 08:00" --priority low
ok "vdirsyncer sync uploads the edit" sync
WANT='{"Bought milk": ["completed", "high", "2030-03-01T10:00:00Z"], "Walk the dog": ["pending", "low", "2030-03-02T08:00:00Z"]}'
ok "the server sees the edit" expect remote tasks

ok "todoman delete" todo delete --yes "$(id_of "Walk the dog")"
ok "vdirsyncer sync uploads the deletion" sync
WANT='{"Bought milk": ["completed", "high", "2030-03-01T10:00:00Z"]}'
ok "the server no longer has it" expect remote tasks

# server -> todoman (priorities as todoman reads PRIORITY: 9 low, 5 medium, 1 or 4 high)
ok "a task created on the server" remote create "Created on the server" medium "2030-04-01T09:00:00Z"
ok "vdirsyncer sync downloads it" sync
WANT='{"Created on the server": [false, 5, "2030-04-01T09:00:00Z"]}'
ok "todoman list --porcelain shows it" expect local_tasks

ok "completed on the server" remote complete "Created on the server"
ok "vdirsyncer sync downloads the completion" sync
WANT='{}'
ok "todoman list no longer shows it" expect local_tasks
WANT='{"Bought milk": [true, 4, "2030-03-01T10:00:00Z"], "Created on the server": [true, 5, "2030-04-01T09:00:00Z"]}'
ok "todoman list --status ANY shows both completed" expect local_tasks all

ok "deleted on the server" remote delete "Bought milk"
ok "vdirsyncer sync removes it locally" sync
WANT='{"Created on the server": [true, 5, "2030-04-01T09:00:00Z"]}'
ok "todoman has exactly what the server has" expect local_tasks all
WANT='{"Created on the server": ["completed", "medium", "2030-04-01T09:00:00Z"]}'
ok "and the server exactly that" expect remote tasks
ok "a last sync changes nothing" bash -c '[[ -z $(vdirsyncer sync 2>&1 | grep -iv "^Syncing ") ]]'

finish
