"""Wall time of the full sim suite (`vfio-conform run` over the default profiles, no store), and
what the Allure output costs it in CPU time (the same run with `--no-allure`)."""
from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..base.constants import reports_dir

SUITE_BUDGET_S = 10.0
#: Allure output on may add at most this share to the suite's CPU time.
ALLURE_CPU_TARGET = 0.05
#: The Allure cost runs' reports: reports/bench/<prefix><random>/ while the section runs.
COST_DIR_PREFIX = "allure-cost-"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def suite_command(reports: str, allure: bool = True, workers: str | None = None,
                  stats: str | None = None) -> list[str]:
    """The `vfio-conform run` of the default sim profiles (no store) the section measures."""
    cmd = [sys.executable, "-m", "vfio_conform", "run", "--no-store", "--reports", reports, "-q"]
    if workers:
        cmd += ["-n", workers]
    if not allure:
        cmd.append("--no-allure")
    elif stats:
        cmd += ["--", "--vc-allure-stats", stats]
    return cmd


def suite_env() -> dict[str, str]:
    """The environment of the measured runs (a user's Allure directory does not apply)."""
    return {k: v for k, v in os.environ.items() if k != "VFIO_CONFORM_ALLURE_DIR"}


def full_suite_run(workers: str | None = None, allure: bool = True, reports: str | None = None,
                   stats: str | None = None) -> dict:
    """One `vfio-conform run`: wall seconds, CPU seconds (its processes), exit code, pytest's last line.
    Its reports go to `reports` (left there), else to a temporary directory removed after it; with
    `stats` (and Allure on, no workers), what creating its result files took goes there (JSON)."""
    with contextlib.ExitStack() as stack:
        tmp = reports or stack.enter_context(tempfile.TemporaryDirectory())
        cmd = suite_command(tmp, allure, workers, stats)
        cpu, start = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=suite_env())
        elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return {"seconds": elapsed, "cpu_s": cpu, "exit": proc.returncode, "tail": tail}


def full_suite_seconds(workers: str | None = None) -> tuple[float, int, str]:
    """(seconds, exit code, pytest's last line)."""
    run = full_suite_run(workers)
    return run["seconds"], run["exit"], run["tail"]


def _cost_runs() -> tempfile.TemporaryDirectory:
    """Where the Allure cost runs write their reports: reports/bench/<prefix><random>/, removed after."""
    where = reports_dir() / "bench"
    where.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=COST_DIR_PREFIX, dir=where)


def allure_cost(rounds: int = 8) -> dict:
    """The suite's CPU time with Allure output on and off, alternated `rounds` times (the least of
    each kept: other load only ever adds), and the ratio on / off.

    The runs write their reports where a user's do, under reports/ (reports/bench/, removed at the
    end), not in the system's temporary directory. On ext4 without a journal a file created within
    minutes of many being deleted in the same block group costs up to ten times the usual system
    time (the allocator reads each recently deleted inode and skips it), so each run with Allure
    output measures what creating its result files took (--vc-allure-stats): the line says when
    the file system was busy."""
    on, off = [], []
    creations: list[tuple[float, float]] = []     # per run with Allure: (CPU s, its files' creation s)
    with _cost_runs() as keep:
        for index in range(rounds):
            off.append(full_suite_run(allure=False, reports=f"{keep}/off{index}")["cpu_s"])
            stats = Path(keep, f"on{index}.json")
            on.append(full_suite_run(allure=True, reports=f"{keep}/on{index}", stats=str(stats))["cpu_s"])
            try:
                made = json.loads(stats.read_text())
                creations.append((on[-1], made["create_seconds"] / max(made["results"], 1)))
            except (OSError, ValueError, KeyError):
                pass
    # the creations of the run that counted (the least CPU), in us each
    creation = min(creations)[1] * 1e6 if creations else None
    ratio = min(on) / min(off) if min(off) > 0 else 0.0
    return {"cpu_on_s": round(min(on), 3), "cpu_off_s": round(min(off), 3), "ratio": round(ratio, 4),
            "target": 1 + ALLURE_CPU_TARGET, "ok": ratio <= 1 + ALLURE_CPU_TARGET,
            "cpu_on_all_s": [round(x, 3) for x in on], "cpu_off_all_s": [round(x, 3) for x in off],
            "file_creation_us": round(creation, 1) if creation is not None else None}


#: A file creation slower than this (us) means the file system is busy: the ratio is then inflated.
BUSY_CREATION_US = 100.0


def render_allure_cost(res: dict) -> str:
    verdict = "within" if res["ok"] else "OVER"
    line = (f"Allure output: {res['ratio']:.3f}x the suite's CPU time without it ({res['cpu_on_s']:.2f} s "
            f"against {res['cpu_off_s']:.2f} s; {verdict} the {res['target']:.2f}x target)")
    creation = res.get("file_creation_us")
    if creation is not None:
        line += f"; creating each of its result files took {creation:.0f} us"
        if creation > BUSY_CREATION_US:
            line += (" (the file system is busy, e.g. files deleted nearby in the last minutes: the "
                     "ratio is inflated by it; run the section again later)")
    return line


def allure_instructions() -> dict:
    """What Allure output adds to the suite in instructions (valgrind's count, the same at every
    run): both runs counted at once, with a fixed hash seed. Without valgrind: {"skipped": why}."""
    from . import instructions
    if instructions.available() is None:
        return {"skipped": "valgrind is not installed"}
    with _cost_runs() as keep:
        try:
            counted = instructions.count_together(
                {"on": suite_command(f"{keep}/on"), "off": suite_command(f"{keep}/off", allure=False)},
                env={**suite_env(), "PYTHONHASHSEED": "0"})
        except instructions.CountError as exc:
            return {"skipped": str(exc)}
    on, off = counted["on"], counted["off"]
    if on.exit or off.exit:
        return {"skipped": f"a run under valgrind exited {on.exit or off.exit}"}
    return {"on": on.instructions, "off": off.instructions,
            "ratio": round(on.instructions / off.instructions, 4) if off.instructions else 0.0}


def render_allure_instructions(res: dict) -> str:
    if "skipped" in res:
        return f"Allure output in instructions: not counted ({res['skipped']})"
    return (f"Allure output in instructions (valgrind; user space, the same at every run): {res['ratio']:.3f}x "
            f"({res['on'] / 1e9:.2f} G against {res['off'] / 1e9:.2f} G)")
