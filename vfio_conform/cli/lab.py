"""`vfio-conform lab`: prepare the real-kernel lab, run the suites in it, or run any command in it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..base.constants import CHECKOUT, reports_dir
from .parser import positive

ROOT = CHECKOUT


def add_parser(sub) -> None:
    lab = sub.add_parser("lab", help="run the suites on real kernel VFIO drivers in a QEMU guest",
                         description="Debian's 6.12 kernel under QEMU with the sample driver mtty "
                                     "(and its flag-set variants) or vfio-pci on emulated devices.")
    labsub = lab.add_subparsers(dest="lab_command", required=True)
    prep = labsub.add_parser("prepare", help="download, unpack and build the lab (cached)")
    prep.set_defaults(func=_prepare)
    var = labsub.add_parser("variants", help="list the mtty variants the lab builds")
    var.set_defaults(func=_variants)
    run = labsub.add_parser("run", help="run the suites in the guest for every profile with a "
                                        "'lab:' section (or the named ones)")
    run.add_argument("--profile", action="append", default=[], metavar="NAME|PATH")
    run.add_argument("--reports", default=str(reports_dir()), metavar="DIR")
    run.add_argument("--store", default=None, metavar="PATH|URL")
    run.add_argument("-n", "--workers", default="auto",
                     help="worker processes in the guest, each on its own profiles: N, 0 for one "
                          "process, or auto (default): one per profile, at most one per guest vCPU")
    run.add_argument("--timeout", type=float, default=None, help="host-side limit per boot, seconds")
    _output_arguments(run)
    run.add_argument("--kernel", default=None, metavar="VERSION|ALIAS",
                     help="a Debian kernel from bookworm, trixie or trixie-backports: 6.12, 7.3.4, "
                          "6.1.0-57, lts or latest (default: the pinned 6.12 build; "
                          "docs/kernel-matrix.md)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest args")
    run.set_defaults(func=_run)
    cons = labsub.add_parser("consumers", help="QEMU 10 (Debian trixie, in the guest) migrates a VM "
                                               "with each mdev profile's device; outcome per profile "
                                               "stored as <profile>@qemu (docs/consumers-qemu.md)")
    cons.add_argument("--profile", action="append", default=[], metavar="NAME|PATH")
    cons.add_argument("--reports", default=str(reports_dir()), metavar="DIR")
    cons.add_argument("--store", default=None, metavar="PATH|URL")
    cons.add_argument("--timeout", type=float, default=None,
                      help="host-side limit per boot, seconds (default: 300 + 300 per profile)")
    cons.add_argument("--kernel", default=None, metavar="VERSION|ALIAS",
                      help="another Debian kernel, as for `lab run` (docs/kernel-matrix.md)")
    cons.set_defaults(func=_consumers)
    mat = labsub.add_parser("matrix", help="the lab run on several Debian kernels, one boot per "
                                            "kernel (default: 6.1, 6.12, latest), and the kernel x "
                                            "profile verdict grid (docs/kernel-matrix.md)")
    mat.add_argument("--kernel", action="append", default=[], metavar="VERSION|ALIAS",
                     help="a kernel of the matrix, as for `lab run` (repeat; default: 6.1, 6.12 and "
                          "latest: the kernels the archives carry whole; 6.18 lacks its headers "
                          "and linux-source there)")
    mat.add_argument("--profile", action="append", default=[], metavar="NAME|PATH")
    mat.add_argument("--reports", default=str(reports_dir()), metavar="DIR")
    mat.add_argument("--store", default=None, metavar="PATH|URL")
    mat.add_argument("-n", "--workers", default="auto")
    mat.add_argument("--timeout", type=float, default=None, help="host-side limit per boot, seconds")
    mat.add_argument("--no-consumers", action="store_true",
                     help="leave out the QEMU consumer lane (run per kernel by default)")
    mat.add_argument("--no-uapi", action="store_true",
                     help="leave out the uAPI header check (run per kernel by default)")
    _output_arguments(mat, matrix=True)
    mat.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest args")
    mat.set_defaults(func=_matrix)
    uapi = labsub.add_parser("uapi", help="check the uAPI tables against a kernel's own headers and "
                                          "list what its headers add to or lack from 6.12's")
    uapi.add_argument("--kernel", required=True, metavar="VERSION|ALIAS")
    uapi.add_argument("-v", "--verbose", action="store_true", help="the whole check table")
    uapi.set_defaults(func=_uapi)
    exe = labsub.add_parser("exec", help="boot a guest and run any command in it (cwd = the checkout); "
                                         "@DEVn@ and @RESULTS@ in the command are replaced",
                            description="Example: vfio-conform lab exec --module mtty -- python3 -m "
                                        "vfio_conform run --profile mtty --device @DEV0@ --device @DEV1@ "
                                        "--reports @RESULTS@/reports")
    exe.add_argument("--mode", choices=("mdev", "pci"), default="mdev")
    exe.add_argument("--module", action="append", default=None, metavar="VARIANT",
                     help="mtty variant to load (repeatable; default mtty; `lab variants` lists them)")
    exe.add_argument("--instances", type=positive(int), default=2, help="mdev instances per module")
    exe.add_argument("--timeout", type=positive(float), default=600.0, help="host-side limit in seconds")
    exe.add_argument("--results", type=Path, default=None,
                     help="results dir (default: a new dir in the cache)")
    exe.add_argument("--cpus", type=positive(int), default=2)
    exe.add_argument("argv", nargs=argparse.REMAINDER, help="the command, after --")
    exe.set_defaults(func=_exec)


def _output_arguments(parser, matrix: bool = False) -> None:
    """The output options of `run` (its --json, --ktap and the JUnit and Allure files), over every
    boot's runs; in a matrix each suite names its kernel."""
    each = " (one suite per profile and kernel)" if matrix else ""
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="write the machine-readable summary here (docs/json-summary.md)")
    parser.add_argument("--ktap", default=None, metavar="FILE",
                        help=f"also write KTAP version 1 here{each}")
    parser.add_argument("--junit", default=None, metavar="FILE",
                        help=f"also write one JUnit XML file here over every boot{each}")
    parser.add_argument("--allure", default=None, metavar="DIR",
                        help=f"also write one Allure results directory here over every boot{each}")


