"""Runs keyed by kernel: pick each profile's newest run on a kernel, and the kernel x profile grid.

A run's kernel is its `kernel` column (uname -r, e.g. 6.1.0-57-amd64 or 7.3.4+deb13-amd64) and,
for lab runs, `kernel_package` (the Debian version, e.g. 6.1.192-3). A kernel is named by either,
or by a prefix of either that ends at a version boundary (`6.1` names 6.1.0-57-amd64 and 6.1.192-3,
never 6.12.x).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .runs import RunNotFound

#: How many of the newest runs are searched for a kernel's runs.
SCAN_LIMIT = 10_000


def release_key(release: str) -> tuple[int, ...]:
    """`6.1.0-57-amd64` < `6.12.117+deb12-amd64` < `7.3.4+deb13-amd64`: numeric order."""
    return tuple(int(x) for x in re.findall(r"\d+", release))


def on_kernel(run: dict, name: str) -> bool:
    """True if `run` ran on the kernel `name` names."""
    name = name.strip()
    for value in (run.get("kernel") or "", run.get("kernel_package") or ""):
        if value == name or re.match(re.escape(name) + r"([.+~-]|$)", value):
            return True
    return False


def newest_per_profile(store, kernel: str, profile: str | None = None) -> list[dict]:
    """Each profile's newest finished-or-not run on `kernel`, oldest profile name first."""
    found: dict[str, dict] = {}
    for run in store.runs(limit=SCAN_LIMIT, profile=profile):     # newest first
        if on_kernel(run, kernel) and run["profile"] not in found:
            found[run["profile"]] = run
    if not found:
        raise RunNotFound(f"no run{' of ' + profile if profile else ''} on kernel {kernel!r} in "
                          f"{store.url}")
    return [found[p] for p in sorted(found)]


def kernel_pair(store, old: str, new: str, profile: str | None = None) -> tuple[list[dict], list[dict]]:
    """The runs `diff --kernel OLD NEW` compares: the profiles both kernels ran, newest run each."""
    a, b = newest_per_profile(store, old, profile), newest_per_profile(store, new, profile)
    common = {r["profile"] for r in a} & {r["profile"] for r in b}
    if not common:
        raise RunNotFound(f"kernels {old!r} and {new!r} share no profile in {store.url}")
    return [r for r in a if r["profile"] in common], [r for r in b if r["profile"] in common]


@dataclass
class KernelMatrix:
    """verdicts[(profile, kernel)] = the newest run's verdict there; kernels in the given order."""

    kernels: list[str]
    profiles: list[str] = field(default_factory=list)
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)
    runs: dict[tuple[str, str], int] = field(default_factory=dict)


def verdict(rows: list[dict], status: str) -> str:
    """One word for a run: fail / infra-error / incomplete / pass / not-supported."""
    outcomes = {r["outcome"] for r in rows}
    if "fail" in outcomes:
        return "fail"
    if "infra-error" in outcomes:
        return "infra-error"
    if status != "finished":
        return "incomplete"
    if "pass" in outcomes:
        return "pass"
    return "not-supported" if outcomes else "empty"


def kernel_matrix(store, kernels: list[str]) -> KernelMatrix:
    """The kernel x profile grid of the newest run per cell."""
    grid = KernelMatrix(list(kernels))
    for kernel in kernels:
        try:
            runs = newest_per_profile(store, kernel)
        except RunNotFound:
            continue
        for run in runs:
            if run["profile"] not in grid.profiles:
                grid.profiles.append(run["profile"])
            grid.verdicts[(run["profile"], kernel)] = verdict(store.results(run["id"]), run.get("status") or "")
            grid.runs[(run["profile"], kernel)] = int(run["id"])
    grid.profiles.sort()
    return grid


def render_matrix_text(grid: KernelMatrix) -> str:
    width = max([len("profile")] + [len(p) for p in grid.profiles])
    cols = [max(len(k), 13) for k in grid.kernels]
    lines = ["profile".ljust(width) + "  " + "  ".join(k.ljust(c) for k, c in zip(grid.kernels, cols))]
    for profile in grid.profiles:
        lines.append(profile.ljust(width) + "  " + "  ".join(
            (grid.verdicts.get((profile, k)) or "not run").ljust(c) for k, c in zip(grid.kernels, cols)))
    return "\n".join(lines) + "\n"
