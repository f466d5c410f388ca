"""The run's outputs for CI systems (controller only): environment capture at the start (stored
with each run), JUnit, KTAP and the Allure results from the records at the end.

Records reach the controller on the reports (xdist workers included); the recorder keeps the ones
it stored (`ResultRecorder.records`), so every output here agrees with the store.
"""
from __future__ import annotations

import socket

from ..outfile import check_dir, check_file
from ..results import Outcome, StoreError, TestRecord
from ..results.redact import redact_paths
from . import allure_results, junit, ktap
from .environment import capture

#: Which of several records of one test (e.g. a passing call, then a failing teardown) decides it.
SEVERITY = (Outcome.FAIL, Outcome.INFRA_ERROR, Outcome.KNOWN_ISSUE, Outcome.GATED,
            Outcome.NOT_SUPPORTED, Outcome.SKIPPED, Outcome.PASS)


def decisive(records: list[TestRecord]) -> list[TestRecord]:
    """One record per test (the most severe of its records), in the order tests first reported."""
    by_node: dict[str, TestRecord] = {}
    for rec in records:
        have = by_node.get(rec.nodeid)
        # on a tie the later record wins (a teardown's note on the outcome its call decided)
        if have is None or SEVERITY.index(rec.outcome) <= SEVERITY.index(have.outcome):
            by_node[rec.nodeid] = rec
    return list(by_node.values())


def check_outputs(config) -> None:
    """Refuse (ConfigError, one line) a JUnit, KTAP or Allure path that could not be written, before
    the first test; directories on the way may be created."""
    for option, what in (("vc_junit", "JUnit file"), ("vc_ktap", "KTAP file")):
        path = config.getoption(option, default=None)
        if path:
            check_file(path, what, create_parents=True)
    allure = config.getoption("vc_allure", default=None)
    if allure:
        check_dir(allure, "Allure results directory")


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
        self.allure_dir = config.getoption("vc_allure", default=None)
        self.traces: dict[str, str] = {}     # nodeid -> failure text (Allure's trace)
        self.outputs: dict[str, str] = {}    # nodeid -> captured stdout (an Allure attachment)

    def pytest_runtest_logreport(self, report) -> None:
        """The texts a record leaves out, kept only for the Allure results (few tests have any)."""
        if not self.allure_dir:
            return
        if report.failed:
            self.traces[report.nodeid] = "\n".join(filter(None, (self.traces.get(report.nodeid),
                                                                 redact_paths(report.longreprtext))))
        if report.capstdout:
            self.outputs[report.nodeid] = self.outputs.get(report.nodeid, "") + redact_paths(report.capstdout)

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
        if not (junit_path or ktap_path or self.allure_dir):
            return
        suites = self.suites()
        if junit_path:
            junit.write(junit_path, suites)
        if ktap_path:
            ktap.write(ktap_path, suites)
        if self.allure_dir:
            allure_results.write(self.allure_dir, self.allure_run(suites))

    def allure_run(self, suites: list[junit.SuiteInput]) -> allure_results.AllureRun:
        profiles = []
        for suite in suites:
            target = self.ctx.targets.get(suite.profile)
            prof = target.profile if target is not None else None
            profiles.append(allure_results.ProfileRun(
                suite.profile, suite.records, backend=prof.backend if prof else "",
                devices=tuple(target.device_ids) if target else (), driver=target.driver if target else "",
                flags=int(prof.flags) if prof else 0, environment=suite.environment, run_id=suite.run_id,
                waivers=tuple(prof.known_issues) if prof else ()))
        return allure_results.AllureRun(self.ctx.session, self.ctx.kernel_release, socket.gethostname(),
                                        profiles, self.traces, self.outputs)
