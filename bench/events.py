#!/usr/bin/env python3
"""The live-events benchmark (bench/run.sh's events step): STREAMS open event streams spread
over USERS users and two instances, a writer creating tasks at a steady RATE through both,
and for every event that reaches a stream the delay from the write's request to the event's
arrival. Then, with the streams still open, COMMAND (wrk, plain creates) runs, so that the
writer's req/s can be set against the same command run without streams.

usage: events.py URL_A PID_A URL_B PID_B TOKENS_FILE STREAMS RATE SECONDS [COMMAND...]
Prints one line of key=value results (latencies in ms, RSS in KiB), then COMMAND's output.
Standard library only.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Bench:
    def __init__(self, urls: list[str], tokens: list[str]):
        self.urls, self.tokens = urls, tokens
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.opened = 0
        self.errors = 0
        self.measuring = True

    async def stream(self, url: str, token: str, ready: asyncio.Event) -> None:
        u = urllib.parse.urlsplit(url)
        reader, writer = await asyncio.open_connection(u.hostname, u.port, limit=1 << 20)
        # HTTP/1.0: the body ends with the connection, no chunked framing to undo.
        writer.write(f"GET /api/tasks/events HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            self.errors += 1
            ready.set()
            return
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.opened += 1
        ready.set()
        while line := await reader.readline():
            if not self.measuring:
                # Only drained while the command runs: the client's own CPU is the service's
                # competitor on this machine, and parsing would be most of it.
                while await reader.read(1 << 16):
                    pass
                return
            if line.startswith(b"data: "):
                arrived = time.monotonic()
                title = json.loads(line[6:]).get("task", {}).get("title", "")
                sent = self.sent.get(title)
                if sent is not None:
                    self.latencies.append(arrived - sent)

    async def writer(self, url: str, rate: float, seconds: float) -> int:
        u = urllib.parse.urlsplit(url)
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        done, n = 0, 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            n += 1
            title = f"live {n}"
            token = self.tokens[n % len(self.tokens)]
            body = json.dumps({"title": title})
            self.sent[title] = time.monotonic()
            writer.write(
                f"POST /api/tasks HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done += b" 201 " in status
            await asyncio.sleep(max(0.0, n / rate - (time.monotonic() - start)))
        writer.close()
        return done


async def main() -> None:
    url_a, pid_a, url_b, pid_b, tokens_file, streams, rate, seconds, *command = sys.argv[1:]
    pids = [int(pid_a), int(pid_b)]
    with open(tokens_file, encoding="ascii") as f:
        tokens = f.read().split()
    bench = Bench([url_a, url_b], tokens)
    rss_before = [rss_kib(pid) for pid in pids]
    tasks = []
    for i in range(int(streams)):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(bench.stream(bench.urls[i % 2], tokens[i % len(tokens)], ready)))
        await ready.wait()
    await asyncio.sleep(1)
    rss_after = [rss_kib(pid) for pid in pids]
    per_stream = (sum(rss_after) - sum(rss_before)) / max(bench.opened, 1)
    # One writer per instance, each at half the rate: writes land on both.
    written = await asyncio.gather(
        *(bench.writer(url, float(rate) / 2, float(seconds)) for url in bench.urls)
    )
    await asyncio.sleep(2)  # the last writes' events
    bench.measuring = False
    expected = sum(written) * int(streams) / len(tokens)
    lat = [x * 1000 for x in bench.latencies]
    print(
        f"opened={bench.opened} refused={bench.errors} writes={sum(written)} "
        f"deliveries={len(lat)} expected={expected:.0f} p50_ms={pct(lat, 50):.1f} "
        f"p99_ms={pct(lat, 99):.1f} max_ms={max(lat, default=float('nan')):.1f} "
        f"rss_before_kib={sum(rss_before)} rss_after_kib={sum(rss_after)} "
        f"rss_per_stream_kib={per_stream:.1f}",
        flush=True,
    )
    if command:
        result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
        print(result.stdout, flush=True)
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
