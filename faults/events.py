#!/usr/bin/env python3
"""Live streams through a database outage: a client listens on GET /api/tasks/events while
writers keep trying to create tasks and PostgreSQL is restarted (immediate, then a stop of
DOWN_S seconds). The stream must stay open and, once the database is back, catch up: when
the writers stop, the events it delivered equal the change feed exactly (no loss, no
duplicate, commit order) and include every create that was acknowledged.

Run through outage.sh, which starts the private cluster and the service.
Knobs (env): EVENTS_WRITERS (4), OUTAGE_DOWN_S (4).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

from cluster import pg_ctl, pg_ctl_popen, pg_isready
from http_client import Client, make_token
from results import check, failures, log

ENV = os.environ
URL = ENV["SVC_URL"]
WRITERS = int(ENV.get("EVENTS_WRITERS", "4"))
DOWN_S = float(ENV.get("OUTAGE_DOWN_S", "4"))
CATCH_UP_S = 15.0


class Listener(threading.Thread):
    """Reads one event stream until told to stop; keeps every event and how the stream ended."""

    def __init__(self, token: str):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(URL)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.conn.request("GET", "/api/tasks/events", headers={"Authorization": f"Bearer {token}"})
        self.response = self.conn.getresponse()
        self.events: list[tuple[int, str, dict]] = []
        self.ended: str | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        fields: dict[str, str] = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    self.ended = "the service ended the stream"
                    return
                line = line.decode().rstrip("\n")
                if line == "":
                    if "id" in fields:
                        with self.lock:
                            self.events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
        except Exception as e:  # noqa: BLE001 - how the stream broke is the result
            self.ended = f"{type(e).__name__}: {e}"

    def snapshot(self) -> list[tuple[int, str, dict]]:
        with self.lock:
            return list(self.events)


def write_until(stop: threading.Event, token: str, acknowledged: list[int], lock: threading.Lock, n: int) -> None:
    client = Client(URL, token, timeout=5)
    seq = 0
    while not stop.is_set():
        seq += 1
        rec = client.request("create", "POST", "/api/tasks", {"title": f"writer {n} #{seq}"})
        if rec.status == 201 and isinstance(rec.body, dict):
            with lock:
                acknowledged.append(rec.body["id"])
        elif rec.status != 201:
            time.sleep(0.05)


def feed(token: str) -> list[dict]:
    client = Client(URL, token)
    entries, since = [], ""
    while True:
        rec = client.request("feed", "GET", f"/api/tasks/changes?limit=1000&since={since}")
        if rec.status != 200:
            raise RuntimeError(f"feed: {rec.describe()}")
        entries += rec.body["changes"]
        since = rec.body["next_cursor"]
        if not rec.body["has_more"]:
            return entries


def restart_immediate() -> None:
    proc = pg_ctl_popen("-l", ENV["PG_LOG"], "-m", "immediate", "-w", "restart")
    proc.wait(60)
    while not pg_isready():
        time.sleep(0.05)


def stop_and_start() -> None:
    r = pg_ctl("-m", "fast", "-w", "stop")
    if r.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed: {r.stdout}{r.stderr}")
    time.sleep(DOWN_S)
    proc = pg_ctl_popen("-l", ENV["PG_LOG"], "-w", "start")
    proc.wait(60)
    while not pg_isready():
        time.sleep(0.05)


def main() -> int:
    user = f"events-{uuid.uuid4().hex[:8]}"
    token = make_token(user)
    listener = Listener(token)
    if listener.response.status != 200:
        check(False, "events/outage open", f"the stream answered {listener.response.status}")
        return 1
    listener.start()
    stop, lock, acknowledged = threading.Event(), threading.Lock(), []
    writers = [threading.Thread(target=write_until, args=(stop, token, acknowledged, lock, n), daemon=True)
               for n in range(WRITERS)]
    for w in writers:
        w.start()
    time.sleep(2)
    log("events/outage: immediate restart")
    restart_immediate()
    time.sleep(2)
    log(f"events/outage: stop, {DOWN_S} s down, start")
    stop_and_start()
    time.sleep(3)
    stop.set()
    for w in writers:
        w.join(30)

    expected = feed(token)
    last = int(expected[-1]["cursor"]) if expected else 0
    deadline = time.monotonic() + CATCH_UP_S
    while time.monotonic() < deadline and listener.ended is None:
        got = listener.snapshot()
        if got and got[-1][0] >= last:
            break
        time.sleep(0.1)
    got = listener.snapshot()
    check(listener.ended is None, "events/outage stream-stays-open",
          listener.ended or f"open through both outages ({len(got)} events)")
    ids = [event[0] for event in got]
    check(all(a < b for a, b in zip(ids, ids[1:])), "events/outage order",
          "event ids strictly increase (no duplicate, commit order)")
    check([event[2] for event in got] == expected, "events/outage equals-feed",
          f"{len(got)} events, feed has {len(expected)} entries")
    heard = {event[2]["task"]["id"] for event in got if event[1] == "upsert"}
    missing = sorted(set(acknowledged) - heard)
    check(not missing and acknowledged != [], "events/outage no-loss",
          f"{len(acknowledged)} acknowledged creates, {len(missing)} missing from the stream {missing[:5]}")
    return 1 if failures() else 0


if __name__ == "__main__":
    sys.exit(main())
