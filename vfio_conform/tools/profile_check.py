"""`vfio-conform profile check`: validate a profile and say what a run would do with it.

No device is opened. The profile is loaded and checked as `run` checks it (schema, waivers against
the suites, the backend's own section); then the suites are collected with the plugin's own
parametrization (arcs from the FSM model, one test per declared region) and every collected test
is put through the decisions the plugin takes before a test touches a device: the protocol gate,
`vc_requires` against the profile's flags and features, the transport gate, and the hazard gate
of the FSM model's arcs on the given kernel. What depends on the device's answers (a DMA logging
REPORT that gives EOPNOTSUPP, a region fence a test needs) is only known when the run happens.

This module runs pytest (collection only, with the plugin's own parametrization), so it is a tool.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import os

import pytest

from ..base.constants import SUITES_DIR, SUITES_INI, SUITES_ROOT
from ..base.errors import InfraError
from ..model.fsm import supported_states
from ..model.plan import HANG_BLOCKED_ARC, WARN_FROM_ERROR, plan
from ..results.outcomes import SKIP_MARK
from ..plugin.context import CONTEXT_KEY, VcContext
from ..targets.requirements import ARC_TARGETS, has_need, need_name
from ..targets.select import Target, check_profile
from ..targets.items import item_param, spec_ids
from ..backends import registry
from ..results import Outcome
from ..suitelib.checks import not_on_transport
from ..profile.loader import find_profile
from ..profile.schema import HAZARDS, Profile

RUNS = "run"
#: Every hazard of the model by name (the names `hazards:` accepts).
MODEL_HAZARDS = {h.name: h for h in (HANG_BLOCKED_ARC, WARN_FROM_ERROR)}


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a run does with one collected test before touching a device."""

    nodeid: str
    suite: str              # suites/<area>/<file>
    outcome: str            # RUNS, or an Outcome value (not-supported, gated)
    reason: str = ""
    hazard: str = ""


@dataclasses.dataclass(frozen=True)
class HazardStatus:
    name: str
    reason: str
    arcs: tuple[str, ...]        # the arcs of this flag set that carry it
    safe_on: tuple[str, ...]
    gated: bool


@dataclasses.dataclass
class CheckReport:
    profile: Profile
    kernel_release: str
    decisions: list[Decision]
    hazards: list[HazardStatus]
    waivers: list[tuple[int, str, int]]     # (index, test pattern, collected tests it names)

    def counts(self) -> collections.Counter:
        return collections.Counter(d.outcome for d in self.decisions)

    def render(self) -> str:
        p = self.profile
        flags = "|".join(f.name for f in type(p.flags) if f & p.flags) or "none"
        total = self.counts()
        out = [f"profile {p.name} ({p.path}): valid",
               f"  backend {p.backend}, migration {p.protocol} flags {flags}, reset {p.reset}, "
               f"dma_logging {p.dma_logging}, verify {p.verify}, "
               f"{len(p.regions.policies)} declared region(s), devices: {', '.join(p.devices) or '(--device)'}",
               f"  kernel {self.kernel_release}: {len(self.decisions)} tests; {total[RUNS]} run, "
               f"{total[Outcome.NOT_SUPPORTED.value]} not-supported, {total[Outcome.GATED.value]} gated "
               "(before any device answer)", "", "suites:"]
        by_suite: dict[str, list[Decision]] = collections.defaultdict(list)
        for d in self.decisions:
            by_suite[d.suite].append(d)
        for suite in sorted(by_suite):
            items = by_suite[suite]
            c = collections.Counter(d.outcome for d in items)
            verdict = ("applies" if c[RUNS] == len(items) else "not-supported" if not c[RUNS] and
                       not c[Outcome.GATED.value] else "partly applies")
            out.append(f"  {suite:42} {verdict:15} run {c[RUNS]}/{len(items)}"
                       + (f", not-supported {c[Outcome.NOT_SUPPORTED.value]}" if c[Outcome.NOT_SUPPORTED.value] else "")
                       + (f", gated {c[Outcome.GATED.value]}" if c[Outcome.GATED.value] else ""))
            reasons = collections.Counter((d.outcome, d.reason) for d in items if d.outcome != RUNS)
            for (outcome, reason), n in sorted(reasons.items()):
                out.append(f"      {outcome} x{n}: {reason}")
        out += ["", f"hazards on kernel {self.kernel_release}:"]
        for h in self.hazards:
            if not h.arcs and h.name != WARN_FROM_ERROR.name:
                out.append(f"  {h.name}: no arc of this flag set carries it")
                continue
            state = "GATED (never run)" if h.gated else f"runs (safe_on {list(h.safe_on)} matches)"
            arcs = (f" arcs {', '.join(h.arcs)};" if h.arcs else
                    " SETs from ERROR (random walks, consumer recovery);")
            out.append(f"  {h.name}: {state};{arcs} {h.reason}")
        if self.waivers:
            out += ["", "waivers:"]
            for index, test, n in self.waivers:
                note = "" if n else "  <- names no collected test of this profile"
                out.append(f"  known_issues[{index}] {test}: {n} test(s){note}")
        out.append("")
        return "\n".join(out)


