"""caldav-server-tester's own command line (same options), made to run every check.

In caldav-server-tester 1.7.0 a check that cannot record one of its declared features ends
the whole run with an AssertionError ("CheckX failed to check declared features: ..."): on a
server that refuses VEVENTs, CheckDuplicateEvent does, and every check after it in the
alphabet is never run, its features then reading as their defaults ("full") in the report.
Here such a check has the features it did not record reported "unknown" (with the error as
the behaviour) and the run goes on; nothing else changes. The checks that did so are listed
on stderr.

Usage: tester.py [caldav-server-tester options]
"""

import logging
import sys

from caldav_server_tester.caldav_server_tester import check_server_compatibility
from caldav_server_tester.checks_base import Check

original_run_check = Check.run_check
crashed = []


def run_check(self, only_once=True):
    if only_once and type(self) in self.checker._checks_run:
        return None
    try:
        return original_run_check(self, only_once=only_once)
    except AssertionError as error:
        name = type(self).__name__
        logging.error("%s ended with %s; its unrecorded features are reported unknown", name, error)
        crashed.append(name)
        recorded = set(self.checker._features_checked.dotted_feature_set_list().keys())
        for feature in self.features_to_be_checked:
            if feature not in recorded:
                self.set_feature(feature, {"support": "unknown",
                                           "behaviour": f"the check ended with: {error}"})
        self.checker._checks_run.add(type(self))
        return None


Check.run_check = run_check

if __name__ == "__main__":
    try:
        check_server_compatibility(prog_name="caldav-server-tester")
    finally:
        if crashed:
            print(f"# checks that ended early: {', '.join(crashed)}", file=sys.stderr)
