#!/usr/bin/env python3
"""Turns bench/run.sh's raw numbers into the markdown tables.

Usage: report.py RESULTS_TSV STARTUP_TSV HEADER_TEXT_FILE
RESULTS_TSV has one row per step (column names on its first line), STARTUP_TSV one row per
backend: backend, median ms, samples.
"""
import csv
import sys

TOLERANCE = 0.20  # completed × mean latency may differ from connections × duration by this


def ms(us):
    return f"{int(us) / 1000:.2f}"


def errors(row):
    kinds = ["connect", "read", "write", "status", "timeout"]
    counts = {k: int(row[k]) for k in kinds}
    total = sum(counts.values())
    detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return f"{total} ({detail})" if total else "0"


def check(row):
    """Completed requests × mean latency (the time requests were in flight and then answered)
    should fill connections × duration in a closed loop: a load generator that silently drops
    requests that never complete, or cannot keep its connections busy, leaves a gap."""
    busy = float(row["busy_us"])
    available = int(row["conns"]) * int(row["duration_us"])
    ratio = busy / available if available else 0.0
    untimed = int(row["requests"]) - int(row["timed"])
    ok = abs(ratio - 1) <= TOLERANCE and untimed == 0
    verdict = "ok" if ok else "**FLAG**"
    note = f", {untimed} untimed" if untimed else ""
    if int(row["listen_drops"]):
        note += f", {row['listen_drops']} SYNs dropped"
    return f"{verdict} {ratio:.2f}{note}"


def table(rows, with_ceiling):
    head = ["operation", "conns", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"]
    if with_ceiling:
        head += ["ceiling req/s", "service/ceiling"]
    head += ["peak RSS MiB", "check"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        rps = int(r["requests"]) / (int(r["duration_us"]) / 1e6)
        op = r["op"] + (" (EdDSA)" if r["auth"] == "eddsa" else "")
        cells = [op, r["conns"], f"{rps:,.0f}", ms(r["p50_us"]), ms(r["p95_us"]),
                 ms(r["p99_us"]), errors(r)]
        if with_ceiling:
            tps = float(r["ceiling_tps"] or 0)
            ceiling = f"{tps:,.0f}"
            if r["ceiling_clients"] != r["conns"]:
                ceiling += f" ({r['ceiling_clients']} clients)"
            if int(r["ceiling_failed"] or 0):
                ceiling += f" ({r['ceiling_failed']} failed)"
            cells += [ceiling, f"{rps / tps:.2f}" if tps else "n/a"]
        cells += [f"{int(r['rss_kib']) / 1024:.1f}", check(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    results_path, startup_path, header_path = sys.argv[1:4]
    with open(results_path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    startup = {}
    with open(startup_path) as f:
        for line in f:
            backend, median, samples = line.split()
            startup[backend] = (median, samples.replace(",", ", "))
    with open(header_path) as f:
        out = [f.read().rstrip()]
    for backend, title in [("postgres", "PostgreSQL"), ("sqlite", "SQLite")]:
        mine = [r for r in rows if r["backend"] == backend]
        if not mine and backend not in startup:
            continue
        out += ["", f"## {title}", ""]
        if mine:
            out.append(table(mine, with_ceiling=backend == "postgres"))
        if backend in startup:
            median, samples = startup[backend]
            n = samples.count(",") + 1
            out += ["", f"Start-up to the first 200 on `/health`: median **{median} ms** "
                        f"({n} starts: {samples} ms)."]
    out += ["", "- **req/s, errors**: wrk (closed loop, keep-alive); errors are connect/read/write "
                "failures, non-2xx/3xx answers and requests over wrk's timeout.",
            "- **p50/p95/p99**: each request's own time, from sending it to its response "
            "(paired by `X-Request-Id`), not wrk's printed numbers, which wrk \"corrects\" for "
            "coordinated omission with made-up samples (they are in `latest.log`).",
            "- **ceiling**: `pgbench -M prepared -j 2` on the exact SQL the service sends, same "
            "client count (capped below PostgreSQL's `max_connections`, shown when capped), "
            "straight to PostgreSQL: what the database alone does on this machine.",
            "- **peak RSS**: the service's VmHWM during the step (reset before it).",
            f"- **check**: completed requests × mean latency ÷ (connections × duration); "
            f"near 1 when every connection was always busy with a request that completed. "
            f"**FLAG** when off by more than {TOLERANCE:.0%}: the load generator dropped or "
            f"never finished requests (timeouts, failed connections), or was itself starved "
            f"of CPU, and the row is not to be trusted. \"SYNs dropped\": connection attempts "
            f"the kernel dropped because a listen queue was full (counted machine-wide); "
            f"each waits about 1 s before its retry."]
    print("\n".join(out))


if __name__ == "__main__":
    main()
