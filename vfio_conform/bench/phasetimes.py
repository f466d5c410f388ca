"""A pytest plugin the bench loads into the runs it times (`-p vfio_conform.bench.phasetimes`): each
test's setup + call + teardown seconds (a fixture's save of a device state is in its test's setup)
and the CPU seconds its process spent meanwhile (a loaded shared host stretches the wall time, much
less the CPU time), written as JSON {nodeid: [seconds, cpu seconds]} to the file
$VFIO_CONFORM_BENCH_PHASES names when the session ends (a run without xdist workers)."""
from __future__ import annotations

import json
import os
import time

import pytest

ENV = "VFIO_CONFORM_BENCH_PHASES"
_TIMES: dict[str, list[float]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    _TIMES[item.nodeid] = [round(time.perf_counter() - wall, 4), round(time.process_time() - cpu, 4)]


def pytest_sessionfinish(session) -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "w") as f:
            json.dump(_TIMES, f)
