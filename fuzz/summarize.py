"""Summarise one schemathesis run from its NDJSON event stream.

Usage: summarize.py EVENTS.ndjson OPENAPI.json [UNREACHABLE_CODES [UNREACHABLE_FILE]]

Prints
  * every failed check, once per (operation, check, status code, error detail), with a curl command that
    reproduces it (the bearer token left as $TOKEN) and the response the service gave;
  * for every documented operation, which documented status codes schemathesis observed
    and which it did not.

UNREACHABLE_CODES (space-separated, default "413 503") are documented codes that
schema-driven generation cannot provoke: a body over 64 KiB breaks every maxLength, and a
503 needs the database to go away. UNREACHABLE_FILE (unreachable.txt) adds codes per
operation, each with its reason. Missing them is reported, not counted as a failure.

Exit status: 0 when every other documented code was observed, 1 otherwise. (Failed checks
are schemathesis's own exit status; this script only reports them.)
"""

from __future__ import annotations

import base64
import json
import shlex
import sys
from collections import defaultdict

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def decode(body: object) -> str | None:
    if body is None:
        return None
    if isinstance(body, dict) and "$base64" in body:
        return base64.b64decode(body["$base64"]).decode("utf-8", "replace")
    if isinstance(body, dict) and "string" in body:
        return body["string"]
    return str(body)


def curl(request: dict) -> str:
    parts = ["curl", "-sS", "-i", "-X", request["method"]]
    for name, values in (request.get("headers") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            if name.lower() == "authorization":
                parts += ["-H", '"Authorization: Bearer $TOKEN"']
            else:
                parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = decode(request.get("body"))
    if body is not None:
        parts += ["--data-binary", shlex.quote(body)]
    parts.append(shlex.quote(request["uri"]))
    return " ".join(parts)


def documented(openapi: dict) -> dict[tuple[str, str], set[str]]:
    result = {}
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                result[(method.upper(), path)] = {code for code in operation.get("responses", {}) if code != "default"}
    return result


def unreachable_by_operation(path: str | None) -> dict[tuple[str, str], set[str]]:
    """`METHOD PATH CODE...  # reason` lines; `* *` for every operation."""
    result: dict[tuple[str, str], set[str]] = defaultdict(set)
    if not path:
        return result
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if len(words) >= 3:
                result[(words[0], words[1])].update(words[2:])
    return result


def main() -> int:
    events_path, openapi_path = sys.argv[1], sys.argv[2]
    unreachable = set((sys.argv[3] if len(sys.argv) > 3 else "413 503").split())
    by_operation = unreachable_by_operation(sys.argv[4] if len(sys.argv) > 4 else None)
    with open(openapi_path, encoding="utf-8") as f:
        docs = documented(json.load(f))

    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    failures: dict[tuple[str, str, int | None, str | None], dict] = {}
    with open(events_path, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            scenario = event.get("ScenarioFinished")
            if not scenario:
                continue
            recorder = scenario.get("recorder") or {}
            cases = recorder.get("cases", {})
            interactions = recorder.get("interactions", {})
            for case_id, interaction in interactions.items():
                case = cases.get(case_id, {}).get("value", {})
                response = interaction.get("response")
                if response and "method" in case:
                    seen[(case["method"].upper(), case["path"])].add(str(response["status_code"]))
            for case_id, checks in recorder.get("checks", {}).items():
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    info = (check.get("failure_info") or {}).get("failure") or {}
                    interaction = interactions.get(case_id) or {}
                    response = interaction.get("response") or {}
                    status = response.get("status_code")
                    try:
                        detail = json.loads(decode(response.get("content")) or "null")["detail"]
                    except (ValueError, TypeError, KeyError):
                        detail = None
                    key = (info.get("operation") or recorder.get("label", "?"), check["name"], status, detail)
                    if key not in failures:
                        failures[key] = {"info": info, "interaction": interaction, "phase": scenario.get("phase")}

    print(f"# failed checks: {len(failures)} distinct (operation, check, status, error detail)")
    for (operation, check, status, _), found in sorted(failures.items(), key=lambda kv: str(kv[0])):
        info, interaction = found["info"], found["interaction"]
        print(f"#  - {operation} | {check} ({info.get('code', '?')}: {info.get('title', '')}) | "
              f"phase {found['phase']} | HTTP {status}")
        if interaction.get("request"):
            print(f"#      {curl(interaction['request'])}")
        body = decode((interaction.get("response") or {}).get("content"))
        if body is not None:
            print(f"#      -> {body[:400]}")

    gaps = 0
    print("# documented status codes (observed / not observed):")
    for (method, path), codes in sorted(docs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if (method, path) not in seen:
            # Switched off in schemathesis.toml (the event stream never ends): nothing to count.
            print(f"#   {method:6} {path:24} not fuzzed")
            continue
        got = codes & seen.get((method, path), set())
        missing = codes - got
        exempt = unreachable | by_operation[("*", "*")] | by_operation[(method, path)]
        expected_missing = missing & exempt
        unexpected_missing = missing - exempt
        gaps += len(unexpected_missing)
        line = f"#   {method:6} {path:24} observed {' '.join(sorted(got)) or '-'}"
        if unexpected_missing:
            line += f"; NOT OBSERVED {' '.join(sorted(unexpected_missing))}"
        if expected_missing:
            line += f"; not reachable by fuzzing {' '.join(sorted(expected_missing))}"
        undocumented = seen.get((method, path), set()) - codes
        if undocumented:
            line += f"; undocumented seen {' '.join(sorted(undocumented))}"
        print(line)
    if gaps:
        print(f"# {gaps} documented status code(s) never observed")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
