"""What one `vfio-conform run` (or `lab run`) ended with, per profile: counts, verdict, where the reports are.

Built in-process from the plugin's run state (works without a store too) or from stored runs
(`results --json`, the lab after importing its guest's runs). Rendered by summary_table (text) and
json_summary (the machine-readable document).
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Iterable

from ..base.build import harness_build
from ..base.exitcodes import Exit, verdict as exit_verdict
from ..base.verdicts import Verdict
from ..results import Outcome, RunStatus, describe_reason

#: The outcome columns of the table, in the CLI's words (a `skipped` column is added only when used).
TABLE_OUTCOMES = (Outcome.PASS.value, Outcome.FAIL.value, Outcome.NOT_SUPPORTED.value,
                  Outcome.KNOWN_ISSUE.value, Outcome.GATED.value, Outcome.INFRA_ERROR.value)
#: Every outcome a count is kept for (the JSON document lists each, zeros included).
ALL_OUTCOMES = tuple(o.value for o in Outcome)


_BY_EXIT = {Exit.CONFORMANT: Verdict.CONFORMANT, Exit.NONCONFORMANT: Verdict.NON_CONFORMANT}


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    """Files of one run; None when not written (no store: no HTML) or not on this host."""

    html: str | None = None
    junit: str | None = None
    allure: str | None = None
    json: str | None = None


@dataclasses.dataclass(frozen=True)
class ProfileSummary:
    """One profile's run: what ran where, how many of each outcome, how it ended."""

    profile: str
    devices: tuple[str, ...]
    kernel: str
    counts: dict[str, int]
    status: str
    reason: str = ""
    run_id: int | None = None
    session: str = ""
    reports: ReportPaths = ReportPaths()
    #: distinct defects behind the failures (results/rootcause.py); None when not counted
    root_causes: int | None = None
    performance: dict | None = None     # plugin/perf.py Performance.as_dict() (None: not measured)
    selected: int | None = None     # tests of the profile's suite the run selected (None: not recorded)
    suite_total: int | None = None  # tests in the profile's whole suite (None: not counted)
    host: str = ""                  # the host the run is stored under
    harness_build: str = ""         # vfio_conform.base.build.HarnessBuild as text

    @property
    def complete(self) -> bool:
        """The run selected the profile's whole suite (runs stored before this was kept count as complete)."""
        if self.selected is None:
            return True
        return self.suite_total is not None and self.selected >= self.suite_total

    @property
    def verdict(self) -> Verdict:
        """Same rule as the exit code: a fail is NON-CONFORMANT even in an unfinished run; an
        infra-error, a not-run test or an unfinished run is INCOMPLETE; a conformant subset of the
        suite is CONFORMANT-SUBSET."""
        outcomes = [name for name, n in self.counts.items() if n]
        word = _BY_EXIT.get(exit_verdict(outcomes, self.status == RunStatus.FINISHED.value),
                            Verdict.INCOMPLETE)
        return Verdict.CONFORMANT_SUBSET if word is Verdict.CONFORMANT and not self.complete else word

    @property
    def subset_text(self) -> str:
        """'subset 24/231' for a run that did not select the whole suite, else ''."""
        if self.complete:
            return ""
        return f"subset {self.selected}/{self.suite_total if self.suite_total is not None else '?'}"

    @property
    def verdict_text(self) -> str:
        """The verdict as people read it: 'CONFORMANT (subset 24/231)', never the bare word for a subset."""
        word = self.verdict
        if word is Verdict.CONFORMANT_SUBSET:
            return f"{Verdict.CONFORMANT.value} ({self.subset_text})"
        return word.value + (f" ({self.subset_text})" if self.subset_text else "")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def reason_text(self) -> str:
        return describe_reason(self.reason) if self.reason else ""


def full_counts(counts: dict[str, int]) -> dict[str, int]:
    """Every outcome with its count (0 when absent); unknown names kept after the known ones."""
    out = {name: int(counts.get(name, 0)) for name in ALL_OUTCOMES}
    out.update({k: int(v) for k, v in counts.items() if k not in out})
    return out


