"""Arguments and the run of `vfio-conform bench`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..base.constants import REPORTS_DIR
from ..base.errors import VfioConformError
from .parser import positive

SECTIONS = ("transitions", "streams", "scaling", "suite")
#: Sections run only when asked for with --only (they boot the real-kernel lab).
LAB_SECTIONS = ("lab-parallel",)
#: Sections run only when asked for with --only (suite runs on gigabyte states: minutes each).
BIG_SECTIONS = ("hostile", "run-memory")
#: Targets the sections print their ratios against (the issue's acceptance criteria).
TRANSITION_TARGET = 1.5          # harness / bare Python per SET, at most
STREAM_TARGET = 0.8              # harness data_fd throughput / C pipe loop, at least
STREAM_RSS_TARGET_MIB = 64       # resident memory above the 1 MiB-state run, at most


def add_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--only", action="append", choices=SECTIONS + LAB_SECTIONS + BIG_SECTIONS,
                       metavar="SECTION",
                       help=f"run only these sections (repeatable; default: {', '.join(SECTIONS)}; "
                            f"lab-parallel boots the lab twice: wrap it in flock /tmp/vc-lab.lock; "
                            f"hostile and run-memory run the suites on generated states of gigabytes)")
    bench.add_argument("--workers", type=positive(int), default=2, help="lab-parallel: xdist workers (default 2)")
    bench.add_argument("--seconds", type=positive(float), default=3.0, help="duration of the transition loops")
    bench.add_argument("--profile", default="sim-p2p-precopy",
                       help="profile of the device for the transitions (default sim-p2p-precopy)")
    bench.add_argument("--device", default="bench0", help="device id for the transitions "
                       "(a sim instance name, or a mdev UUID / BDF with a kernel profile)")
    bench.add_argument("--state-size", default="256M", metavar="SIZE",
                       help="device state streamed by the streams section (e.g. 1M, 256M, 4G)")
    bench.add_argument("--hostile-size", default="1G", metavar="SIZE",
                       help="hostile: the generated state the hostile module runs on (default 1G)")
    bench.add_argument("--memory-sizes", default="1G", metavar="SIZES",
                       help="run-memory: comma-separated state sizes whose whole-suite run is compared "
                            "with the same run on a 1 MiB state (default 1G; e.g. 1G,8G)")
    bench.add_argument("--no-suite", action="store_true", help="skip the full-suite timing")
    bench.add_argument("--out", default=None, metavar="FILE",
                       help="write the results as JSON here (default reports/bench/bench-<time>.json)")
    bench.add_argument("--no-save", action="store_true", help="do not write a JSON result")
    bench.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"), default=None,
                       help="compare two saved bench results; exit 1 on a regression")


def parse_size(text: str) -> int:
    """'4G', '256M', '1k', '4096' -> bytes (ValueError on anything else)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = units.get(text[-1:], 1)
    value = int(text[:-1] if text[-1:] in units else text)
    if value <= 0:
        raise ValueError("size must be positive")
    return value * mult


def run_bench(args: argparse.Namespace) -> int:
    from ..bench.results import default_path, diff, save
    if args.diff:
        try:
            return diff(Path(args.diff[0]), Path(args.diff[1]))
        except (OSError, ValueError) as exc:
            print(f"vfio-conform bench: --diff: {exc}", file=sys.stderr)
            return 2
    sizes = {}
    for option, text in (("--state-size", args.state_size), ("--hostile-size", args.hostile_size),
                         *(("--memory-sizes", t) for t in args.memory_sizes.split(","))):
        try:
            sizes.setdefault(option, []).append(parse_size(text))
        except (ValueError, IndexError):
            print(f"vfio-conform bench: {option}: not a size: {text!r}", file=sys.stderr)
            return 2
    state_size = sizes["--state-size"][0]
    sections = args.only or [s for s in SECTIONS if not (s == "suite" and args.no_suite)]
    out: dict = {"sections": sections}
    code = 0
    try:
        if "transitions" in sections:
            code |= _transitions(args, out)
        if "streams" in sections:
            code |= _streams(state_size, out)
        if "scaling" in sections:
            code |= _scaling(out)
        if "suite" in sections:
            code |= _suite(out)
        if "hostile" in sections:
            from ..bench.bigruns import hostile, render_hostile
            out["hostile"] = hostile(sizes["--hostile-size"][0])
            print(render_hostile(out["hostile"]))
            code |= 0 if out["hostile"]["ok"] else 1
        if "run-memory" in sections:
            from ..bench.bigruns import render_memory, run_memory
            out["run_memory"] = run_memory(sizes["--memory-sizes"])
            print(render_memory(out["run_memory"]))
            code |= 0 if out["run_memory"]["ok"] else 1
        if "lab-parallel" in sections:
            from ..bench.labpar import measure, render
            out["lab_parallel"] = measure(args.workers)
            print(render(out["lab_parallel"]))
    except VfioConformError as exc:
        print(f"vfio-conform bench: {exc}", file=sys.stderr)
        return 2
    if not args.no_save:
        path = Path(args.out) if args.out else default_path(REPORTS_DIR)
        save(path, out)
        print(f"bench results: {path}")
    return code


def _transitions(args, out: dict) -> int:
    from ..backends.registry import open_device
    from ..profile import find_profile
    from ..bench.transitions import measure, render
    profile = find_profile(args.profile)
    device = open_device(profile, args.device)
    try:
        res = measure(device, args.seconds)
    finally:
        device.close()
    res["target"] = TRANSITION_TARGET
    out["transitions"] = res
    print(render(res, TRANSITION_TARGET))
    return 0


def _streams(state_size: int, out: dict) -> int:
    from ..bench.streams import measure, render
    res = measure(state_size)
    res.update(target_throughput=STREAM_TARGET, target_rss_mib=STREAM_RSS_TARGET_MIB)
    out["streams"] = res
    print(render(res))
    return 0 if res.get("ok", False) else 1


def _scaling(out: dict) -> int:
    from ..bench.scaling import measure, render
    res = measure()
    out["scaling"] = res
    print(render(res))
    return 0


def _suite(out: dict) -> int:
    from ..bench.suite import (SUITE_BUDGET_S, allure_cost, allure_instructions, full_suite_seconds,
                               render_allure_cost, render_allure_instructions)
    elapsed, code, tail = full_suite_seconds()
    out["suite"] = {"seconds": round(elapsed, 2), "exit": code, "budget_s": SUITE_BUDGET_S}
    print(tail)
    verdict = "within" if elapsed < SUITE_BUDGET_S else "OVER"
    print(f"full sim suite (default profiles): {elapsed:.1f} s ({verdict} the {SUITE_BUDGET_S:.0f} s "
          f"budget), exit {code}")
    cost = allure_cost()
    out["suite"]["allure_cpu_ratio"] = cost["ratio"]
    out["suite"]["allure"] = cost
    print(render_allure_cost(cost))
    counted = allure_instructions()
    out["suite"]["allure_instructions"] = counted
    if "ratio" in counted:
        out["suite"]["allure_instruction_ratio"] = counted["ratio"]
    print(render_allure_instructions(counted))
    return 0 if code == 0 else 1


def dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
