"""The run's outputs for CI systems (controller only): environment capture at the start (stored
with each run), JUnit and KTAP from the records at the end, and the Allure run files at the start
(each test's Allure result is written by the process that ran it as it ends: allure_listener.py).

Records reach the controller on the reports (xdist workers included); the recorder keeps the ones
it stored (`ResultRecorder.records`), so every output here agrees with the store.
"""
from __future__ import annotations

import os
import socket

import pytest

from ..base.constants import HOST_ENV
from ..base.outfile import check_dir, check_file
from ..results import Outcome, StoreError, TestRecord
from ..results.redact import redact_paths
from ..outputs import junit, ktap
from . import classify
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


def run_host(ctx) -> str:
    """The host a run belongs to: the context's (the store's --host) when it has one, else what the
    store records for the run (the environment's host name, else this machine's name)."""
    return getattr(ctx, "host", "") or os.environ.get(HOST_ENV) or socket.gethostname()


def allure_wanted(config) -> str | None:
    """The Allure results directory of the run (--vc-allure), or None."""
    return config.getoption("vc_allure", default=None) or None


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
        self.host = run_host(ctx)
        self.allure_dir = allure_wanted(config)
        self.run_files_written = False
        #: with xdist the tests run in workers, which write their own Allure results; this process
        #: writes only the verdicts no worker could (a worker that died in a test)
        self.lost_logger = None

    @pytest.hookimpl(trylast=True)          # after the recorder made the record of a lost verdict
    def pytest_runtest_logreport(self, report) -> None:
        if not self.allure_dir or not report.failed or classify.record_of(report) is not None:
            return
        if not self.config.pluginmanager.has_plugin("dsession"):    # no xdist: the listener has it
            return
        recs = self.recorder.records
        if not recs or recs[-1].nodeid != report.nodeid:
            return
        from ..outputs import allure_results
        self.lost_logger = self.lost_logger or allure_results.ResultsWriter(self.allure_dir)
        run = self.allure_run(self.suites())
        prof = next((p for p in run.profiles if p.name == recs[-1].profile), None)
        if prof is not None:
            extras = allure_results.TestExtras(trace=redact_paths(report.longreprtext))
            allure_results.write_result(self.lost_logger, allure_results.result(recs[-1], prof, run, extras))

    def suites(self) -> list[junit.SuiteInput]:
        per_profile: dict[str, list[TestRecord]] = {name: [] for name in self.ctx.targets}
        for rec in self.recorder.records:
            per_profile.setdefault(rec.profile, []).append(rec)
        selection = getattr(self.recorder.lifecycle, "selection", None)
        return [junit.SuiteInput(name, decisive(recs), self.environments.get(name),
                                 self.ctx.run_ids.get(name), self.ctx.session, self.host,
                                 _label(selection, name))
                for name, recs in per_profile.items()]

    def write_run_files(self) -> None:
        """The run's Allure files (environment.properties, ...) before any test, so a killed run's
        results have them. Called once the SIGTERM handler is up; a SIGTERM meanwhile is acted on
        at the next test boundary (the run ends terminated, said in one line), and a write that
        fails is tried again, and said, at the session's end."""
        if not self.allure_dir:
            return
        from ..outputs import allure_results
        from ..base.interrupts import deferred, terminated
        try:
            with deferred():
                allure_results.write_run_files(self.allure_dir, self.allure_run(self.suites()), terminated)
        except OSError:
            return
        self.run_files_written = True

    def pytest_sessionfinish(self, session) -> None:
        if self.lost_logger is not None:
            self.lost_logger.close()
        junit_path = self.config.getoption("vc_junit")
        ktap_path = self.config.getoption("vc_ktap")
        from ..base.interrupts import terminated
        allure = self.allure_dir and not self.run_files_written and not terminated()   # export rebuilds them
        if not (junit_path or ktap_path or allure):
            return
        suites = self.suites()
        if junit_path:
            junit.write(junit_path, suites, rich=bool(self.config.getoption("vc_junit_properties", False)))
        if ktap_path:
            ktap.write(ktap_path, suites)
        if allure:              # the first write failed (or never came): again, said here if it fails
            from ..outputs import allure_results
            allure_results.write_run_files(self.allure_dir, self.allure_run(suites))

    def allure_run(self, suites: list[junit.SuiteInput]):
        """The session for the Allure files: its host, and per profile what ran it."""
        from ..outputs import allure_results
        profiles = []
        for suite in suites:
            target = self.ctx.targets.get(suite.profile)
            prof = target.profile if target is not None else None
            profiles.append(allure_results.ProfileRun(
                suite.profile, suite.records, backend=prof.backend if prof else "",
                devices=tuple(target.device_ids) if target else (), driver=target.driver if target else "",
                flags=int(prof.flags) if prof else 0, environment=suite.environment, run_id=suite.run_id,
                waivers=tuple(prof.known_issues) if prof else ()))
        return allure_results.AllureRun(self.ctx.session, self.ctx.kernel_release, self.host, profiles)


def _label(selection, profile: str) -> str:
    """'subset 24/231' or 'complete 231/231' for the JUnit and KTAP headers ('' when not known)."""
    sel = selection.of(profile) if selection is not None else None
    return sel.label() if sel is not None else ""
