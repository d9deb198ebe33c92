"""What the service under test wrote to its log ($SVC_LOG): lines matching a pattern, and the
latency it logged per request id, to tell a slow client from a slow service.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import TYPE_CHECKING

from results import ms

if TYPE_CHECKING:
    from http_client import Rec

ENV = os.environ


def service_log_lines(pattern: str, since_offset: int = 0) -> list[str]:
    path = ENV.get("SVC_LOG")
    if not path:
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(since_offset)
        return [line.rstrip("\n") for line in f if pattern in line]


def server_timings(request_ids: list[str]) -> dict[str, tuple[float, float]]:
    """(latency s, wall-clock time of the response log line) the service logged per request id."""
    path = ENV.get("SVC_LOG")
    want = set(i for i in request_ids if i)
    found: dict[str, tuple[float, float]] = {}
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
