"""Tasks round trip between CalDAV and the REST API, with the Python caldav library.

Environment:
  DAV_URL DAV_USER DAV_PASSWORD   the CalDAV root (http://HOST:PORT/dav/) and alice's app password
  REST_URL TOKEN                  the service (http://HOST:PORT) and alice's JWT; REST_URL empty:
                                  CalDAV only (any CalDAV server, e.g. Radicale), where a second
                                  CalDAV connection stands in for the REST side and reads the
                                  tasks with the service's mapping (so the CalDAV half of every
                                  check still runs), and the REST-only checks are skipped
  BOB_USER BOB_PASSWORD BOB_TOKEN bob's app password and JWT (optional; the sharing checks need
                                  BOB_TOKEN)

The VTODOs are written with raw PUTs of exact bytes (If-None-Match: * / If-Match), as calendar
clients do; caldav's own save would bump SEQUENCE and, for a child, PUT the parent again with a
RELATED-TO;RELTYPE=CHILD.

Prints "ok - ..." / "not ok - ..." per check ("# skip ..." for checks that need REST); last
line "roundtrip: N passed, M failed". Exit status 1 on any failure.
"""

import base64
import json
import os
import re
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone

import caldav
import icalendar

DAV_URL = os.environ["DAV_URL"]
DAV_USER = os.environ["DAV_USER"]
DAV_PASSWORD = os.environ["DAV_PASSWORD"]
REST_URL = os.environ.get("REST_URL", "").rstrip("/")
TOKEN = os.environ.get("TOKEN", "")
BOB_USER = os.environ.get("BOB_USER", "")
BOB_PASSWORD = os.environ.get("BOB_PASSWORD", "")
BOB_TOKEN = os.environ.get("BOB_TOKEN", "")
RUN = uuid.uuid4().hex[:8]

passed = failed = 0


def ok(name, good, detail=""):
    global passed, failed
    if good:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))
    return good


def skip(name, why="needs REST_URL"):
    print(f"# skip {name} ({why})")


class Abort(Exception):
    """A step failed that later steps of the same section need."""


def need(name, good, detail=""):
    if not ok(name, good, detail):
        raise Abort(name)


# --- HTTP ----------------------------------------------------------------------------------


def http(method, url, body=None, headers=None, basic=None, bearer=None):
    """(status, headers, body bytes); never raises for an HTTP status."""
    headers = dict(headers or {})
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{basic[0]}:{basic[1]}".encode()).decode()
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    if isinstance(body, str):
        body = body.encode()
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def rest(method, path, body=None, token=None):
    status, _, raw = http(method, REST_URL + path,
                          None if body is None else json.dumps(body),
                          {"Content-Type": "application/json"} if body is not None else {},
                          bearer=token or TOKEN)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def dav(method, url, body=None, headers=None, auth=None):
    return http(method, url, body, headers, basic=auth or (DAV_USER, DAV_PASSWORD))


def put_ics(url, text, etag=None, auth=None):
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    if etag:
        headers["If-Match"] = etag
    else:
        headers["If-None-Match"] = "*"
    status, response_headers, raw = dav("PUT", url, text, headers, auth)
    return status, response_headers.get("ETag"), raw


def get_ics(url, auth=None):
    status, headers, raw = dav("GET", url, auth=auth)
    return status, headers.get("ETag"), raw.decode("utf-8", errors="replace")


# --- iCalendar text --------------------------------------------------------------------------

CRLF = "\r\n"

BERLIN = CRLF.join([
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST",
    "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET",
    "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "END:VTIMEZONE",
])


def vcalendar(todo_lines, timezone_block=True):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//todo-backend//interop caldav//EN"]
    if timezone_block:
        lines.append(BERLIN)
    lines += ["BEGIN:VTODO", *todo_lines, "END:VTODO", "END:VCALENDAR"]
    return CRLF.join(lines) + CRLF


def unfold(text):
    return re.sub(r"\r?\n[ \t]", "", text).replace("\r\n", "\n").split("\n")