def _prepare(args, extra) -> int:
    import json
    import time

    from ..qemu_lab.errors import LabError
    from ..qemu_lab.session import LabSession
    t0 = time.monotonic()
    try:
        prepared = LabSession().prepare()
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    print(json.dumps({"seconds": round(time.monotonic() - t0, 1), "vmlinuz": str(prepared.tree.vmlinuz),
                      "initramfs": str(prepared.initramfs),
                      "modules": {k: str(v) for k, v in prepared.modules.items()}}, indent=2))
    return 0


def _variants(args, extra) -> int:
    from ..qemu_lab.modbuild import VARIANTS
    for v in VARIANTS.values():
        print(f"{v.name:12} flags={v.flags} type={v.mdev_type()}  {v.description}")
    return 0


def _exec(args, extra) -> int:
    """Boot a guest, run the command in it; the command's exit code (3: the lab failed)."""
    import json
    import sys

    from ..base.errors import ConfigError
    from ..qemu_lab.config import LabConfig
    from ..qemu_lab.errors import LabError
    from ..qemu_lab.modbuild import VARIANTS
    from ..qemu_lab.session import LabSession
    argv = [*args.argv, *extra]
    argv = argv[1:] if argv[:1] == ["--"] else argv
    if not argv:
        raise ConfigError("lab exec: give the guest command after --")
    unknown = sorted(set(args.module or ()) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"lab exec: --module {unknown[0]}: not an mtty variant (known: {', '.join(sorted(VARIANTS))})")
    config = LabConfig(mode=args.mode, modules=tuple(args.module or ("mtty",)),
                       instances=args.instances, cpus=args.cpus)
    try:
        result = LabSession(config).run(argv, timeout=args.timeout, results_dir=args.results)
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    print(json.dumps({"exit_code": result.exit_code, "run_dir": str(result.run_dir),
                      "devices": result.device_ids, "timings": result.timings,
                      "kernel_warnings": result.kernel_warnings}, indent=2), file=sys.stderr)
    return 3 if result.exit_code is None else result.exit_code


