"""Which tests of each profile a run selected, and whether that is the profile's whole suite.

The controller knows the selection with or without xdist: without it from the collected items, under
xdist from the node ids each worker reports when its collection is done (the controller collects
nothing). A node id names its profile in the parameters the plugin builds (profile first, then the
arc or region after ':', further parameters after '-', xdist's `@group` suffix after ']'), so
`profile_of` reads it for every id shape.

A run is a *subset* when it did not select every test of the profile's suite: `-k`, `-m`,
`--deselect`, `--lf`, a file, directory or node id instead of the suite root, or any plugin that
deselects. The suite's size (the `total` of "subset 24/231") is counted from the deselected items
when the collection covered the whole suite in this process; otherwise (a partial collection, or
xdist's workers deselecting) by one `--collect-only` of the suite roots in a subprocess, bounded in
time. A count that cannot be had is None: the run is still a subset.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..base.constants import SUITES_DIR
from ..targets.items import item_param

#: Characters that may stand before a profile name in a node id's parameters, and after it.
_BEFORE = "[-"
_AFTER = "]-:"
#: Seconds the subprocess that counts the suite may take (a collection takes about one second).
COUNT_TIMEOUT_S = 120.0
#: Options whose presence means some tests were deselected (pytest, its cache plugin, stepwise).
SELECTING_OPTIONS = ("keyword", "markexpr", "deselect", "lf", "last_failed_no_failures_only",
                     "stepwise", "stepwise_skip", "ignore", "ignore_glob")


def strip_group(nodeid: str) -> str:
    """The node id without xdist's `@group` suffix (--dist loadgroup appends it after the ']')."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") and at > nodeid.rfind("::") else nodeid


def profile_of(nodeid: str, names) -> str | None:
    """The profile (one of `names`) a node id's parameters name; None for a test without one.

    The profile's part starts the parameters or follows a '-', and ends at ':', '-' or ']'; of
    several names that fit (`sim-p2p` and `sim-p2p-precopy`), the longest wins."""
    nodeid = strip_group(nodeid)
    func = nodeid.rpartition("::")[2]
    start = func.find("[")
    if start < 0 or not func.endswith("]"):
        return None
    params = func[start:]
    best = None
    for name in names:
        if best is not None and len(name) <= len(best):
            continue
        at = params.find(name)
        while at >= 0:
            end = at + len(name)
            if params[at - 1] in _BEFORE and end < len(params) and params[end] in _AFTER:
                best = name
                break
            at = params.find(name, at + 1)
    return best


@dataclasses.dataclass
class ProfileSelection:
    """One profile's selection: the node ids selected and the size of its whole suite (None: unknown)."""

    selected: set[str] = dataclasses.field(default_factory=set)
    total: int | None = None

    @property
    def complete(self) -> bool:
        """Every test of the profile's suite was selected."""
        return self.total is not None and len(self.selected) >= self.total

    def label(self) -> str:
        """'subset 24/231' ('subset 24/?' when the suite's size could not be counted), or
        'complete 231/231'."""
        word = "complete" if self.complete else "subset"
        return f"{word} {len(self.selected)}/{self.total if self.total is not None else '?'}"


class Selection:
    """pytest plugin (controller): per profile, the selected node ids and the suite's size."""

    def __init__(self, names) -> None:
        self.names = list(names)
        self.profiles: dict[str, ProfileSelection] | None = None    # None: not known (yet)
        self.deselected: dict[str, int] = {}
        self.config = None
        self._count_due = False      # the suite's size is counted when first asked for (the end)

    # -- what was selected -------------------------------------------------------------------
    def pytest_configure(self, config) -> None:
        self.config = config

    def pytest_deselected(self, items) -> None:
        for item in items:
            profile = item_param(item, "profile")
            if profile is not None:
                self.deselected[profile.name] = self.deselected.get(profile.name, 0) + 1

    def pytest_collection_finish(self, session) -> None:
        if session.config.pluginmanager.has_plugin("dsession"):
            return               # under xdist the controller does not collect: the workers say
        chosen = {name: ProfileSelection() for name in self.names}
        for item in session.items:
            profile = item_param(item, "profile")
            if profile is not None and profile.name in chosen:
                chosen[profile.name].selected.add(item.nodeid)
        self.profiles = chosen
        if self.whole_collection():
            for name, sel in chosen.items():
                sel.total = len(sel.selected) + self.deselected.get(name, 0)
        else:
            self._count_due = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if self.profiles is not None:        # every worker (and a replacement) collects the same
            return
        chosen = {name: ProfileSelection() for name in self.names}
        for nodeid in ids:
            name = profile_of(nodeid, self.names)
            if name is not None:
                chosen[name].selected.add(nodeid)
        self.profiles = chosen
        if self.whole_collection() and not self.selecting_options():
            for sel in chosen.values():
                sel.total = len(sel.selected)
        else:
            self._count_due = True

    # -- is it the whole suite ---------------------------------------------------------------
    def whole_collection(self) -> bool:
        """The collection arguments are suite roots (no file, directory below one, or node id)."""
        config = self.config
        if config is None:
            return False
        roots = {str(p) for p in suite_roots()}
        base = Path(config.invocation_params.dir)
        for arg in config.args:
            if "::" in arg or str((base / arg).resolve()) not in roots:
                return False
        return True

    def selecting_options(self) -> list[str]:
        """The options given that deselect tests (for xdist, whose workers deselect unseen)."""
        opt = self.config.option if self.config is not None else None
        return [name for name in SELECTING_OPTIONS if getattr(opt, name, None)]

    def _count_suite(self) -> None:
        """Each profile's whole-suite size, from one collection of the suite roots in a subprocess."""
        counts = count_suite(self.config, self.names)
        for name, sel in (self.profiles or {}).items():
            sel.total = counts.get(name) if counts is not None else None
            if sel.total is not None and sel.total < len(sel.selected):
                sel.total = len(sel.selected)      # tests outside the suite roots were added

    def of(self, profile: str) -> ProfileSelection | None:
        """The profile's selection (None when not known); counts the suite on the first call that
        needs it, after the tests ran (the count is no test progress a stall bound should see)."""
        if self._count_due:
            self._count_due = False
            self._count_suite()
        return (self.profiles or {}).get(profile)


def suite_roots() -> list[Path]:
    """The directories a full run collects (the conformance suites shipped in the package)."""
    return [SUITES_DIR.resolve()]


def count_suite(config, names) -> dict[str, int] | None:
    """Per profile, the tests a collection of the suite roots with this run's profiles and devices
    selects (no -k, -m, --deselect, node ids); None when that collection fails or times out."""
    if config is None:
        return None
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(config.rootpath), "--vc-no-store"]
    if config.inipath is not None:
        argv += ["-c", str(config.inipath)]
    for opt, flag in (("vc_profile", "--vc-profile"), ("vc_device", "--vc-device")):
        for value in config.getoption(opt) or ():
            argv += [flag, value]
    for opt, flag in (("vc_kernel_release", "--vc-kernel-release"), ("vc_inventory", "--vc-inventory")):
        if config.getoption(opt):
            argv += [flag, config.getoption(opt)]
    argv += [str(p) for p in suite_roots()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COUNT_TIMEOUT_S,
                              cwd=config.invocation_params.dir, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    counts = {name: 0 for name in names}
    for line in proc.stdout.splitlines():
        if "::" in line:
            name = profile_of(line.strip(), names)
            if name is not None:
                counts[name] += 1
    return counts
