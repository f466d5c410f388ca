"""A pytest plugin the bench loads into the runs it times (`-p vfio_conform.bench.phasetimes`): each
test's setup + call + teardown seconds (a fixture's save of a device state is in its test's setup)
and the CPU seconds its process spent meanwhile (a loaded shared host stretches the wall time, much
less the CPU time), and the test during which each of WATCHED was first imported (a one-off cost its
seconds include), written as JSON {"tests": {nodeid: [seconds, cpu seconds]}, "imported_by":
{module: nodeid}} to the file $VFIO_CONFORM_BENCH_PHASES names when the session ends (a run without
xdist workers)."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

ENV = "VFIO_CONFORM_BENCH_PHASES"
#: Libraries a suite imports inside a test (only where used): the test that imports one pays for it.
WATCHED = ("hypothesis",)
_TIMES: dict[str, list[float]] = {}
_IMPORTED_BY: dict[str, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    absent = [m for m in WATCHED if m not in sys.modules]
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    _TIMES[item.nodeid] = [round(time.perf_counter() - wall, 4), round(time.process_time() - cpu, 4)]
    for module in absent:
        if module in sys.modules:
            _IMPORTED_BY[module] = item.nodeid


def pytest_sessionfinish(session) -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "w") as f:
            json.dump({"tests": _TIMES, "imported_by": _IMPORTED_BY}, f)
