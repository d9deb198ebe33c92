#!/usr/bin/env python3
"""Concurrent CRUD smoke against $SVC_URL: CRUD_THREADS threads x CRUD_ITERATIONS rounds of
create -> get -> update -> list -> delete -> get (404). Every step must give its expected status
and body. Used by pgbouncer.sh.

usage: crud.py NAME [--expect-ok | --info]
  --expect-ok  (default) report PASS/FAIL
  --info       only describe what happened (INFO), e.g. for a configuration known to break
Writes the distinct error lines of the service log (new since start) into the report.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import threading
import uuid

from http_client import Client, Rec, make_token, now
from logs import service_log_lines, service_log_size
from results import check, failures, ms, pct, report

ENV = os.environ
THREADS = int(ENV.get("CRUD_THREADS", "16"))
ITERATIONS = int(ENV.get("CRUD_ITERATIONS", "20"))
URL = ENV["SVC_URL"]


def round_trip(client: Client, user: str, i: int, n: int, out: list[tuple[str, int, Rec]]) -> None:
    def step(name: str, expected: int, rec: Rec, check=lambda r: True) -> bool:
        good = rec.status == expected and check(rec)
        out.append((name, expected, rec))
        rec.kind = name
        rec.error = rec.error or (None if good else f"expected {expected}")
        return good

    title = f"{user}-{i}-{n}"
    r = client.request("create", "POST", "/api/tasks", {"title": title, "description": "d"})
    if not step("create", 201, r, lambda r: isinstance(r.body, dict) and r.body.get("title") == title):
        return
    tid = r.body["id"]
    step("get", 200, client.request("get", "GET", f"/api/tasks/{tid}"),
         lambda r: isinstance(r.body, dict) and r.body.get("id") == tid)
    step("update", 200, client.request("update", "PUT", f"/api/tasks/{tid}",
                                       {"title": title + "!", "status": "completed"}),
         lambda r: isinstance(r.body, dict) and r.body.get("title") == title + "!"
         and r.body.get("status") == "completed")
    step("list", 200, client.request("list", "GET", "/api/tasks?limit=10"),
         lambda r: isinstance(r.body, list))
    step("delete", 204, client.request("delete", "DELETE", f"/api/tasks/{tid}"))
    step("get-deleted", 404, client.request("get", "GET", f"/api/tasks/{tid}"))


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "crud"
    info_only = "--info" in sys.argv
    log_offset = service_log_size()
    user = f"crud-{uuid.uuid4().hex[:8]}"
    token = make_token(user)
    results: list[tuple[str, int, Rec]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        client = Client(URL, token, timeout=15)
        mine: list[tuple[str, int, Rec]] = []
        for n in range(ITERATIONS):
            round_trip(client, user, i, n, mine)
        client.close()
        with lock:
            results.extend(mine)

    t0 = now()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = now() - t0

    bad = [(s, e, r) for s, e, r in results if r.error]
    by_step = collections.Counter((s, r.status) for s, _, r in results)
    lat = [r.latency for _, _, r in results]
    summary = (f"{THREADS} threads x {ITERATIONS} rounds: {len(results)} requests in {elapsed:.1f} s, "
               f"{len(bad)} unexpected; p50 {ms(pct(lat, 50))}, p95 {ms(pct(lat, 95))}; statuses "
               + ", ".join(f"{s} {st}: {n}" for (s, st), n in sorted(by_step.items())))

    # What the service logged about the failures: distinct messages, ids and timestamps removed.
    errors = collections.Counter()
    for line in service_log_lines("ERROR", log_offset) + service_log_lines("WARN", log_offset):
        msg = re.sub(r"^\S+\s+", "", line)
        msg = re.sub(r"request_id=\S+|user_id=\"[^\"]*\"|latency_ms=\S+", "", msg)
        msg = re.sub(r"sqlx_s_\d+", "sqlx_s_N", msg)
        if "response status=" in msg:
            continue
        errors[msg.strip()[:220]] += 1
    top = "; ".join(f"{n} x {m}" for m, n in errors.most_common(3))
    if info_only:
        report("INFO", name, summary)
        if bad:
            report("INFO", name, f"first unexpected: {bad[0][2].describe()}")
        if top:
            report("INFO", name, f"service log: {top}")
        return 0
    check(not bad and len(results) > 0, name, summary + (f"; first unexpected: {bad[0][2].describe()}" if bad else ""))
    if top:
        report("INFO" if not bad else "FAIL", f"{name} service-log", top)
    return 1 if failures() else 0


if __name__ == "__main__":
    sys.exit(main())