def todo_lines(text):
    """The unfolded content lines of the (first) VTODO, sub-components included."""
    lines = unfold(text)
    try:
        start = lines.index("BEGIN:VTODO")
        end = lines.index("END:VTODO", start)
    except ValueError:
        return []
    return lines[start + 1:end]


def block(text, name):
    """The unfolded lines of the first BEGIN:name .. END:name inside the VTODO."""
    lines = todo_lines(text)
    try:
        start = lines.index(f"BEGIN:{name}")
        return lines[start:lines.index(f"END:{name}", start) + 1]
    except ValueError:
        return []


def prop_lines(text, name):
    """The VTODO's own lines of property NAME (not those of its VALARMs)."""
    out, depth = [], 0
    for line in todo_lines(text):
        if line.startswith("BEGIN:"):
            depth += 1
        elif line.startswith("END:"):
            depth -= 1
        elif depth == 0 and re.match(rf"{name}[;:]", line, re.I):
            out.append(line)
    return out


def edit(text, set_props=(), drop=()):
    """TEXT with the VTODO's own properties in DROP and in SET_PROPS removed, and the
    SET_PROPS lines added before END:VTODO; every other line kept as it was."""
    names = {re.split(r"[;:]", p, maxsplit=1)[0].upper() for p in set_props} | {
        d.upper() for d in drop}
    out, depth, inside = [], 0, False
    for line in unfold(text):
        if line == "BEGIN:VTODO":
            inside = True
        elif line == "END:VTODO":
            out += list(set_props)
            inside = False
        elif inside and line.startswith("BEGIN:"):
            depth += 1
        elif inside and line.startswith("END:"):
            depth -= 1
        elif inside and depth == 0 and re.split(r"[;:]", line, maxsplit=1)[0].upper() in names:
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return CRLF.join(out) + CRLF


def component(text):
    for c in icalendar.Calendar.from_ical(text).walk("VTODO"):
        return c
    return None


def utc(moment):
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if not isinstance(moment, datetime):  # a DATE
        return moment.isoformat()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def same_second(a, b):
    """Whether two instants are at most a second apart (COMPLETED has whole seconds)."""
    try:
        a, b = (datetime.fromisoformat(str(x).replace("Z", "+00:00")) for x in (a, b))
        return abs((a - b).total_seconds()) <= 1
    except (TypeError, ValueError):
        return False


def prop_utc(c, name):
    value = c.get(name) if c is not None else None
    return utc(value.dt) if value is not None else None


