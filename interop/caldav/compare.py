"""Compares a caldav-server-tester report (--format json) with the expected outcomes.

Usage:
  compare.py EXPECTED.json REPORT.json   one line per feature whose outcome differs from the
                                         expected one; last line "tester: N passed, M failed"
                                         (features); exit status 1 on any difference
  compare.py --write REPORT.json         prints an expectations file with every check's
                                         features at the outcomes of REPORT.json

The report lists features, compacted (a feature whose sub-features agree stands for them, and
one at its default is left out), so both sides are read through caldav's FeatureSet, which
resolves a feature through its parents and defaults. Every check of the installed tester is
compared, with each feature it declares; a feature the report has that no check declares (and
that is not a parent of declared ones) is compared too. An expected outcome can be a list of accepted outcomes (for a flaky one).
"""

import inspect
import json
import sys

from caldav.compatibility_hints import FeatureSet
from caldav_server_tester import checks as checks_module
from caldav_server_tester.checks_base import Check

try:
    from importlib.metadata import version

    TESTER_VERSION = version("caldav-server-tester")
except Exception:
    TESTER_VERSION = "unknown"


def declared():
    """{check name: sorted features it declares}, for every check of the installed tester."""
    out = {}
    for name, cls in inspect.getmembers(checks_module, inspect.isclass):
        if cls.__module__ == checks_module.__name__ and issubclass(cls, Check) and cls is not Check:
            out[name] = sorted(getattr(cls, "features_to_be_checked", ()))
    return out


def outcome(features, feature):
    try:
        return FeatureSet(features).is_supported(feature, str)
    except Exception as error:  # a feature this caldav version does not know
        return f"error: {error!r}"


def behaviour(features, feature):
    try:
        info = FeatureSet(features).is_supported(feature, dict)
    except Exception:
        return ""
    text = info.get("behaviour") or info.get("description") or "" if isinstance(info, dict) else ""
    return f" ({text})" if text else ""


def observed_table(report):
    features = report["features"]
    table = {}
    covered = set()
    for check, names in declared().items():
        table[check] = {name: outcome(features, name) for name in names}
        covered.update(names)
    # A parent the report's compaction made of agreeing sub-features is not a feature of its own.
    extra = {name: outcome(features, name) for name in features
             if name not in covered and not any(c.startswith(name + ".") for c in covered)}
    if extra:
        table["(not declared by any check)"] = extra
    return table


def write(report_path):
    report = json.load(open(report_path))
    expected = {
        "_about": (
            "Expected outcomes of caldav-server-tester against todo-backend's /dav/, per check "
            "and feature (full, unsupported, fragile, ungraceful, broken, unknown, or an "
            "observation's value); a list accepts any of its outcomes. Made with "
            "`compare.py --write REPORT.json`, then edited: see README.md."
        ),
        "caldav-server-tester": TESTER_VERSION,
        "checks": observed_table(report),
    }
    json.dump(expected, sys.stdout, indent=2, sort_keys=False)
    print()


def compare(expected_path, report_path):
    try:
        expected = json.load(open(expected_path))
        report = json.load(open(report_path))
        report["features"]
    except Exception as error:
        print(f"not ok - reading {expected_path} and {report_path}: {error!r}")
        print("tester: 0 passed, 1 failed")
        return False
    if expected.get("caldav-server-tester") not in (None, TESTER_VERSION):
        print(f"# the expectations are for caldav-server-tester {expected['caldav-server-tester']}, "
              f"this is {TESTER_VERSION}")
    observed = observed_table(report)
    passed = failed = 0
    for check in sorted(set(expected["checks"]) | set(observed)):
        want_features = expected["checks"].get(check, {})
        got_features = observed.get(check, {})
        for feature in sorted(set(want_features) | set(got_features)):
            want = want_features.get(feature)
            got = got_features.get(feature)
            accepted = want if isinstance(want, list) else [want]
            if got is not None and got in accepted:
                passed += 1
                continue
            failed += 1
            if want is None:
                print(f"not ok - {check}: {feature} is {got}, not in the expectations")
            elif got is None:
                print(f"not ok - {check}: {feature} expected {want}, not checked by this tester")
            else:
                print(f"not ok - {check}: {feature} expected {want}, got {got}"
                      f"{behaviour(report['features'], feature)}")
    print(f"tester: {passed} passed, {failed} failed")
    return failed == 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write(sys.argv[2])
        return
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if compare(sys.argv[1], sys.argv[2]) else 1)


if __name__ == "__main__":
    main()
