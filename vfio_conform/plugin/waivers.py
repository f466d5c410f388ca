"""Profile waivers (known_issues): checked against the suites, and accounted for in every run.

A waiver names one test function of the suites and one rule; `check_waivers` refuses one whose
function does not exist, and `WaiverLedger` counts, per run, the tests each waiver matched and
the failures it waived, stores that, and lists the waivers that waived nothing.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from ..results import StoreError
from ..results.waivers import WaiverUse, record_waivers
from .classify import record_of



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
