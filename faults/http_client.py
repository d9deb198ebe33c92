"""HTTP clients of the service under test (Python 3.11 standard library only): one request's
record (Rec), a keep-alive client per thread (Client), an asyncio one for hundreds of concurrent
clients (AsyncClient), background pollers of one path (Pollers), and bearer tokens minted with
the service binary (make_token: $TODO_BIN, $BETTER_AUTH_SECRET, $FAULTS_TMP).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass

from results import ms

ENV = os.environ


def now() -> float:
    return time.monotonic()


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

    def request(self, kind: str, method: str, path: str, body: object = None, thread: int = 0,
                extra: dict[str, str] | None = None) -> Rec:
        headers = {"Accept": "application/json", **(extra or {})}
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