def overall(profiles: Iterable[ProfileSummary]) -> Verdict:
    """The verdict of several profiles: NON-CONFORMANT beats INCOMPLETE beats CONFORMANT-SUBSET
    beats CONFORMANT."""
    seen = {p.verdict for p in profiles}
    for v in (Verdict.NON_CONFORMANT, Verdict.INCOMPLETE, Verdict.CONFORMANT_SUBSET):
        if v in seen:
            return v
    return Verdict.CONFORMANT if seen else Verdict.INCOMPLETE


def from_plugin(ctx, lifecycle, reports: ReportPaths, performance: dict | None = None) -> list[ProfileSummary]:
    """Per profile of a finished pytest session: the plugin's context and RunLifecycle (and the
    per-profile performance the plugin measured)."""
    out = []
    for name, target in ctx.targets.items():
        status, reason = lifecycle.statuses.get(name, (RunStatus.INCOMPLETE.value, "crashed"))
        sel = lifecycle.selection.of(name) if lifecycle.selection is not None else None
        out.append(ProfileSummary(
            profile=name, devices=tuple(target.device_ids), kernel=ctx.kernel_release,
            counts=full_counts(dict(lifecycle.outcomes.get(name, {}))), status=status, reason=reason,
            run_id=ctx.run_ids.get(name), session=ctx.session, reports=reports,
            performance=(performance or {}).get(name),
            selected=len(sel.selected) if sel is not None else None,
            suite_total=sel.total if sel is not None else None, host=ctx.host,
            harness_build=str(harness_build())))
    return out


def from_store(store, runs: list[dict], reports: ReportPaths | None = None) -> list[ProfileSummary]:
    """Per stored run (rows of store.runs()/store.run()); report paths from `reports` or, if not
    given, the JUnit and Allure paths on the run's command line that exist on this host."""
    return [ProfileSummary(
        profile=run["profile"], devices=tuple(d for d in (run.get("devices") or "").split(",") if d),
        kernel=run.get("kernel") or "", counts=full_counts(store.summary(run["id"])),
        status=run.get("status") or "", reason=run.get("reason") or "", run_id=int(run["id"]),
        session=run.get("session") or "", reports=reports or paths_of_run(run),
        performance=_stored_performance(run),
        selected=run.get("selected_tests"), suite_total=run.get("suite_tests"),
        host=run.get("host") or "", harness_build=run.get("harness_build") or run.get("harness_version") or "")
        for run in runs]


def _stored_performance(run: dict) -> dict | None:
    """The performance kept in the run's environment record (None for a run without one)."""
    from ..results.environment import of_run
    env = of_run(run)
    if env is None or not env.performance:
        return None
    try:
        return json.loads(env.performance)
    except ValueError:
        return None


def paths_of_run(run: dict) -> ReportPaths:
    """Report paths of a stored run: its recorded outputs, else (older stores) its command line."""
    try:
        outputs = json.loads(run.get("outputs") or "{}")
    except ValueError:
        outputs = {}
    if not outputs.get("junit"):
        return paths_from_argv(run.get("argv") or "")
    beside = Path(outputs["junit"]).parent
    return ReportPaths(html=_existing(beside / "report.html"), junit=_existing(outputs["junit"]),
                       allure=_existing(outputs.get("allure")), json=_existing(beside / "summary.json"))


def paths_from_argv(argv: str) -> ReportPaths:
    """Report paths an older stored run's pytest command line names (--vc-junit or --junitxml,
    --vc-allure or --alluredir) and the report.html / summary.json beside its JUnit file, each only if
    it exists here."""
    try:
        words = shlex.split(argv)
    except ValueError:
        words = argv.split()
    junit = _option(words, "--vc-junit") or _option(words, "--junitxml")
    allure = _option(words, "--vc-allure") or _option(words, "--alluredir")
    beside = Path(junit).parent if junit else None
    return ReportPaths(
        html=_existing(beside / "report.html") if beside else None, junit=_existing(junit),
        allure=_existing(allure), json=_existing(beside / "summary.json") if beside else None)


def _option(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.partition("=")[2]
    return None


def _existing(path) -> str | None:
    return str(path) if path and Path(path).exists() else None