def _run(args, extra) -> int:
    from ..qemu_lab.errors import LabError
    from ..qemu_lab.harness import BOOT_TIMEOUT_S, run_lab
    from ..qemu_lab.boots_table import Outputs
    rest = [a for a in args.pytest_args + list(extra) if a != "--"]
    outputs = Outputs.from_args(args)
    outputs.check()
    try:
        kernel = _kernel(args.kernel)
        runs = run_lab(args.profile or None, Path(args.reports), args.store,
                       None if args.workers in ("0", "") else args.workers, rest,
                       args.timeout or BOOT_TIMEOUT_S, kernel=kernel)
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    from ..base.exitcodes import combine
    codes = []
    for run in runs:
        state = "infra-error" if run.exit_code is None else f"exit {run.exit_code}"
        print(f"vfio-conform lab: {run.mode}: {', '.join(run.profiles)}: {state} ({run.run_dir})")
        codes.append(3 if run.exit_code is None else run.exit_code)
    from ..qemu_lab.boots_table import lab_summary
    lab_summary(runs, Path(args.reports), args.store, outputs=outputs)
    return int(combine(codes))   # same codes as `run`: 2 usage, 1 violation, 3 incomplete, 0


def _matrix(args, extra) -> int:
    from ..base.exitcodes import combine
    from ..qemu_lab.errors import LabError
    from ..qemu_lab.harness import BOOT_TIMEOUT_S
    from ..qemu_lab.matrix import run_matrix
    from ..qemu_lab.boots_table import Outputs, lab_summary
    rest = [a for a in args.pytest_args + list(extra) if a != "--"]
    outputs = Outputs.from_args(args, kernel_names=True)
    outputs.check()
    try:
        result = run_matrix(args.kernel or None, args.profile or None, Path(args.reports), args.store,
                            None if args.workers in ("0", "") else args.workers, rest,
                            args.timeout or BOOT_TIMEOUT_S, uapi=not args.no_uapi,
                            consumers=not args.no_consumers)
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    lab_summary(result.runs, Path(args.reports), args.store, outputs=outputs)
    for kver, seconds in result.seconds.items():
        print(f"vfio-conform lab: matrix: {kver}: {seconds:.0f} s")
    return int(combine([3 if r.exit_code is None else r.exit_code for r in result.runs]
                       + list(result.uapi.values()) + list(result.consumers.values())
                       + [3 for _ in result.failed]))


def _kernel(name: str | None):
    """The KernelSpec `--kernel` names (resolved through the lab's private apt configuration), or
    None for the pinned default. An unknown or incomplete kernel is a ConfigError (exit 2)."""
    if not name:
        return None
    from ..qemu_lab.config import default_cache_root
    from ..qemu_lab.kernels import describe, resolve
    spec, _ = resolve(name, default_cache_root())
    print(f"vfio-conform lab: kernel {describe(spec)}", flush=True)
    return spec


def _uapi(args, extra) -> int:
    """Exit 0 when every item the kernel's headers define matches the tables, 1 on a mismatch."""
    from ..tools.header_check import DEFAULT_KVER
    from ..qemu_lab.errors import LabError
    from ..qemu_lab.kernel_uapi import check_kernel_spec
    try:
        result = check_kernel_spec(_kernel(args.kernel))
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    print("\n".join(result.lines(DEFAULT_KVER.split("+")[0])))
    if args.verbose:
        print(result.report.table(True))
    return 0 if not result.report.unexplained else 1


def _consumers(args, extra) -> int:
    from ..qemu_lab.consumers import run_consumers
    from ..qemu_lab.errors import LabError
    try:
        run = run_consumers(args.profile or None, Path(args.reports), args.store, args.timeout,
                            _kernel(args.kernel))
    except LabError as exc:
        print(f"vfio-conform lab: {exc}")
        return 3
    for verdict in run.verdicts:
        print(f"vfio-conform lab: consumer: {verdict.summary}")
        for rec in verdict.records:
            print(f"    {rec.outcome.value:13} {rec.test_id}: {rec.message}")
    if run.run_dir is not None:
        print(f"vfio-conform lab: consumer summary: {run.run_dir / 'consumers.md'}")
    return run.exit_code
