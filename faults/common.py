"""Shared helpers for the fault-injection clients (Python 3.11 standard library only).

The shell wrappers (outage.sh, pool.sh, pgbouncer.sh) start the cluster and the service with
lib.sh and pass everything in the environment: SVC_URL, SVC_LOG, PGDATA_DIR, PG_PORT, PG_LOG,
PG_BIN, TODO_BIN, BETTER_AUTH_SECRET, FAULTS_TMP, FAULTS_RESULTS, DB_ACQUIRE_TIMEOUT_MS.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

ENV = os.environ
PG_BIN = ENV.get("PG_BIN", "/usr/lib/postgresql/15/bin")
FAILED = 0


def now() -> float:
    return time.monotonic()


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


# ------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Rec:
    """One request as the client saw it."""

    kind: str
    t0: float
    t1: float
    status: int  # 0 = no HTTP answer (connection error or client timeout)
    retry_after: str | None = None
    body: object = None
    json_ok: bool = False
    error: str | None = None
    task_id: int | None = None
    title: str | None = None
    request_id: str | None = None
    thread: int = 0
    wall0: float = 0.0  # time.time() at t0, to line up with the service's log timestamps

    @property
    def latency(self) -> float:
        return self.t1 - self.t0

    def is_problem_503(self) -> bool:
        """503 with the JSON error body and a Retry-After header."""
        return (
            self.status == 503
            and self.retry_after is not None
            and self.json_ok
            and isinstance(self.body, dict)
            and self.body.get("status_code") == 503
            and isinstance(self.body.get("detail"), str)
        )

    def describe(self) -> str:
        extra = f" error={self.error}" if self.error else ""
        body = json.dumps(self.body)[:160] if self.body is not None else ""
        return (
            f"{self.kind} status={self.status} latency={ms(self.latency)} "
            f"retry-after={self.retry_after} request-id={self.request_id} body={body}{extra}"
        )


class Client:
    """A keep-alive HTTP/1.1 client for one thread."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, kind: str, method: str, path: str, body: object = None, thread: int = 0) -> Rec:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        wall0, t0 = time.time(), now()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            t1 = now()
            rec = Rec(kind, t0, t1, resp.status, resp.getheader("Retry-After"), thread=thread,
                      request_id=resp.getheader("X-Request-Id"), wall0=wall0)
            attach_body(rec, raw)
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return rec
        except Exception as e:  # noqa: BLE001 - any transport failure is a result to record
            t1 = now()
            self.close()
            return Rec(kind, t0, t1, 0, error=f"{type(e).__name__}: {e}", thread=thread, wall0=wall0)


class AsyncClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: one event loop can drive hundreds
    of concurrent clients without the thread/GIL scheduling delays that distort latencies."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.token, self.timeout = token, timeout
        self.reader = self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def _exchange(self, method: str, path: str, data: bytes | None):
        import asyncio
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: application/json"]
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        if data is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (data or b""))
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, body

    async def request(self, kind: str, method: str, path: str, body: object = None, thread: int = 0) -> Rec:
        import asyncio
        data = json.dumps(body).encode() if body is not None else None
        wall0, t0 = time.time(), now()
        try:
            status, headers, raw = await asyncio.wait_for(self._exchange(method, path, data), self.timeout)
        except Exception as e:  # noqa: BLE001 - any transport failure is a result to record
            t1 = now()
            await self.close()
            return Rec(kind, t0, t1, 0, error=f"{type(e).__name__}: {e}", thread=thread, wall0=wall0)
        rec = Rec(kind, t0, now(), status, headers.get("retry-after"), thread=thread,
                  request_id=headers.get("x-request-id"), wall0=wall0)
        attach_body(rec, raw)
        return rec


def attach_body(rec: Rec, raw: bytes) -> None:
    """Keeps a response body on its record: parsed when it is JSON, else its first 200 bytes."""
    if not raw:
        return
    try:
        rec.body = json.loads(raw)
        rec.json_ok = True
    except ValueError:
        rec.body = raw[:200].decode(errors="replace")


