"""The run's outputs for CI systems (controller only): environment capture at the start (stored
with each run, Allure's environment and executor files), JUnit and KTAP from the records at the end.

Records reach the controller on the reports (xdist workers included); the recorder keeps the ones
it stored (`ResultRecorder.records`), so every output here agrees with the store.
"""
from __future__ import annotations

import socket

from ..results import Outcome, StoreError, TestRecord
from . import junit, ktap
from .allure_meta import write_run_files
from .environment import capture

#: Which of several records of one test (e.g. a passing call, then a failing teardown) decides it.
SEVERITY = (Outcome.FAIL, Outcome.INFRA_ERROR, Outcome.KNOWN_ISSUE, Outcome.GATED,
            Outcome.NOT_SUPPORTED, Outcome.SKIPPED, Outcome.PASS)


def decisive(records: list[TestRecord]) -> list[TestRecord]:
    """One record per test (the most severe of its records), in the order tests first reported."""
    by_node: dict[str, TestRecord] = {}
    for rec in records:
        have = by_node.get(rec.nodeid)
        if have is None or SEVERITY.index(rec.outcome) < SEVERITY.index(have.outcome):
            by_node[rec.nodeid] = rec
    return list(by_node.values())


class CiOutputs:
    """Registered in pytest_configure (controller) after the store is opened."""

    def __init__(self, config, ctx, recorder):
        self.config, self.ctx, self.recorder = config, ctx, recorder
        self.environments = capture(ctx)
        store = ctx.store
        for name, run_id in ctx.run_ids.items():
            if store is not None and name in self.environments:
                try:
                    store.set_environment(run_id, self.environments[name])
                except StoreError:      # the run's end reports the lost store
                    break
        write_run_files(config, ctx, self.environments)

    def suites(self) -> list[junit.SuiteInput]:
        per_profile: dict[str, list[TestRecord]] = {name: [] for name in self.ctx.targets}
        for rec in self.recorder.records:
            per_profile.setdefault(rec.profile, []).append(rec)
        host = socket.gethostname()
        return [junit.SuiteInput(name, decisive(recs), self.environments.get(name),
                                 self.ctx.run_ids.get(name), self.ctx.session, host)
                for name, recs in per_profile.items()]

    def pytest_sessionfinish(self, session) -> None:
        junit_path = self.config.getoption("vc_junit")
        ktap_path = self.config.getoption("vc_ktap")
        if not (junit_path or ktap_path):
            return
        suites = self.suites()
        if junit_path:
            junit.write(junit_path, suites)
        if ktap_path:
            ktap.write(ktap_path, suites)
