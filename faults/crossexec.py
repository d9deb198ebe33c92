#!/usr/bin/env python3
"""Demonstrates statement mix-ups when server-side prepared statements go through a
transaction-mode pooler: user `reader` only ever GETs its own tasks while user `writer` creates
and deletes its own. Afterwards, any of reader's tasks that vanished (or changed) was removed by
a GET that ran someone else's prepared DELETE. Used by pgbouncer.sh (information only).

usage: crossexec.py NAME [--check]   (env CROSS_TASKS, CROSS_SECONDS)
  --check: PASS only if every GET was 200 and no task vanished; otherwise INFO only.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from cluster import psql, sql_literal
from http_client import Client, make_token, now
from results import check, report

ENV = os.environ
URL = ENV["SVC_URL"]
N = int(ENV.get("CROSS_TASKS", "40"))
SECONDS = float(ENV.get("CROSS_SECONDS", "3"))


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "crossexec"
    reader = f"reader-{uuid.uuid4().hex[:8]}"
    writer = f"writer-{uuid.uuid4().hex[:8]}"
    # The reader's tasks go straight into the database, so no statement of the service is involved.
    rows = psql(
        "insert into tasks (user_id, title, status, created_at, updated_at, position) "
        f"select {sql_literal(reader)}, 'keep ' || g, 'pending', now(), now(), "
        "'d' || lpad(g::text, 4, '0') "
        f"from generate_series(1, {N}) g returning id")
    ids = [int(r[0]) for r in rows]
    rtoken, wtoken = make_token(reader), make_token(writer)
    stop = threading.Event()
    counts = {"get": {}, "writer": {}}
    lock = threading.Lock()

    def tally(kind: str, status: int) -> None:
        with lock:
            counts[kind][status] = counts[kind].get(status, 0) + 1

    def read_loop(i: int) -> None:
        cl = Client(URL, rtoken)
        k = i
        while not stop.is_set():
            tally("get", cl.request("get", "GET", f"/api/tasks/{ids[k % N]}").status)
            k += 1

    def write_loop(i: int) -> None:
        cl = Client(URL, wtoken)
        while not stop.is_set():
            r = cl.request("create", "POST", "/api/tasks", {"title": "scratch"})
            tally("writer", r.status)
            if r.status == 201:
                tally("writer", cl.request("delete", "DELETE", f"/api/tasks/{r.body['id']}").status)

    threads = [threading.Thread(target=read_loop, args=(i,), daemon=True) for i in range(6)]
    threads += [threading.Thread(target=write_loop, args=(i,), daemon=True) for i in range(4)]
    t0 = now()
    for t in threads:
        t.start()
    stop.wait(SECONDS)
    stop.set()
    for t in threads:
        t.join(20)
    left = psql(f"select count(*), count(*) filter (where title like 'keep %') from tasks "
                f"where user_id = {sql_literal(reader)}")[0]
    lost = N - int(left[0])
    detail = (f"{now() - t0:.1f} s; reader GET statuses {dict(sorted(counts['get'].items()))}, writer "
             f"statuses {dict(sorted(counts['writer'].items()))}; reader's tasks (only ever read): "
             f"{left[0]}/{N} still exist" + (f" -> {lost} deleted by GET requests" if lost else ""))
    if "--check" in sys.argv:
        ok = lost == 0 and set(counts["get"]) == {200} and set(counts["writer"]) <= {201, 204}
        check(ok, name, detail)
        return 0 if ok else 1
    report("INFO", name, detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