def make_token(user: str) -> str:
    env = {
        "PATH": ENV["PATH"],
        "HOME": ENV.get("FAULTS_TMP", "/tmp"),
        "BETTER_AUTH_SECRET": ENV["BETTER_AUTH_SECRET"],
    }
    out = subprocess.run([ENV["TODO_BIN"], "token", user], env=env, cwd=ENV.get("FAULTS_TMP", "/tmp"),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Pollers:
    """`n` staggered pollers of one path, so that a slow probe does not leave gaps."""

    def __init__(self, base_url: str, path: str, interval: float = 0.2, n: int = 1):
        self.pollers = [Poller(base_url, path, interval, delay=i * interval / n) for i in range(n)]

    def start(self) -> None:
        for p in self.pollers:
            p.start()

    def stop(self) -> None:
        for p in self.pollers:
            p.stop_event.set()
        for p in self.pollers:
            p.join(15)

    @property
    def recs(self) -> list[Rec]:
        return sorted((r for p in self.pollers for r in p.recs), key=lambda r: r.t0)


class Poller(threading.Thread):
    """GETs one path every `interval` seconds until stopped; records every answer."""

    def __init__(self, base_url: str, path: str, interval: float = 0.2, delay: float = 0.0):
        super().__init__(daemon=True)
        self.delay = delay
        self.client = Client(base_url, timeout=10)
        self.path, self.interval = path, interval
        self.recs: list[Rec] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        self.stop_event.wait(self.delay)
        while not self.stop_event.is_set():
            self.recs.append(self.client.request(self.path, "GET", self.path))
            self.stop_event.wait(self.interval)
        self.client.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15)


# ------------------------------------------------------------------------------------------
# Database control (the private cluster only)


def pg_ctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", ENV["PGDATA_DIR"], *args]
    return subprocess.run(cmd, cwd=ENV["FAULTS_TMP"], capture_output=True, text=True, timeout=timeout)


def pg_ctl_popen(*args: str) -> subprocess.Popen:
    cmd = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", ENV["PGDATA_DIR"], *args]
    return subprocess.Popen(cmd, cwd=ENV["FAULTS_TMP"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def pg_isready() -> bool:
    r = subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", ENV["PG_PORT"],
                        "-t", "1"], capture_output=True)
    return r.returncode == 0


def psql(sql: str, db: str = "todo", timeout: float = 30) -> list[list[str]]:
    """Runs SQL as the superuser directly against the cluster; returns rows of strings."""
    cmd = [f"{PG_BIN}/psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           "-h", "127.0.0.1", "-p", ENV["PG_PORT"], "-U", "postgres", "-d", db, "-c", sql]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env={**ENV, "PGCONNECT_TIMEOUT": "5"})
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}")
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def service_log_lines(pattern: str, since_offset: int = 0) -> list[str]:
    path = ENV.get("SVC_LOG")
    if not path:
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(since_offset)
        return [line.rstrip("\n") for line in f if pattern in line]


def server_latencies(request_ids: list[str]) -> dict[str, float]:
    """Latency (s) the service itself logged for these request ids (`response ... latency_ms=`)."""
    return {k: v[0] for k, v in server_timings(request_ids).items()}


def server_timings(request_ids: list[str]) -> dict[str, tuple[float, float]]:
    """(latency s, wall-clock time of the response log line) the service logged per request id."""
    import datetime
    import re
    path = ENV.get("SVC_LOG")
    want = set(i for i in request_ids if i)
    found: dict[str, float] = {}
    if not path or not want:
        return found
    pat = re.compile(r"^(\S+).*request_id=([0-9A-Za-z_.:-]+).*latency_ms=([0-9.]+)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = pat.search(line)
            if m and m.group(2) in want:
                try:
                    wall = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
                except ValueError:
                    wall = 0.0
                found[m.group(2)] = (float(m.group(3)) / 1000, wall)
    return found


def explain_slow(recs: list[Rec], n: int = 3) -> str:
    """'client X ms / server Y ms' for the n slowest requests: tells client-side delays (GIL,
    scheduling) from the service's own."""
    slow = sorted(recs, key=lambda r: r.latency, reverse=True)[:n]
    server = server_timings([r.request_id for r in slow if r.request_id])
    parts = []
    for r in slow:
        sv = server.get(r.request_id or "")
        text = f"{r.kind} {r.status} client {ms(r.latency)} / server {ms(sv[0] if sv else None)}"
        if sv and r.wall0:
            # When the handler started and answered, relative to the client's send.
            text += (f" (handler ran {ms(sv[1] - sv[0] - r.wall0)}..{ms(sv[1] - r.wall0)} after send)")
        parts.append(text)
    return "; ".join(parts)


def service_log_size() -> int:
    path = ENV.get("SVC_LOG")
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def dump_records(name: str, recs: list[Rec], origin: float, events: dict[str, float] | None = None) -> None:
    """With FAULTS_RECORDS_DIR set, writes one CSV per run (times in s relative to `origin`)."""
    import csv
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


@dataclass
class Summary:
    values: list[float] = field(default_factory=list)

    def add(self, v: float | None) -> None:
        if v is not None:
            self.values.append(v)
