"""Profile waivers (known_issues): checked against the suites, and accounted for in every run.

A waiver names one test function of the suites and one rule; `check_waivers` refuses one whose
function does not exist, and `WaiverLedger` counts, per run, the tests each waiver matched and
the failures it waived, stores that, and lists the waivers that waived nothing.
"""
from __future__ import annotations

import functools
from collections import Counter, defaultdict
from pathlib import Path

from ..base.constants import SUITES_DIR
from ..profile.schema import KnownIssue, Profile
from ..results import StoreError
from ..results.waivers import WaiverUse, record_waivers
from .classify import record_of
from ..targets.sourcescan import facts_of, shared_cache



@functools.lru_cache(maxsize=None)
def suite_functions(suites_dir: Path = SUITES_DIR) -> frozenset[str]:
    """Names of every test function defined in the suites (read from the source, nothing imported)."""
    names = set()
    for path in sorted(suites_dir.rglob("test_*.py")):
        names.update(facts_of(path).tests)       # parsed once per content (sourcescan.py)
    shared_cache().save()
    return frozenset(names)


def check_waivers(profile: Profile, suites_dir: Path = SUITES_DIR) -> None:
    """ConfigError (file:line: known_issues.N.test) for a waiver naming no test function of the suites."""
    known = suite_functions(suites_dir)
    for issue in profile.known_issues:
        if issue.function not in known:
            raise profile.error(f"known_issues.{issue.index}.test",
                                f"no test function {issue.function!r} in the suites",
                                f"test functions are listed by 'pytest {suites_dir} --collect-only -q'")


def waiver_message(issue: KnownIssue, violation: str) -> str:
    """What a known issue records: the violation itself, then the waiver's link and reason."""
    return f"{violation}\nknown issue, waived by known_issues[{issue.index}] ({issue.link}): {issue.reason}"


class WaiverLedger:
    """Counts matches and waived failures per (profile, waiver) on the controller."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.matched: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.waived: Counter = Counter()

    def pytest_runtest_logreport(self, report) -> None:
        rec = record_of(report)
        target = self.ctx.targets.get(rec.profile) if rec is not None else None
        if target is None:
            return
        for issue in target.profile.waivers_for(rec.test_id):
            self.matched[(target.profile.name, issue.index)].add(rec.test_id)
        if rec.waiver_index is not None:
            self.waived[(target.profile.name, rec.waiver_index)] += 1

    def uses(self, name: str) -> list[WaiverUse]:
        """Every waiver of profile `name` with its counts in this run."""
        return [WaiverUse(k.index, k.test, k.rule, k.link, k.reason,
                          len(self.matched[(name, k.index)]), self.waived[(name, k.index)])
                for k in self.ctx.targets[name].profile.known_issues]

    def pytest_sessionfinish(self, session) -> None:
        """Store each run's waivers (before the recorder closes the store at trylast)."""
        store = self.ctx.store
        if store is None:
            return
        for name, run_id in self.ctx.run_ids.items():
            try:
                record_waivers(store, run_id, self.uses(name))
            except StoreError:     # the store was lost: the lifecycle plugin marks the run incomplete
                return

    def pytest_terminal_summary(self, terminalreporter) -> None:
        lines = []
        for name, target in self.ctx.targets.items():
            for use in self.uses(name):
                if use.unused:
                    why = (f"its {use.matched} test(s) had no {use.rule} failure" if use.matched
                           else "no test run matched it")
                    line = target.profile.lines.get(f"known_issues.{use.index}", 1)
                    lines.append(f"{target.profile.path}:{line}: known_issues[{use.index}] "
                                 f"({use.test}, rule {use.rule}) waived nothing: {why}")
        if lines:
            terminalreporter.section("vfio-conform: unused waivers", sep="-")
            for line in lines:
                terminalreporter.write_line(line)