def escape_text(value):
    """An iCalendar TEXT value, escaped."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def stamp():
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def rrule_parts(rule):
    return sorted(p.upper() for p in (rule or "").split(";") if p)


# --- the other side: REST, or a second CalDAV connection that maps like the service ----------


def priority_name(value):
    value = int(value or 0)
    return "none" if value == 0 else "high" if value <= 4 else "medium" if value == 5 else "low"


STATUS = {"NEEDS-ACTION": "pending", "IN-PROCESS": "in_progress", "COMPLETED": "completed"}


def task_from_ics(text, href):
    """A VTODO read with the service's mapping, in the REST API's shape (id = UID)."""
    c = component(text)
    categories = []
    for value in c.get("CATEGORIES", []) if isinstance(c.get("CATEGORIES"), list) else (
            [c["CATEGORIES"]] if "CATEGORIES" in c else []):
        categories += [str(x) for x in value.cats]
    parent = None
    related = c.get("RELATED-TO")
    for r in related if isinstance(related, list) else [related] if related else []:
        if str(r.params.get("RELTYPE", "PARENT")).upper() == "PARENT":
            parent = str(r)
    rule = c.get("RRULE")
    return {
        "id": str(c["UID"]), "uid": str(c["UID"]), "href": href,
        "title": str(c.get("SUMMARY", "")),
        "status": STATUS.get(str(c.get("STATUS", "NEEDS-ACTION")).upper(), "completed"),
        "priority": priority_name(c.get("PRIORITY")),
        "tags": categories,
        "due_at": prop_utc(c, "DUE"),
        "completed_at": prop_utc(c, "COMPLETED"),
        "recurrence": {"rrule": rule.to_ical().decode()} if rule else None,
        "parent_id": parent,
    }


class RestSide:
    name = "REST"

    def __init__(self):
        self.list_id = None

    def make_list(self, name):
        status, body = rest("POST", "/api/lists", {"name": name})
        need("POST /api/lists creates the list", status == 201, f"{status} {body}")
        self.list_id = body["id"]
        return body["id"]

    def tasks(self):
        status, body = rest("GET", f"/api/tasks?list_id={self.list_id}&limit=100")
        need("GET /api/tasks?list_id=L", status == 200, f"{status} {body}")
        return {t["uid"]: t for t in body}

    def get(self, task_id):
        return rest("GET", f"/api/tasks/{task_id}")

    def patch(self, task, changes):
        status, body = rest("PATCH", f"/api/tasks/{task['id']}", changes)
        need(f"PATCH /api/tasks/{{id}} {json.dumps(changes)}", status == 200, f"{status} {body}")
        return body

    def create(self, fields):
        status, body = rest("POST", "/api/tasks", dict(fields, list_id=self.list_id))
        need("POST /api/tasks", status == 201, f"{status} {body}")
        return body

    def delete(self, task):
        status, body = rest("DELETE", f"/api/tasks/{task['id']}")
        need("DELETE /api/tasks/{id}", status in (200, 204), f"{status} {body}")


class DavSide:
    """Stands in for the REST API on a plain CalDAV server: reads and writes the collection
    through a connection of its own, mapping VTODOs the way the service does."""

    name = "CalDAV (stand-in for REST)"

    def __init__(self, collection_url):
        self.url = collection_url

    def tasks(self):
        calendar = caldav.DAVClient(url=self.url, username=DAV_USER,
                                    password=DAV_PASSWORD).calendar(url=self.url)
        out = {}
        for obj in calendar.todos(include_completed=True):
            task = task_from_ics(obj.data, str(obj.url))
            out[task["uid"]] = task
        return out

    def get(self, task_id):
        task = self.tasks().get(task_id)
        return (200, task) if task else (404, None)

    def href(self, uid):
        return self.url + urllib.parse.quote(uid, safe="") + ".ics"

    def patch(self, task, changes):
        # The resource name is not always the UID (vdirsyncer makes one up for a UID with
        # an '@'), so the href comes from the listing.
        status, etag, text = get_ics(task["href"])
        need("stand-in read before the change", status == 200, str(status))
        props = []
        if "title" in changes:
            props.append(f"SUMMARY:{escape_text(changes['title'])}")
        if changes.get("status") == "completed":
            props += ["STATUS:COMPLETED", f"COMPLETED:{stamp()}"]
        props.append(f"DTSTAMP:{stamp()}")
        status, _, raw = put_ics(task["href"], edit(text, props), etag)
        need(f"stand-in change {json.dumps(changes)}", status in (200, 201, 204),
             f"{status} {raw[:200]!r}")
        return self.get(task["uid"])[1]

    def create(self, fields):
        uid = f"rest-{RUN}-{uuid.uuid4().hex[:6]}"
        lines = [f"UID:{uid}", f"DTSTAMP:{stamp()}", f"SUMMARY:{escape_text(fields['title'])}",
                 f"PRIORITY:{ {'high': 1, 'medium': 5, 'low': 9}.get(fields.get('priority'), 0) }"]
        if fields.get("tags"):
            lines.append("CATEGORIES:" + ",".join(fields["tags"]))
        if fields.get("due_at"):
            lines.append("DUE:" + fields["due_at"].replace("-", "").replace(":", ""))
        status, _, raw = put_ics(self.href(uid), vcalendar(lines, False))
        need("stand-in create", status in (201, 204), f"{status} {raw[:200]!r}")
        return self.get(uid)[1]

    def delete(self, task):
        status, _, raw = dav("DELETE", task["href"])
        need("stand-in delete", status in (200, 204), f"{status} {raw[:200]!r}")


# --- the checks --------------------------------------------------------------------------------


def main():
    client = caldav.DAVClient(url=DAV_URL, username=DAV_USER, password=DAV_PASSWORD)
    principal = client.principal()
    ok(f"current-user-principal found ({principal.url})", principal.url is not None)
    home = str(principal.calendar_home_set.url)
    ok(f"calendar-home-set found ({home})", bool(home))
    calendars = principal.calendars()
    ok(f"calendar home lists {len(calendars)} calendar(s)", True)
    status, headers, _ = dav("OPTIONS", home)
    ok("OPTIONS: the DAV header has calendar-access",
       "calendar-access" in (headers.get("DAV") or ""), f"{status} DAV: {headers.get('DAV')}")
    if REST_URL:
        status, headers, _ = dav("PROPFIND", REST_URL + "/.well-known/caldav", headers={"Depth": "0"})
        ok("/.well-known/caldav is 301 to /dav/", status == 301 and urllib.parse.urlparse(
            headers.get("Location") or "").path == "/dav/", f"{status} {headers.get('Location')}")
    else:
        skip("/.well-known/caldav is 301 to /dav/")

    # The collection: a list created over REST, or a calendar made over CalDAV.
    if REST_URL:
        other = RestSide()
        list_id = other.make_list("Round trip")
        collection_url = home.rstrip("/") + f"/{list_id}/"
        ok("the new list's collection is /dav/calendars/{user}/{list_id}/",
           urllib.parse.urlparse(collection_url).path == f"/dav/calendars/{DAV_USER}/{list_id}/",
           collection_url)
    else:
        cal = principal.make_calendar(name="Round trip", cal_id=f"roundtrip-{RUN}",
                                      supported_calendar_component_set=["VTODO"])
        collection_url = str(cal.url)
        if not collection_url.endswith("/"):
            collection_url += "/"
        other = DavSide(collection_url)
    listed = {str(c.url).rstrip("/"): c for c in principal.calendars()}
    need("the collection is in the calendar home's listing",
         collection_url.rstrip("/") in listed, f"{collection_url} not in {sorted(listed)}")
    calendar = listed[collection_url.rstrip("/")]
    ok("its displayname is the list's name", calendar.get_display_name() == "Round trip",
       repr(calendar.get_display_name()))
    components = [str(c) for c in calendar.get_supported_components()]
    ok("supported-calendar-component-set has VTODO", "VTODO" in components, str(components))

    try:
        round_trip(calendar, collection_url, other)
    except Abort as stop:
        ok("round trip finished", False, f"stopped after: {stop}")
    except Exception:
        traceback.print_exc()
        ok("round trip finished", False, "exception (above)")

    try:
        security(client, collection_url, home, other)
    except Abort as stop:
        ok("security checks finished", False, f"stopped after: {stop}")
    except Exception:
        traceback.print_exc()
        ok("security checks finished", False, "exception (above)")

    if not REST_URL:
        try:
            calendar.delete()
        except Exception as error:
            print(f"# could not delete the calendar {collection_url}: {error}")


def round_trip(calendar, collection_url, other):
    parent_uid = f"rt-parent-{RUN}"
    child_uid = f"rt-child-{RUN}@example.org"  # an '@', percent-encoded in the resource name
    alarm = ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Round trip reminder",
             "TRIGGER;RELATED=END:-PT15M", "X-ALARM-NOTE:kept as is", "END:VALARM"]
    x_test = 'X-TEST;X-PARAM="a;b":keep me\\, exactly\\; as I am'
    x_test_child = "X-TEST:child value 42"
    parent_ics = vcalendar([
        f"UID:{parent_uid}", "DTSTAMP:20300101T000000Z", "SUMMARY:Round trip parent",
        "DUE;TZID=Europe/Berlin:20300107T180000", "PRIORITY:2", "CATEGORIES:alpha,beta",
        "RRULE:FREQ=WEEKLY;BYDAY=MO", "STATUS:NEEDS-ACTION", x_test, *alarm,
    ])
    child_ics = vcalendar([
        f"UID:{child_uid}", "DTSTAMP:20300101T000000Z", "SUMMARY:Round trip child",
        f"RELATED-TO;RELTYPE=PARENT:{parent_uid}", "PRIORITY:9", x_test_child, *alarm,
    ], timezone_block=False)
    parent_href = collection_url + urllib.parse.quote(parent_uid, safe="") + ".ics"
    child_href = collection_url + urllib.parse.quote(child_uid, safe="") + ".ics"

    # CalDAV -> REST
    status, parent_etag, raw = put_ics(parent_href, parent_ics)
    need("PUT a new VTODO (If-None-Match: *) is 201", status == 201, f"{status} {raw[:300]!r}")
    ok("the PUT answers an ETag", bool(parent_etag))
    status, child_etag, raw = put_ics(child_href, child_ics)
    need("PUT a VTODO with RELATED-TO;RELTYPE=PARENT and an '@' in its name is 201",
         status == 201, f"{status} {raw[:300]!r}")
    status, _, raw = put_ics(parent_href, parent_ics)
    ok("PUT If-None-Match: * on an existing resource is 412", status == 412, str(status))
    status, _, raw = put_ics(collection_url + "another-name.ics", parent_ics.replace(
        "SUMMARY:Round trip parent", "SUMMARY:Same UID elsewhere"))
    ok("PUT of an existing UID under another name is refused (4xx)", 400 <= status < 500,
       str(status))
    if status < 300:
        dav("DELETE", collection_url + "another-name.ics")

    hrefs = {str(o.url).rstrip("/").rsplit("/", 1)[-1] for o in calendar.todos(include_completed=True)}
    ok("calendar-query lists both VTODOs by their resource names",
       {parent_href.rsplit("/", 1)[-1], child_href.rsplit("/", 1)[-1]} <= hrefs, str(sorted(hrefs)))

    tasks = other.tasks()
    need(f"{other.name} sees both tasks", parent_uid in tasks and child_uid in tasks,
         str(sorted(tasks)))
    parent, child = tasks[parent_uid], tasks[child_uid]
    ok("SUMMARY -> title", parent["title"] == "Round trip parent", parent["title"])
    ok("PRIORITY:2 -> priority high", parent["priority"] == "high", parent["priority"])
    ok("PRIORITY:9 -> priority low", child["priority"] == "low", child["priority"])
    ok("CATEGORIES -> tags", parent["tags"] == ["alpha", "beta"], str(parent["tags"]))
    ok("DUE;TZID=Europe/Berlin:20300107T180000 -> due_at 2030-01-07T17:00:00Z",
       utc(parent["due_at"]) == "2030-01-07T17:00:00Z", str(parent["due_at"]))
    ok("RRULE -> recurrence.rrule",
       rrule_parts((parent.get("recurrence") or {}).get("rrule")) == ["BYDAY=MO", "FREQ=WEEKLY"],
       str(parent.get("recurrence")))
    ok("RELATED-TO;RELTYPE=PARENT -> parent_id of the first task",
       child["parent_id"] == parent["id"], f"{child['parent_id']} != {parent['id']}")
    ok("no status -> pending", child["status"] == "pending", child["status"])

    # REST -> CalDAV: a change of the child (not repeating: completing it completes it)
    changed = other.patch(child, {"title": "Round trip child, renamed", "status": "completed"})
    status, etag, text = get_ics(child_href)
    need("GET the changed VTODO", status == 200, str(status))
    ok("a change on the other side changes the ETag", etag != child_etag, f"{etag} == {child_etag}")
    c = component(text)
    ok("title -> SUMMARY", str(c.get("SUMMARY")) == "Round trip child, renamed",
       str(c.get("SUMMARY")))
    ok("status completed -> STATUS:COMPLETED", str(c.get("STATUS")) == "COMPLETED",
       str(c.get("STATUS")))
    ok("completed_at -> COMPLETED", prop_utc(c, "COMPLETED") is not None and (
        not REST_URL or same_second(prop_utc(c, "COMPLETED"), changed["completed_at"])),
       f"{prop_utc(c, 'COMPLETED')} vs {changed.get('completed_at')}")
    ok("the VALARM comes back byte-identical", block(text, "VALARM") == alarm,
       str(block(text, "VALARM")))
    ok("the X-TEST property comes back byte-identical", prop_lines(text, "X-TEST") == [x_test_child],
       str(prop_lines(text, "X-TEST")))
    ok("RELATED-TO is still there", str(c.get("RELATED-TO")) == parent_uid, str(c.get("RELATED-TO")))

    # REST -> CalDAV: a title change of the repeating parent
    other.patch(parent, {"title": "Round trip parent, renamed"})
    status, parent_etag, text = get_ics(parent_href)
    need("GET the repeating VTODO after the change", status == 200, str(status))
    c = component(text)
    ok("title -> SUMMARY (repeating task)", str(c.get("SUMMARY")) == "Round trip parent, renamed",
       str(c.get("SUMMARY")))
    ok("RRULE unchanged", rrule_parts(c["RRULE"].to_ical().decode() if "RRULE" in c else "")
       == ["BYDAY=MO", "FREQ=WEEKLY"], str(c.get("RRULE")))
    ok("DUE is the same instant", prop_utc(c, "DUE") == "2030-01-07T17:00:00Z",
       f"{prop_lines(text, 'DUE')}")
    ok("VALARM byte-identical (repeating task)", block(text, "VALARM") == alarm,
       str(block(text, "VALARM")))
    ok("X-TEST with a quoted parameter and escapes byte-identical",
       prop_lines(text, "X-TEST") == [x_test], str(prop_lines(text, "X-TEST")))

    # CalDAV edits -> REST
    edited = edit(text, [
        "SUMMARY:Round trip parent\\, edited over CalDAV", "PRIORITY:7", "CATEGORIES:alpha",
        "DUE;TZID=Europe/Berlin:20300114T093000", f"DTSTAMP:{stamp()}"])
    status, _, raw = put_ics(parent_href, edited, "\"not-the-etag\"")
    ok("PUT with a stale If-Match is 412", status == 412, str(status))
    status, parent_etag, raw = put_ics(parent_href, edited, parent_etag)
    need("PUT an edit with If-Match is 2xx", status in (200, 204), f"{status} {raw[:300]!r}")
    parent = other.tasks()[parent_uid]
    ok("edited SUMMARY -> title", parent["title"] == "Round trip parent, edited over CalDAV",
       parent["title"])
    ok("PRIORITY:7 -> priority low", parent["priority"] == "low", parent["priority"])
    ok("CATEGORIES:alpha -> tags [alpha]", parent["tags"] == ["alpha"], str(parent["tags"]))
    ok("edited DUE -> due_at 2030-01-14T08:30:00Z",
       utc(parent["due_at"]) == "2030-01-14T08:30:00Z", str(parent["due_at"]))

    status, etag, text = get_ics(child_href)
    reopened = edit(text, ["STATUS:NEEDS-ACTION", f"DTSTAMP:{stamp()}"], drop=["COMPLETED"])
    status, _, raw = put_ics(child_href, reopened, etag)
    need("PUT STATUS:NEEDS-ACTION without COMPLETED", status in (200, 204), f"{status} {raw[:300]!r}")
    child = other.tasks()[child_uid]
    ok("STATUS:NEEDS-ACTION -> pending, completed_at null",
       child["status"] == "pending" and child["completed_at"] is None,
       f"{child['status']} {child['completed_at']}")

    # REST -> CalDAV: a new task, seen through sync-collection too
    initial = calendar.objects_by_sync_token(load_objects=False, disable_fallback=True)
    token = initial.sync_token
    ok("sync-collection gives a real sync token", bool(token) and not str(token).startswith("fake-"),
       str(token))
    created = other.create({"title": "Created on the other side", "priority": "medium",
                            "tags": ["rest"], "due_at": "2030-02-01T12:00:00Z"})
    created_href = collection_url + urllib.parse.quote(created["uid"], safe="") + ".ics"
    status, etag, text = get_ics(created_href)
    need("the new task is at {collection}/{uid}.ics", status == 200, f"{status} {created_href}")
    c = component(text)
    ok("new task: SUMMARY", str(c.get("SUMMARY")) == "Created on the other side", str(c.get("SUMMARY")))
    ok("new task: priority medium -> PRIORITY:5", int(c.get("PRIORITY", 0)) == 5, str(c.get("PRIORITY")))
    ok("new task: tags -> CATEGORIES", [str(x) for x in c["CATEGORIES"].cats] == ["rest"]
       if "CATEGORIES" in c else False, str(prop_lines(text, "CATEGORIES")))
    ok("new task: due_at -> DUE", prop_utc(c, "DUE") == "2030-02-01T12:00:00Z", str(prop_lines(text, "DUE")))
    ok("new task: UID is its uid", str(c.get("UID")) == created["uid"], str(c.get("UID")))
    ok("new task: STATUS NEEDS-ACTION or none", str(c.get("STATUS", "NEEDS-ACTION")) == "NEEDS-ACTION",
       str(c.get("STATUS")))

    def sync(label, want_changed, want_deleted=()):
        nonlocal token
        result = calendar.objects_by_sync_token(sync_token=token, load_objects=False,
                                                disable_fallback=True)
        changed = sorted(str(o.url).rsplit("/", 1)[-1] for o in result
                         if o.url.canonical() not in result.deleted_urls)
        deleted = sorted(str(u).rsplit("/", 1)[-1] for u in result.deleted_urls)
        ok(f"sync-collection after {label} returns exactly that",
           changed == sorted(want_changed) and deleted == sorted(want_deleted)
           and result.sync_token != token,
           f"changed {changed}, deleted {deleted}, token {token} -> {result.sync_token}")
        token = result.sync_token

    name = created_href.rsplit("/", 1)[-1]
    sync("a create on the other side", [name])
    created = other.patch(created, {"title": "Created on the other side, renamed"})
    sync("a change on the other side", [name])

    # CalDAV completes it -> REST
    status, etag, text = get_ics(created_href)
    # A completion the client made earlier (offline, say): its time is kept. (One in the
    # future is taken as now.)
    done = edit(text, ["STATUS:COMPLETED", "COMPLETED:20260201T130000Z", f"DTSTAMP:{stamp()}"])
    status, _, raw = put_ics(created_href, done, etag)
    need("PUT STATUS:COMPLETED with COMPLETED", status in (200, 204), f"{status} {raw[:300]!r}")
    task = other.tasks()[created["uid"]]
    ok("STATUS:COMPLETED -> completed, COMPLETED -> completed_at",
       task["status"] == "completed" and utc(task["completed_at"]) == "2026-02-01T13:00:00Z",
       f"{task['status']} {task['completed_at']}")
    sync("a CalDAV change", [name])

    other.delete(task)
    status, _, _ = get_ics(created_href)
    ok("deleted on the other side -> GET of the resource is 404", status == 404, str(status))
    sync("a delete on the other side", [], [name])

    # CalDAV delete -> REST
    status, etag, _ = get_ics(child_href)
    status, _, raw = dav("DELETE", child_href, headers={"If-Match": "\"not-the-etag\""})
    ok("DELETE with a stale If-Match is 412", status == 412, str(status))
    status, _, raw = dav("DELETE", child_href, headers={"If-Match": etag})
    need("DELETE with If-Match is 2xx", status in (200, 204), f"{status} {raw[:300]!r}")
    status, _ = other.get(child["id"])
    ok("deleted over CalDAV -> GET of the task is 404", status == 404, str(status))
    ok("and it is gone from the list", child_uid not in other.tasks())


def security(client, collection_url, home, other):
    if not REST_URL:
        for name in ("app password as Basic on GET /api/tasks is 401",
                     "a revoked app password is 401 at once",
                     "a viewer's PUT is 403"):
            skip(name)
    else:
        status, _, _ = http("GET", REST_URL + "/api/tasks", basic=(DAV_USER, DAV_PASSWORD))
        ok("app password as Basic on GET /api/tasks is 401", status == 401, str(status))

    status, headers, _ = http("PROPFIND", collection_url, headers={"Depth": "0"},
                              basic=(DAV_USER, DAV_PASSWORD + "-wrong"))
    ok("a wrong password is 401 with WWW-Authenticate: Basic",
       status == 401 and "basic" in (headers.get("WWW-Authenticate") or "").lower(),
       f"{status} {headers.get('WWW-Authenticate')}")
    status, headers, _ = http("PROPFIND", collection_url, headers={"Depth": "0"})
    ok("no credentials is 401", status == 401, str(status))

    if BOB_USER:
        # 404 from the service; a plain CalDAV server may answer 403 (Radicale does).
        allowed = (404,) if REST_URL else (403, 404)
        for label, url, method in (("collection", collection_url, "PROPFIND"),
                                   ("calendar home", home, "PROPFIND")):
            status, _, _ = http(method, url, headers={"Depth": "0"}, basic=(BOB_USER, BOB_PASSWORD))
            ok(f"bob on alice's {label} is {'/'.join(map(str, allowed))}", status in allowed,
               str(status))
        status, _, _ = put_ics(collection_url + f"bob-{RUN}.ics", vcalendar(
            [f"UID:bob-{RUN}", "DTSTAMP:20300101T000000Z", "SUMMARY:bob was here"], False),
            auth=(BOB_USER, BOB_PASSWORD))
        ok(f"bob's PUT into alice's collection is {'/'.join(map(str, allowed))}",
           status in allowed, str(status))
    else:
        skip("bob on alice's collection", "no BOB_USER")

    if not REST_URL:
        return

    # Sharing: bob a viewer of the list -> his PUT into it is 403.
    if BOB_TOKEN and BOB_USER:
        status, body = rest("POST", f"/api/lists/{other.list_id}/invitations", {"role": "viewer"})
        need("POST /api/lists/{id}/invitations viewer", status == 201, f"{status} {body}")
        status, body = rest("POST", "/api/invitations/accept", {"token": body["token"]}, BOB_TOKEN)
        need("bob accepts the invitation", status == 200, f"{status} {body}")
        bob = caldav.DAVClient(url=DAV_URL, username=BOB_USER, password=BOB_PASSWORD)
        bob_home = str(bob.principal().calendar_home_set.url)
        shared = [c for c in bob.principal().calendars()
                  if str(c.url).rstrip("/").rsplit("/", 1)[-1] == str(other.list_id)]
        need("bob's calendar home lists the shared list", len(shared) == 1,
             f"{bob_home}: {[str(c.url) for c in bob.principal().calendars()]}")
        shared_url = str(shared[0].url).rstrip("/") + "/"
        todos = shared[0].todos(include_completed=True)
        ok("bob reads the shared list's tasks", len(todos) >= 1, f"{len(todos)} VTODOs")
        status, _, raw = put_ics(shared_url + f"viewer-{RUN}.ics", vcalendar(
            [f"UID:viewer-{RUN}", "DTSTAMP:20300101T000000Z", "SUMMARY:viewer was here"], False),
            auth=(BOB_USER, BOB_PASSWORD))
        ok("a viewer's PUT is 403", status == 403, f"{status} {raw[:200]!r}")
        if todos:
            status, _, _ = dav("DELETE", str(todos[0].url), auth=(BOB_USER, BOB_PASSWORD))
            ok("a viewer's DELETE is 403", status == 403, str(status))
    else:
        skip("a viewer's PUT is 403", "no BOB_TOKEN")

    # Revocation: a second app password, revoked, is refused at once.
    status, body = rest("POST", "/api/app-passwords", {"name": "revoke-me"})
    need("POST /api/app-passwords", status == 201 and "password" in body, f"{status} {body}")
    credentials = (body["username"], body["password"])
    status, _, _ = http("PROPFIND", home, headers={"Depth": "0"}, basic=credentials)
    ok("a new app password opens /dav/", status == 207, str(status))
    status, _ = rest("DELETE", f"/api/app-passwords/{body['id']}")
    need("DELETE /api/app-passwords/{id} is 204", status == 204, str(status))
    status, _, _ = http("PROPFIND", home, headers={"Depth": "0"}, basic=credentials)
    ok("a revoked app password is 401 at once", status == 401, str(status))


if __name__ == "__main__":
    try:
        main()
    except Abort as stop:
        ok("setup", False, f"stopped after: {stop}")
    except Exception:
        traceback.print_exc()
        ok("setup", False, "exception (above)")
    print(f"roundtrip: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
