"""Command line for the lab: `python3 -m vfio_conform.qemu_lab {prepare,run,variants}`.

Example: python3 -m vfio_conform.qemu_lab run --module mtty -- python3 -m vfio_conform run \
    --profile mtty --device @DEV0@ --device @DEV1@ --reports @RESULTS@/reports
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import LabConfig
from .errors import LabError
from .modbuild import VARIANTS
from .session import LabSession


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m vfio_conform.qemu_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="download, unpack and build the cache (idempotent)")
    sub.add_parser("variants", help="list the mtty variants")
    run = sub.add_parser("run", help="boot a guest and run ARGV in it (cwd = repo)")
    run.add_argument("--mode", choices=("mdev", "pci"), default="mdev")
    run.add_argument("--module", action="append", choices=sorted(VARIANTS),
                     help="mtty variant to load (repeatable; default mtty)")
    run.add_argument("--instances", type=int, default=2, help="mdev instances per module")
    run.add_argument("--timeout", type=float, default=600.0, help="host-side limit in seconds")
    run.add_argument("--results", type=Path, help="results dir (default: a new dir in the cache)")
    run.add_argument("--cpus", type=int, default=2)
    run.add_argument("argv", nargs=argparse.REMAINDER, help="command; @DEVn@ and @RESULTS@ are replaced")
    return parser


def main(args: list[str] | None = None) -> int:
    """Run the lab CLI; returns the guest command's exit code, or 2 on a LabError."""
    ns = _parser().parse_args(args)
    try:
        if ns.cmd == "variants":
            for v in VARIANTS.values():
                print(f"{v.name:12} flags={v.flags} type={v.mdev_type()}  {v.description}")
            return 0
        if ns.cmd == "prepare":
            t0 = time.monotonic()
            prepared = LabSession().prepare()
            print(json.dumps({"seconds": round(time.monotonic() - t0, 1),
                              "vmlinuz": str(prepared.tree.vmlinuz),
                              "initramfs": str(prepared.initramfs),
                              "modules": {k: str(v) for k, v in prepared.modules.items()}}, indent=2))
            return 0
        argv = ns.argv[1:] if ns.argv[:1] == ["--"] else ns.argv
        if not argv:
            print("run: give the guest command after --", file=sys.stderr)
            return 2
        config = LabConfig(mode=ns.mode, modules=tuple(ns.module or ("mtty",)),
                           instances=ns.instances, cpus=ns.cpus)
        result = LabSession(config).run(argv, timeout=ns.timeout, results_dir=ns.results)
    except LabError as exc:
        print(f"lab error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    print(json.dumps({"exit_code": result.exit_code, "run_dir": str(result.run_dir),
                      "devices": result.device_ids, "timings": result.timings,
                      "kernel_warnings": result.kernel_warnings}, indent=2), file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
