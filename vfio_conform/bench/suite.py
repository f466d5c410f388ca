"""Wall time of the full sim suite (`vfio-conform run` over the default profiles, no store)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

SUITE_BUDGET_S = 10.0


def full_suite_seconds(workers: str | None = None) -> tuple[float, int, str]:
    """(seconds, exit code, pytest's last line)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "vfio_conform", "run", "--no-store", "--reports", tmp, "-q"]
        if workers:
            cmd += ["-n", workers]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return elapsed, proc.returncode, tail
