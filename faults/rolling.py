#!/usr/bin/env python3
"""Rolling restart behind HAProxy (run through rolling.sh): while THREADS clients create
tasks with an Idempotency-Key and read lists through the load balancer at a steady pace, each
of the three instances is stopped with SIGTERM and started again, in turn, waiting for the
balancer to send it traffic again before the next. Every request must succeed (no retry by
the client), and the final list must hold each acknowledged create exactly once.
Knobs (env): ROLLING_THREADS (4), ROLLING_PACE_S (0.02), ROLLING_SIGNAL (TERM; KILL shows
that the test fails when an instance does not drain).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from http_client import Client, make_token
from results import check, failures, log, report

ENV = os.environ
LB = ENV["LB_URL"]
THREADS = int(ENV.get("ROLLING_THREADS", "4"))
PACE_S = float(ENV.get("ROLLING_PACE_S", "0.02"))
SIGNAL = getattr(signal, "SIG" + ENV.get("ROLLING_SIGNAL", "TERM"))


def load(stop: threading.Event, token: str, n: int, out: dict) -> None:
    client = Client(LB, token, timeout=10)
    sent = failed = 0
    created: list[tuple[str, int]] = []
    problems: list[str] = []
    seq = 0
    while not stop.is_set():
        seq += 1
        if seq % 2:
            key = f"{n}-{seq}-{uuid.uuid4().hex[:6]}"
            rec = client.request("create", "POST", "/api/tasks", {"title": key}, thread=n,
                                 extra={"Idempotency-Key": key})
            sent += 1
            if rec.status == 201 and isinstance(rec.body, dict):
                created.append((key, rec.body["id"]))
            else:
                failed += 1
                problems.append(rec.describe())
        else:
            rec = client.request("list", "GET", "/api/tasks?limit=5", thread=n)
            sent += 1
            if rec.status != 200:
                failed += 1
                problems.append(rec.describe())
        time.sleep(PACE_S)
    out[n] = (sent, failed, created, problems)


def restart(index: int, port: str, pid: int) -> int:
    """SIGTERM, wait for the exit, start it again on the same port; returns the new pid."""
    os.kill(pid, SIGNAL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"instance {index} did not exit within 60 s of SIGTERM")
    env = {k: v for k, v in ENV.items() if k in ("PATH", "HOME", "BETTER_AUTH_SECRET")}
    env.update(HOST="127.0.0.1", PORT=port, DATABASE_URL=ENV["ROLLING_DB_URL"],
               SHUTDOWN_GRACE_SECONDS=ENV["ROLLING_GRACE_S"], RATE_LIMIT_PER_MINUTE="0",
               AUTH_FAILURES_PER_MINUTE="0", LOG_FORMAT="text", NO_COLOR="1",
               METRICS_ADDR="127.0.0.1:0")
    log_file = open(os.path.join(ENV["FAULTS_TMP"], f"rolling-{index}-restarted.log"), "ab")
    proc = subprocess.Popen([ENV["TODO_BIN"], "serve"], env=env, cwd=ENV["FAULTS_TMP"],
                            stdout=log_file, stderr=log_file)
    probe = Client(f"http://127.0.0.1:{port}")
    while time.monotonic() < deadline:
        if probe.request("ready", "GET", "/ready").status == 200:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"instance {index} not ready after its restart")
    # HAProxy needs two good checks (rise 2, inter 200 ms) to send it traffic again.
    time.sleep(1.0)
    return proc.pid


def main() -> int:
    user = f"rolling-{uuid.uuid4().hex[:8]}"
    token = make_token(user)
    ports = ENV["ROLLING_PORTS"].split()
    pids = [int(p) for p in ENV["ROLLING_PIDS"].split()]
    stop, out = threading.Event(), {}
    threads = [threading.Thread(target=load, args=(stop, token, n, out), daemon=True) for n in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(2)
    started = []
    for index, (port, pid) in enumerate(zip(ports, pids)):
        log(f"rolling: restarting instance {index + 1} (port {port})")
        new = restart(index + 1, port, pid)
        started.append(new)
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(30)
    sent = sum(v[0] for v in out.values())
    failed = sum(v[1] for v in out.values())
    created = [c for v in out.values() for c in v[2]]
    problems = [p for v in out.values() for p in v[3]]
    check(failed == 0, "rolling/no-failed-request",
          f"{sent} requests through HAProxy while 3 instances restarted in turn, {failed} failed"
          + (f": {problems[:3]}" if problems else ""))
    client = Client(LB, token)
    titles: list[str] = []
    offset = 0
    while True:
        rec = client.request("list", "GET", f"/api/tasks?limit=100&offset={offset}")
        if rec.status != 200:
            report("FAIL", "rolling/final-list", rec.describe())
            return 1
        titles += [task["title"] for task in rec.body]
        if len(rec.body) < 100:
            break
        offset += 100
    acknowledged = {key for key, _ in created}
    stored = set(titles)
    duplicates = len(titles) - len(stored)
    lost = sorted(acknowledged - stored)
    check(not lost and duplicates == 0 and len(acknowledged) > 0, "rolling/creates-exactly-once",
          f"{len(acknowledged)} acknowledged creates, {len(titles)} stored, {len(lost)} lost, {duplicates} twice")
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return 1 if failures() else 0


if __name__ == "__main__":
    sys.exit(main())
