"""`vfio-conform lab matrix`: the lab run on several Debian kernels, one boot per kernel and mode.

Every kernel is resolved before anything is fetched or booted. A kernel named on the command line
that the archives cannot give whole (unknown; headers or linux-source missing) is bad input (exit
2, nothing run). Of the default list, such a kernel is left out with one line saying why
(trixie-backports drops a superseded kernel's headers and source before its image).

The default list is the lab's LTS (6.12), the LTS before it (6.1, bookworm) and the newest
release: the three kernels the archives carry whole. The 6.18 LTS is not in it: trixie-backports
keeps only its images (no linux-headers-6.18.*, no linux-source-6.18); a default run says so in one
line, naming what is missing, and takes it in should the archives carry it whole again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base.constants import STORE_NAME
from ..base.errors import ConfigError
from ..report.kernels import kernel_matrix, render_matrix_text
from ..report.run_end import write_html
from ..results import StoreError, open_store, store_location
from .config import KernelSpec, default_cache_root
from .errors import LabError
from .harness import BOOT_TIMEOUT_S, LabRun, run_lab
from .kernels import describe, resolve

#: The kernels `lab matrix` runs without --kernel: the LTS before the lab's, the lab's LTS and the
#: newest release.
DEFAULT_KERNELS = ("6.1", "6.12", "latest")
#: Kernels the default list would hold were the archives to carry them whole (each checked on a
#: default run: left out with one line naming the missing package, or run when whole).
WANTED_KERNELS = ("6.18",)


@dataclass
class MatrixResult:
    """Every boot's LabRun, the seconds each kernel took, the kernels left out and why."""

    runs: list[LabRun] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: per kernel: the uAPI header check's exit code (0 all explained, 1 a mismatch, 3 not run)
    uapi: dict[str, int] = field(default_factory=dict)
    #: per kernel: the QEMU consumer lane's exit code (as `lab consumers`)
    consumers: dict[str, int] = field(default_factory=dict)
    #: kernels whose lab run stopped on a lab error (download, build, boot), with the error: an
    #: infrastructure error of that kernel; the matrix goes on with the next one
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    kernels: list[KernelSpec] = field(default_factory=list)


def resolve_kernels(names: list[str] | None, cache_root: Path) -> tuple[list[KernelSpec], dict[str, str]]:
    """The KernelSpecs to run (duplicates dropped) and the default kernels left out, with why."""
    explicit = bool(names)
    specs: list[KernelSpec] = []
    skipped: dict[str, str] = {}
    wanted = [] if explicit else list(WANTED_KERNELS)
    for name in names or [*DEFAULT_KERNELS[:-1], *wanted, DEFAULT_KERNELS[-1]]:
        try:
            spec, _ = resolve(name, cache_root)
        except ConfigError as exc:
            if explicit:
                raise
            skipped[name] = exc.message
            continue
        if spec.kver not in [s.kver for s in specs]:
            specs.append(spec)
    if not specs:
        raise ConfigError("no kernel of the matrix can be run: "
                          + "; ".join(f"{k}: {v}" for k, v in skipped.items()), field="--kernel")
    return specs, skipped


def run_matrix(names: list[str] | None, profiles: list[str] | None, reports: Path,
               store: str | None = None, workers: str | None = None, extra: list[str] | None = None,
               timeout: float = BOOT_TIMEOUT_S, *, uapi: bool = True,
               consumers: bool = True) -> MatrixResult:
    """Run the lab on each kernel: every suite (`run_lab`), the uAPI header check against that
    kernel's headers and the real QEMU client (`lab consumers`); print each kernel's time and, at
    the end, the verdict grid."""
    specs, skipped = resolve_kernels(names, default_cache_root())
    result = MatrixResult(skipped=skipped, kernels=specs)
    for name, why in skipped.items():
        print(f"vfio-conform lab: matrix: kernel {name} left out: {why}", flush=True)
    for spec in specs:
        print(f"vfio-conform lab: matrix: kernel {describe(spec)}", flush=True)
        t0 = time.monotonic()
        try:
            result.runs += run_lab(profiles, reports, store, workers, extra, timeout, kernel=spec)
        except LabError as exc:
            result.failed[spec.kver] = str(exc)
            result.seconds[spec.kver] = round(time.monotonic() - t0, 1)
            print(f"vfio-conform lab: matrix: kernel {spec.kver}: infra-error: {exc}", flush=True)
            continue
        if uapi:
            result.uapi[spec.kver] = uapi_check(spec)
        if consumers:
            result.consumers[spec.kver] = consumer_lane(spec, profiles, reports, store, timeout)
        result.seconds[spec.kver] = round(time.monotonic() - t0, 1)
        print(f"vfio-conform lab: matrix: kernel {spec.kver} took {result.seconds[spec.kver]:.0f} s",
              flush=True)
    write_grid(result, reports, store)
    return result


def uapi_check(spec: KernelSpec) -> int:
    """The header check on this kernel's own uAPI headers, printed; 0 when every item is explained,
    1 on a mismatch, 3 when the headers could not be had (an infrastructure error)."""
    from ..tools.header_check import DEFAULT_KVER
    from .kernel_uapi import check_kernel_spec
    try:
        checked = check_kernel_spec(spec)
    except (LabError, OSError) as exc:
        print(f"vfio-conform lab: matrix: {spec.kver}: uAPI check not run: {exc}", flush=True)
        return 3
    for line in checked.lines(DEFAULT_KVER.split("+")[0]):
        print(f"vfio-conform lab: matrix: {spec.kver}: {line}", flush=True)
    return 1 if checked.report.unexplained else 0


def consumer_lane(spec: KernelSpec, profiles: list[str] | None, reports: Path, store: str | None,
                  timeout: float | None) -> int:
    """QEMU 10 migrating a VM with each lab device on this kernel (`lab consumers --kernel`), its
    verdict lines printed; the lane's exit code."""
    from .consumers import run_consumers
    try:
        lane = run_consumers(profiles, reports, store, timeout, spec)
    except LabError as exc:
        print(f"vfio-conform lab: matrix: {spec.kver}: consumer lane: {exc}", flush=True)
        return 3
    for verdict in lane.verdicts:
        print(f"vfio-conform lab: matrix: {spec.kver}: consumer: {verdict.summary}", flush=True)
    if lane.run_dir is not None:
        print(f"vfio-conform lab: matrix: {spec.kver}: consumer summary: {lane.run_dir / 'consumers.md'}",
              flush=True)
    return lane.exit_code


def write_grid(result: MatrixResult, reports: Path, store_arg: str | None) -> Path | None:
    """Print the kernel x profile grid and write the HTML report of every run of the matrix (the
    report's own page, its grid first) as reports/lab/kernel-matrix.html."""
    location = store_location(store_arg, reports / STORE_NAME)
    try:
        store = open_store(location, readonly=True)
    except StoreError as exc:           # no boot imported anything
        print(f"vfio-conform lab: matrix: no verdict grid: {exc}", flush=True)
        return None
    try:
        grid = kernel_matrix(store, [s.kver for s in result.kernels])
    finally:
        store.close()
    out = reports / "lab" / "kernel-matrix.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    written = write_html(location, [i for run in result.runs for i in run.run_ids], out)
    print("\n" + render_matrix_text(grid) + (f"kernel matrix: {written}" if written else ""),
          flush=True)
    return Path(written) if written else None
