"""Results of the fault-injection clients: the [PASS]/[FAIL]/[INFO] lines (also appended to
$FAULTS_RESULTS, which run.sh counts), the number of failures so far, the latency figures in
those lines, and with $FAULTS_RECORDS_DIR set one CSV per run with every request.
"""

from __future__ import annotations

import csv
import os
import statistics
import time


ENV = os.environ
FAILED = 0  # FAIL lines reported by this process (see failures())


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def report(kind: str, name: str, detail: str) -> None:
    """One result line: [PASS]/[FAIL]/[INFO] name: detail (also appended to FAULTS_RESULTS)."""
    global FAILED
    line = f"[{kind}] {name}: {detail}"
    print(line, flush=True)
    path = ENV.get("FAULTS_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    if kind == "FAIL":
        FAILED += 1


def check(ok: bool, name: str, detail: str) -> bool:
    report("PASS" if ok else "FAIL", name, detail)
    return ok


def failures() -> int:
    """How many FAIL lines this process has reported."""
    return FAILED


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def dump_records(name: str, recs: list, origin: float, events: dict[str, float] | None = None) -> None:
    """With FAULTS_RECORDS_DIR set, writes one CSV per run (times in s relative to `origin`)."""
    out_dir = ENV.get("FAULTS_RECORDS_DIR")
    if not out_dir:
        return
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name.replace("/", "-").replace("#", "-") + ".csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for k, v in sorted((events or {}).items(), key=lambda kv: kv[1]):
            w.writerow(["#event", k, f"{v - origin:.4f}"])
        w.writerow(["t_start", "t_end", "latency_ms", "kind", "status", "retry_after", "task_id",
                    "request_id", "error"])
        for r in recs:
            w.writerow([f"{r.t0 - origin:.4f}", f"{r.t1 - origin:.4f}", f"{r.latency * 1000:.1f}", r.kind,
                        r.status, r.retry_after or "", r.task_id if r.task_id is not None else "",
                        r.request_id or "", r.error or ""])
