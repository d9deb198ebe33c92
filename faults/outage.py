#!/usr/bin/env python3
"""DB outage under load: the service must answer fast 503s while the database is gone, serve
again within 5 s once it is back (no restart), and lose no acknowledged write.

Scenarios (each run RUNS times, with a fresh user so the data check is exact):
  stop       pg_ctl stop -m fast, DOWN_S seconds down, pg_ctl start
  restart    pg_ctl restart -m immediate (kills every backend, crash recovery)
  terminate  pg_terminate_backend() on every connection of the service (57P01)

Run through outage.sh, which starts the private cluster and the service.
Knobs (env): OUTAGE_THREADS (8), OUTAGE_RUNS (3), OUTAGE_DOWN_S (4), OUTAGE_WARM_S (3),
OUTAGE_TAIL_S (6.5), OUTAGE_PACE_S (0.01), OUTAGE_MARGIN_MS (500), OUTAGE_SCENARIOS.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import uuid

from cluster import pg_ctl, pg_ctl_popen, pg_isready, psql, sql_literal
from http_client import Client, Pollers, Rec, make_token, now
from logs import explain_slow
from results import check, dump_records, failures, log, median, ms, report

ENV = os.environ
THREADS = int(ENV.get("OUTAGE_THREADS", "8"))
RUNS = int(ENV.get("OUTAGE_RUNS", "3"))
DOWN_S = float(ENV.get("OUTAGE_DOWN_S", "4"))
WARM_S = float(ENV.get("OUTAGE_WARM_S", "3"))
TAIL_S = float(ENV.get("OUTAGE_TAIL_S", "6.5"))
PACE_S = float(ENV.get("OUTAGE_PACE_S", "0.01"))
ACQUIRE_S = int(ENV.get("DB_ACQUIRE_TIMEOUT_MS", "2000")) / 1000
MARGIN_S = int(ENV.get("OUTAGE_MARGIN_MS", "500")) / 1000
RECOVERY_BUDGET_S = 5.0
SCENARIOS = ENV.get("OUTAGE_SCENARIOS", "stop restart terminate").split()
URL = ENV["SVC_URL"]


class Load:
    """THREADS client threads, each alternating creates and lists as fast as PACE_S allows."""

    def __init__(self, token: str, tag: str):
        self.token, self.tag = token, tag
        self.recs: list[Rec] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(THREADS)]

    def worker(self, i: int) -> None:
        client = Client(URL, self.token, timeout=10)
        rng = random.Random(i)
        seq = 0
        mine: list[Rec] = []
        while not self.stop_event.is_set():
            if rng.random() < 0.5:
                seq += 1
                title = f"{self.tag}-{i}-{seq}"
                rec = client.request("create", "POST", "/api/tasks", {"title": title}, thread=i)
                rec.title = title
                if rec.status == 201 and isinstance(rec.body, dict):
                    rec.task_id = rec.body.get("id")
            else:
                offset = rng.choice((0, 0, 0, 50))
                rec = client.request("list", "GET", f"/api/tasks?limit=100&offset={offset}", thread=i)
            mine.append(rec)
            self.stop_event.wait(PACE_S)
        client.close()
        with self.lock:
            self.recs.extend(mine)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> list[Rec]:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)
        hung = [t for t in self.threads if t.is_alive()]
        if hung:
            report("FAIL", "outage/client-threads", f"{len(hung)} client threads still blocked after 30 s")
        return sorted(self.recs, key=lambda r: r.t0)


def inflict(kind: str) -> dict[str, float]:
    """Applies the fault; returns the event times (monotonic)."""
    ev: dict[str, float] = {"fault_begin": now()}
    if kind == "stop":
        r = pg_ctl("-m", "fast", "-w", "stop")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {r.stdout}{r.stderr}")
        ev["down"] = now()
        time.sleep(DOWN_S)
        ev["start_begin"] = now()
        proc = pg_ctl_popen("-l", ENV["PG_LOG"], "-w", "start")
        while not pg_isready():
            if proc.poll() is not None and proc.returncode != 0:
                raise RuntimeError(f"pg_ctl start failed: {proc.stdout.read()}")
            time.sleep(0.02)
        ev["db_ready"] = now()
        proc.wait(60)
        ev["first_ok_after"] = ev["down"]
    elif kind == "restart":
        proc = pg_ctl_popen("-l", ENV["PG_LOG"], "-m", "immediate", "-w", "restart")
        down_seen = None
        while True:
            ready = pg_isready()
            t = now()
            if not ready and down_seen is None:
                down_seen = t
            if ready and down_seen is not None:
                ev["db_ready"] = t
                break
            if proc.poll() is not None:
                if proc.returncode != 0:
                    raise RuntimeError(f"pg_ctl restart failed: {proc.stdout.read()}")
                if ready:
                    ev["db_ready"] = t
                    break
            time.sleep(0.02)
        proc.wait(60)
        ev["down"] = down_seen if down_seen is not None else ev["fault_begin"]
        ev["first_ok_after"] = down_seen if down_seen is not None else ev["db_ready"]
    elif kind == "terminate":
        rows = psql("select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity "
                    "where usename = 'todo' and pid <> pg_backend_pid()) t", db="postgres")
        ev["terminated"] = float(rows[0][0])
        ev["down"] = ev["db_ready"] = ev["first_ok_after"] = now()
    else:
        raise ValueError(kind)
    return ev


def analyse(kind: str, run: int, user: str, recs: list[Rec], ev: dict[str, float],
            ready: list[Rec], health: list[Rec], final_ready: Rec) -> dict[str, float | None]:
    name = f"outage/{kind}#{run}"
    bound = ACQUIRE_S + MARGIN_S
    ok = lambda r: 200 <= r.status < 300  # noqa: E731
    out: dict[str, float | None] = {}

    n2xx = sum(ok(r) for r in recs)
    n503 = sum(r.status == 503 for r in recs)
    report("INFO", name, f"{len(recs)} requests: {n2xx} 2xx, {n503} 503, "
           f"{len(recs) - n2xx - n503} other; fault at +{ev['fault_begin'] - recs[0].t0:.1f} s"
           + (f", terminated {ev['terminated']:.0f} backends" if "terminated" in ev else "")
           + (f", DB down for {ev['db_ready'] - ev['down']:.2f} s" if kind != "terminate" else ""))

    s500 = [r for r in recs if r.status == 500]
    check(not s500, f"{name} no-500", f"{len(s500)} x 500" + (f"; first: {s500[0].describe()}" if s500 else ""))

    hung = [r for r in recs if r.status == 0]
    other = [r for r in recs if not ok(r) and r.status not in (0, 500, 503)]
    check(not hung and not other, f"{name} only-2xx-or-503",
          f"{len(hung)} without an HTTP answer (hang/connection error), {len(other)} other statuses"
          + (f"; e.g. {(hung + other)[0].describe()}" if hung or other else ""))

    bad503 = [r for r in recs if r.status == 503 and not r.is_problem_503()]
    check(not bad503, f"{name} 503-is-problem-json", f"{n503} x 503, {len(bad503)} without JSON body or Retry-After"
          + (f"; e.g. {bad503[0].describe()}" if bad503 else ""))

    lat503 = [r.latency for r in recs if r.status == 503]
    slowest = max(recs, key=lambda r: r.latency)
    out["slowest_503"] = max(lat503) if lat503 else None
    out["slowest_any"] = slowest.latency
    check(slowest.latency <= bound, f"{name} bounded-latency",
          f"slowest request {ms(slowest.latency)} ({slowest.kind} {slowest.status}), slowest 503 "
          f"{ms(out['slowest_503'])}, bound {ms(bound)} (acquire timeout + {ms(MARGIN_S)}); "
          f"slowest: {explain_slow(recs, 2)}")

    if kind == "stop":
        # Sent after the stop and answered before PostgreSQL accepted connections again (less
        # the readiness poll's lag): the database was away for all of it, so each must be a 503.
        # With 2 s acquire timeouts in a ~4 s outage, whether any request falls wholly inside
        # is a matter of phase; the outage must then at least show as 503s sent during it.
        down_recs = [r for r in recs if r.t0 >= ev["down"] and r.t1 <= ev["db_ready"] - 0.05]
        good = [r for r in down_recs if r.is_problem_503()]
        sent_while_down = [r for r in recs if ev["down"] <= r.t0 <= ev["start_begin"]]
        seen = bool(down_recs) or any(r.is_problem_503() for r in sent_while_down)
        check(seen and len(good) == len(down_recs), f"{name} while-down-all-503",
              f"{len(good)}/{len(down_recs)} requests made entirely while the DB was down were 503 + "
              f"Retry-After; latencies {ms(min((r.latency for r in down_recs), default=None))}"
              f"..{ms(max((r.latency for r in down_recs), default=None))}; "
              f"{sum(r.is_problem_503() for r in sent_while_down)}/{len(sent_while_down)} sent "
              f"while down were 503")
        rd = [r for r in ready if r.t0 >= ev["down"] and r.t1 <= ev["start_begin"]]
        check(bool(rd) and all(r.is_problem_503() for r in rd), f"{name} ready-503-while-down",
              f"{sum(r.is_problem_503() for r in rd)}/{len(rd)} /ready probes while down were 503")

    after = [r for r in recs if r.t0 >= ev["first_ok_after"] and ok(r)]
    if after:
        first = min(after, key=lambda r: r.t1)
        out["recovery"] = max(0.0, first.t1 - ev["db_ready"])
    else:
        out["recovery"] = None
    failures_after = [r for r in recs if not ok(r) and r.t1 >= ev["fault_begin"]]
    last_fail = max((r.t1 for r in failures_after), default=None)
    out["all_ok_after"] = None if last_fail is None else max(0.0, last_fail - ev["db_ready"])
    last_txt = "none" if last_fail is None else f"{(last_fail - ev['db_ready']) * 1000:+.0f} ms from DB ready"
    late = [r for r in recs if r.t0 >= ev["db_ready"] + RECOVERY_BUDGET_S]
    late_bad = [r for r in late if not ok(r)]
    check(out["recovery"] is not None and out["recovery"] <= RECOVERY_BUDGET_S and late and not late_bad,
          f"{name} recovery",
          f"first 2xx {ms(out['recovery'])} after the DB accepted connections; last failure {last_txt}; "
          f"{len(late_bad)}/{len(late)} requests started > {RECOVERY_BUDGET_S:.0f} s after were not 2xx")

    ready_after = [r for r in ready if r.t0 >= ev["db_ready"] and r.status == 200]
    out["ready_recovery"] = (min(r.t1 for r in ready_after) - ev["db_ready"]) if ready_after else None
    check(final_ready.status == 200 and bool(ready_after), f"{name} ready-200-after",
          f"/ready 200 {ms(out['ready_recovery'])} after the DB came back; final /ready {final_ready.status}")

    hbad = [r for r in health if r.status != 200 or r.latency > 0.5]
    check(bool(health) and not hbad, f"{name} health-always-200",
          f"{len(health) - len(hbad)}/{len(health)} /health probes were 200 within 500 ms"
          + (f"; e.g. {hbad[0].describe()}" if hbad else ""))

    # Durability: every acknowledged create is stored, nothing else is.
    acked = {r.task_id: r for r in recs if r.kind == "create" and r.status == 201}
    by_title = {r.title: r for r in recs if r.kind == "create"}
    rows = psql(f"select id, title from tasks where user_id = {sql_literal(user)}")
    stored = {int(i): t for i, t in rows}
    missing = sorted(set(acked) - set(stored))
    extra = sorted(set(stored) - set(acked))
    detail = (f"{len(acked)} creates got 201, {len(stored)} rows stored; "
              f"{len(missing)} acknowledged but missing, {len(extra)} stored but not acknowledged")
    if extra:
        samples = [by_title.get(stored[i]) for i in extra[:3]]
        detail += "; unacknowledged rows came from: " + " | ".join(
            s.describe() if s else "unknown request" for s in samples)
    if missing:
        detail += f"; missing ids {missing[:10]}"
    check(not missing and not extra, f"{name} data-integrity", detail)
    return out


def run_one(kind: str, run: int) -> dict[str, float | None]:
    user = f"outage-{kind}-{run}-{uuid.uuid4().hex[:8]}"
    token = make_token(user)
    ready = Pollers(URL, "/ready", 0.25, n=4)
    health = Pollers(URL, "/health", 0.2)
    load = Load(token, user)
    log(f"outage/{kind}#{run}: load with {THREADS} threads")
    ready.start()
    health.start()
    load.start()
    time.sleep(WARM_S)
    ev = inflict(kind)
    time.sleep(TAIL_S)
    recs = load.stop()
    ready.stop()
    health.stop()
    final_ready = Client(URL).request("ready", "GET", "/ready")
    origin = recs[0].t0 if recs else ev["fault_begin"]
    dump_records(f"outage-{kind}-{run}", recs + ready.recs, origin,
                 {k: v for k, v in ev.items() if k != "terminated"})
    return analyse(kind, run, user, recs, ev, ready.recs, health.recs, final_ready)


def main() -> int:
    # Warm up: the service answers with the DB up.
    probe = Client(URL).request("ready", "GET", "/ready")
    if probe.status != 200:
        report("FAIL", "outage/setup", f"/ready before the test: {probe.describe()}")
        return 1
    results: dict[str, list[dict[str, float | None]]] = {}
    for kind in SCENARIOS:
        for run in range(1, RUNS + 1):
            try:
                results.setdefault(kind, []).append(run_one(kind, run))
            except Exception as e:  # noqa: BLE001
                report("FAIL", f"outage/{kind}#{run}", f"scenario crashed: {type(e).__name__}: {e}")
                if not pg_isready():
                    pg_ctl("-l", ENV["PG_LOG"], "-w", "start")
    slowest_503 = []
    for kind, outs in results.items():
        rec = [o["recovery"] for o in outs if o.get("recovery") is not None]
        allok = [o["all_ok_after"] for o in outs if o.get("all_ok_after") is not None]
        rdy = [o["ready_recovery"] for o in outs if o.get("ready_recovery") is not None]
        s503 = [o["slowest_503"] for o in outs if o.get("slowest_503") is not None]
        slowest_503 += s503
        report("INFO", f"outage/{kind} summary",
               f"median recovery (first 2xx after DB ready) {ms(median(rec))} "
               f"[{', '.join(ms(x) for x in rec)}]; median time to last failure {ms(median(allok))}; "
               f"median /ready recovery {ms(median(rdy))}; slowest 503 {ms(max(s503, default=None))}")
    report("INFO", "outage summary", f"slowest 503 over all scenarios {ms(max(slowest_503, default=None))} "
           f"(DB_ACQUIRE_TIMEOUT_MS={ACQUIRE_S * 1000:.0f})")
    return 1 if failures() else 0


if __name__ == "__main__":
    sys.exit(main())