def check_profile_file(name_or_path: str, kernel_release: str | None = None) -> CheckReport:
    """Load and check the profile (ConfigError: file:line: field), then decide every test."""
    profile = find_profile(name_or_path)
    check_profile(profile)
    release = kernel_release or os.uname().release
    decisions = decide(profile, release)
    waivers = [(k.index, k.test, sum(1 for d in decisions if k.matches(_test_name(d.nodeid))))
               for k in profile.known_issues]
    return CheckReport(profile, release, decisions, hazard_status(profile, release), waivers)


def hazard_status(profile: Profile, release: str) -> list[HazardStatus]:
    """Each hazard of the model: the arcs of the profile's flag set carrying it, gated or not here."""
    out = []
    for name in HAZARDS:
        hazard = MODEL_HAZARDS[name]
        arcs = tuple(dict.fromkeys(
            p.arc_id for cur in supported_states(profile.flags) for t in ARC_TARGETS
            for p in [plan(cur, t, profile.flags)] if p.hazard is not None and p.hazard.name == name))
        gate = next((g for g in profile.hazards if g.name == name), None)
        out.append(HazardStatus(name, hazard.reason, arcs if profile.protocol == "v2" else (),
                                gate.safe_on if gate else (), not profile.hazard_safe(name, release)))
    return out


def decide(profile: Profile, release: str) -> list[Decision]:
    """Collect the suites for `profile` (no device opened) and decide each test's fate."""
    collector = _Collector(profile, release)
    args = [str(SUITES_DIR), "--rootdir", str(SUITES_ROOT), "-c", str(SUITES_INI), "-p", "no:cacheprovider",
            "-p", "no:benchmark", "--collect-only", "-q", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) or collector.decisions is None:
        tail = " ".join(text.getvalue().strip().splitlines()[-3:])
        raise InfraError(f"collecting the suites failed (pytest exit {int(code)}): {tail}")
    return collector.decisions


class _Collector:
    """pytest plugin: hands the plugin a context for `profile` and reads the collected items."""

    def __init__(self, profile: Profile, release: str):
        self.profile, self.release = profile, release
        self.decisions: list[Decision] | None = None

    def pytest_configure(self, config) -> None:
        ids = self.profile.devices or ("<device>",)
        config.stash[CONTEXT_KEY] = VcContext({self.profile.name: Target(self.profile, ids)},
                                              self.release, "profile-check")

    @pytest.hookimpl(trylast=True)          # after the plugin's protocol gate marked the items
    def pytest_collection_modifyitems(self, config, items) -> None:
        transport = registry.get(self.profile.backend).transport
        self.decisions = [self._decide(item, transport) for item in items]

    def _decide(self, item, transport: str) -> Decision:
        suite = item.nodeid.split("::")[0]
        profile = item_param(item, "profile") or self.profile
        mark = item.get_closest_marker(SKIP_MARK)
        if mark is not None:
            outcome, reason, hazard = mark.args
            return Decision(item.nodeid, suite, outcome, reason, hazard)
        for req in item.iter_markers("vc_requires"):
            for need in req.args:
                if not has_need(profile, need):
                    return Decision(item.nodeid, suite, Outcome.NOT_SUPPORTED.value,
                                    f"profile lacks {need_name(need)}")
        why = not_on_transport(spec_ids(item), transport)
        if why:
            return Decision(item.nodeid, suite, Outcome.NOT_SUPPORTED.value, why)
        arc = item_param(item, "arc")
        if arc is not None and arc.hazard and not profile.hazard_safe(arc.hazard.name, self.release):
            return Decision(item.nodeid, suite, Outcome.GATED.value,
                            f"{arc.hazard.name}: kernel not listed in hazards.{arc.hazard.name}.safe_on",
                            arc.hazard.name)
        if "hook" in item.fixturenames and profile.verify == "none":
            return Decision(item.nodeid, suite, Outcome.NOT_SUPPORTED.value,
                            "no verify hook (verify: none)")
        return Decision(item.nodeid, suite, RUNS)


def _test_name(nodeid: str) -> str:
    return nodeid.rpartition("::")[2]
