"""Test-only pytest plugin: a bug in a reporting hook after VC_CRASH_AFTER reports (INTERNALERROR)."""
import os

_seen = [0]


def pytest_runtest_logreport(report):
    if report.when == "call":
        _seen[0] += 1
        if _seen[0] >= int(os.environ.get("VC_CRASH_AFTER", "5")):
            raise RuntimeError("simulated harness bug in a reporting hook")
