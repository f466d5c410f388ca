"""Benchmarks on the sim: transitions per second through the full uAPI path, and full-suite time."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from .backends.registry import open_device
from .model.fsm import single_arcs
from .profile import find_profile
from .uapi.enums import MigState

SUITE_BUDGET_S = 60.0


def transitions_per_second(profile_name: str = "sim-p2p-precopy", seconds: float = 3.0) -> float:
    """SET single arcs round and round (RUNNING <-> RUNNING_P2P/STOP and back) for `seconds`."""
    profile = find_profile(profile_name)
    device = open_device(profile, "bench0")
    cycle = [MigState.STOP, MigState.RUNNING] if (MigState.RUNNING, MigState.STOP) in \
        single_arcs(profile.flags) else [MigState.RUNNING_P2P, MigState.STOP,
                                         MigState.RUNNING_P2P, MigState.RUNNING]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for state in cycle:
            device.set_state(state)
        count += len(cycle)
    elapsed = time.perf_counter() - start
    device.close()
    return count / elapsed


def full_suite_seconds(workers: str | None = None) -> tuple[float, int]:
    """Wall time of `vfio-conform run` over the default sim profiles (no store)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "vfio_conform", "run", "--no-store", "--reports", tmp, "-q"]
        if workers:
            cmd += ["-n", workers]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
    print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:])
    return elapsed, proc.returncode


def run_bench(seconds: float = 3.0, suite: bool = True) -> int:
    for name in ("sim-stop-copy", "sim-p2p-precopy"):
        rate = transitions_per_second(name, seconds)
        print(f"{name:18} {rate:10.0f} transitions/s ({1e6 / rate:.1f} us each, full uAPI encode/decode)")
    if not suite:
        return 0
    elapsed, code = full_suite_seconds()
    verdict = "within" if elapsed < SUITE_BUDGET_S else "OVER"
    print(f"full sim suite (default profiles): {elapsed:.1f} s ({verdict} the {SUITE_BUDGET_S:.0f} s budget), "
          f"exit {code}")
    return 0 if code == 0 and elapsed < SUITE_BUDGET_S else 1
