#!/usr/bin/env python3
"""Turns bench/run.sh's raw numbers into the markdown tables.

Usage: report.py RESULTS_TSV STARTUP_TSV HEADER_TEXT_FILE
       report.py --events EVENTS_TXT
RESULTS_TSV has one row per step (column names on its first line), STARTUP_TSV one row per
backend: backend, median ms, samples. EVENTS_TXT has one line per events run: mode, streams,
users, rate, then key=value fields from events.py and wrk's BENCH lines (baseline:, loaded:).
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


CEILING_SPREAD = 1.25  # the two ceiling figures of a row may differ by this factor


def cpu_per_request(row):
    """The service's CPU time over the step (user + system, from /proc) per request served."""
    requests = int(row["requests"])
    return f"{int(row['cpu_us']) / requests:.1f}" if requests else "n/a"


def ceiling_cell(row):
    before, after = float(row["ceiling_before"] or 0), float(row["ceiling_after"] or 0)
    cell = f"{float(row['ceiling_tps'] or 0):,.0f} ({before:,.0f} / {after:,.0f})"
    if row["ceiling_clients"] != row["conns"]:
        cell += f" ({row['ceiling_clients']} clients)"
    if int(row["ceiling_failed"] or 0):
        cell += f" ({row['ceiling_failed']} failed)"
    if min(before, after) > 0 and max(before, after) / min(before, after) > CEILING_SPREAD:
        cell += " **FLAG**"
    return cell


def table(rows, with_ceiling):
    head = ["operation", "conns", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
            "CPU µs/req"]
    if with_ceiling:
        head += ["ceiling tps, mean (before / after)", "service/ceiling"]
    head += ["peak RSS MiB", "check"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        rps = int(r["requests"]) / (int(r["duration_us"]) / 1e6)
        op = r["op"] + (" (EdDSA)" if r["auth"] == "eddsa" else "")
        cells = [op, r["conns"], f"{rps:,.0f}", ms(r["p50_us"]), ms(r["p95_us"]),
                 ms(r["p99_us"]), errors(r), cpu_per_request(r)]
        if with_ceiling:
            tps = float(r["ceiling_tps"] or 0)
            cells += [ceiling_cell(r), f"{rps / tps:.2f}" if tps else "n/a"]
        cells += [f"{int(r['rss_kib']) / 1024:.1f}", check(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fields(text):
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def wrk_rps(text):
    numbers = fields(text)
    return int(numbers["requests"]) / int(numbers["duration_us"]) * 1e6 if numbers else 0.0


def events(path):
    rows = []
    with open(path) as f:
        for line in f:
            head, _, rest = line.partition(" baseline:")
            baseline, _, loaded = rest.partition(" loaded:")
            mode, streams, users, rate, *measured = head.split()
            got = fields(" ".join(measured))
            base, load = wrk_rps(baseline), wrk_rps(loaded)
            loaded_fields = fields(loaded)
            writes = int(got.get("writes", 0)) + int(loaded_fields.get("requests", 0))
            reads = [int(got.get(f"feed_{outcome}", 0)) for outcome in ("read", "shared", "skipped")]
            per_write = " / ".join(f"{n / writes:.2f}" if writes else "-" for n in reads)
            rows.append(
                f"| {'LISTEN + poll' if mode == 'listen' else 'poll only'} | {got.get('opened')} of "
                f"{streams} ({users} users, 2 instances) | {rate}/s: {got.get('writes')} writes, "
                f"{got.get('deliveries')} of {got.get('expected')} deliveries | "
                f"{got.get('p50_ms')} / {got.get('p99_ms')} / {got.get('max_ms')} | "
                f"{float(got.get('rss_per_stream_kib', 'nan')):.1f} KiB | {base:.0f} → {load:.0f} "
                f"({load / base if base else float('nan'):.2f}) | {per_write} |")
    if not rows:
        return ""
    return "\n".join([
        "", "## Live events (PostgreSQL)", "",
        "| fan-out | streams | writer | delivery p50 / p99 / max ms | RSS per stream | "
        "create req/s, no stream → streams open (ratio) | feed reads per write: database / "
        "shared / skipped |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "- **delivery**: from sending a create to its event arriving on a stream of that user "
        "(every stream of the user counts once); writes through both instances, streams on both.",
        "- **RSS per stream**: both instances' RSS after opening the streams minus before, "
        "divided by the streams.",
        "- **create req/s**: wrk's plain create, 10 connections, against one instance: with no "
        "stream open, then with the streams open and woken by every write.",
        "- **feed reads per write**: the streams' reads of the feed on both instances "
        "(`events_feed_reads_total`: from the database, another stream's page, or none needed), "
        "over the whole step (the streams' first reads too), per write (the writer's and wrk's).",
    ])


def features(path):
    rounds = {}
    with open(path) as f:
        for line in f:
            variant, _round, op, conns, *numbers = line.split()
            got = fields(" ".join(numbers))
            rps = int(got["requests"]) / int(got["duration_us"]) * 1e6
            cpu = int(got["cpu_us"]) / int(got["requests"]) if int(got["requests"]) else 0.0
            rounds.setdefault((variant, op, conns), []).append((rps, int(got["p99_us"]), cpu))
    if not rounds:
        return ""
    def median(values):
        ordered = sorted(values)
        return ordered[len(ordered) // 2]
    base = {(op, conns): median([r for r, _, _ in v]) for (variant, op, conns), v in rounds.items() if variant == "neither"}
    names = {"neither": "neither", "metrics": "metrics", "limiter": "metrics + in-process limiter",
             "redis": "metrics + Redis limiter"}
    rows = []
    for (variant, op, conns), values in rounds.items():
        rps = median([r for r, _, _ in values])
        p99 = median([p for _, p, _ in values])
        cpu = median([c for _, _, c in values])
        ratio = rps / base[(op, conns)] if base.get((op, conns)) else float("nan")
        rows.append(f"| {op} c={conns} | {names.get(variant, variant)} | {rps:.0f} "
                    f"({', '.join(f'{r:.0f}' for r, _, _ in values)}) | {ms(p99)} | "
                    f"{cpu:.1f} | {ratio:.2f} |")
    return "\n".join([
        "", "## What metrics and rate limits cost (PostgreSQL)", "",
        "| step | with | req/s, median (rounds) | p99 ms | CPU µs/req, median | ratio to neither |",
        "|---|---|---|---|---|---|", *rows, "",
        "- Rounds alternate the four set-ups; limits far above the load, so every request is "
        "counted and none refused; the Redis limiter does one script call per request.",
    ])


def main():
    if sys.argv[1] == "--features":
        print(features(sys.argv[2]))
        return
    if sys.argv[1] == "--events":
        print(events(sys.argv[2]))
        return
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
            "- **CPU µs/req**: the service process's CPU time (user + system, from "
            "`/proc/PID/stat`) over the measured step, divided by the requests it served.",
            f"- **ceiling … (before / after)**: pgbench right before the service's step and "
            f"right after it; the ratio uses their mean, and **FLAG** marks a row whose two "
            f"figures differ by more than {CEILING_SPREAD - 1:.0%} (the machine changed under "
            f"the step).",
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
