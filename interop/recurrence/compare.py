"""Random repeating tasks, their occurrences compared with python-dateutil's.

Usage: compare.py BASE_URL TOKEN CASES SEED

For each case: a random rule of the subset the service accepts (FREQ DAILY/WEEKLY/MONTHLY/
YEARLY, INTERVAL, BYDAY with ordinals in MONTHLY/YEARLY, BYMONTHDAY, BYMONTH, COUNT or UNTIL),
a random start in a random IANA zone. dateutil gives the rule's first occurrences; the first is
the task's due date. The task is created over HTTP and completed up to four times; after each
completion the service's due date must be dateutil's next occurrence, or, when dateutil has
none left (COUNT, UNTIL), the task must be completed for real.

Last line: "recurrence: N passed, M failed" (cases). Exit status 1 if any case failed.
"""

import itertools
import json
import random
import sys
import urllib.request
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

# Zones with daylight saving in both hemispheres, half-hour and 45-minute offsets, a 30-minute
# change (Lord Howe), and none. Left out: zones whose clocks change at midnight (Santiago,
# Havana), where the service's evaluator and dateutil read a skipped midnight differently
# (docs/subtasks-and-repeating-tasks.md).
ZONES = [
    "UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Tokyo", "America/St_Johns",
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
COMPLETIONS = 4


def random_rule(rng):
    freq = rng.choice(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
    parts = [f"FREQ={freq}"]
    if rng.random() < 0.4:
        parts.append(f"INTERVAL={rng.randint(2, 4)}")
    if freq == "WEEKLY" and rng.random() < 0.6:
        parts.append("BYDAY=" + ",".join(rng.sample(DAYS, rng.randint(1, 3))))
    if freq in ("MONTHLY", "YEARLY"):
        choice = rng.random()
        if choice < 0.35:
            days = [rng.choice([1, 2, 3, 4, -1, -2]) for _ in range(rng.randint(1, 2))]
            parts.append("BYDAY=" + ",".join(f"{n}{rng.choice(DAYS)}" for n in days))
        elif choice < 0.7:
            days = sorted({rng.choice([1, 5, 15, 28, 29, 30, 31, -1, -2]) for _ in range(2)})
            parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
        elif choice < 0.8:
            parts.append("BYDAY=" + ",".join(rng.sample(DAYS, rng.randint(1, 2))))
    if freq == "YEARLY" and rng.random() < 0.6:
        parts.append("BYMONTH=" + ",".join(map(str, sorted(rng.sample(range(1, 13), 2)))))
    if freq == "DAILY" and rng.random() < 0.2:
        parts.append(f"BYMONTH={rng.randint(1, 12)}")
    return parts


def random_case(rng):
    """A rule, a zone and the rule's first occurrences; None when the rule has none."""
    zone = ZoneInfo(rng.choice(ZONES))
    start = datetime(2021, 1, 1) + timedelta(
        days=rng.randint(0, 365 * 8), minutes=rng.randint(0, 24 * 60 - 1)
    )
    parts = random_rule(rng)
    end = rng.random()
    if end < 0.3:
        parts.append(f"COUNT={rng.randint(1, 4)}")
    first = list(itertools.islice(rrulestr(";".join(parts), dtstart=start.replace(tzinfo=zone)), 1))
    if not first:
        return None
    # The due date is an instant: the rule starts at its wall time as the zone reads it.
    due = first[0].astimezone(timezone.utc)
    dtstart = due.astimezone(zone)
    if 0.3 <= end < 0.6:
        until = due + timedelta(days=rng.randint(0, 400), minutes=rng.randint(0, 1440))
        parts.append("UNTIL=" + until.strftime("%Y%m%dT%H%M%SZ"))
    rule = ";".join(parts)
    occurrences = list(itertools.islice(rrulestr(rule, dtstart=dtstart), COMPLETIONS + 1))
    return rule, zone.key, due, occurrences


def utc(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def call(base, token, method, path, body):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def check(base, token, case):
    """None when the service agrees; otherwise what differed."""
    rule, zone, due, occurrences = case
    status, task = call(base, token, "POST", "/api/tasks", {
        "title": rule,
        "due_at": utc(due),
        "recurrence": {"rrule": rule, "time_zone": zone},
    })
    if status != 201:
        return f"create: {status} {task}"
    if task["due_at"] != utc(occurrences[0]):
        return f"created due {task['due_at']}, dateutil's first {utc(occurrences[0])}"
    for done in range(1, COMPLETIONS + 1):
        status, task = call(base, token, "PATCH", f"/api/tasks/{task['id']}",
                            {"status": "completed"})
        if status != 200:
            return f"completion {done}: {status} {task}"
        if done < len(occurrences):
            want = utc(occurrences[done])
            if task["status"] != "pending" or task["due_at"] != want:
                return (f"after completion {done}: {task['status']} due {task['due_at']}, "
                        f"dateutil's next {want}")
        else:
            if task["status"] != "completed":
                return (f"after completion {done}: still {task['status']} due "
                        f"{task['due_at']}, dateutil has no more occurrences")
            return None
    return None


def main():
    base, token, cases, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    passed = failed = 0
    while passed + failed < cases:
        case = random_case(rng)
        if case is None:
            continue
        problem = check(base, token, case)
        if problem is None:
            passed += 1
        else:
            failed += 1
            rule, zone, due, _ = case
            print(f"FAIL {rule} in {zone} from {utc(due)}: {problem}")
    print(f"recurrence: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
