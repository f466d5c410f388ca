"""Writes every verdict to the result store as it arrives (controller only; workers send reports)."""
from __future__ import annotations

from typing import Callable

import pytest

from ..results import Outcome, StoreError, TestRecord
from . import classify
from ..results.keys import strip_profile
from ..base.interrupts import deferred
from .selection import profile_of, strip_group


class ResultRecorder:
    """Registered in pytest_configure (controller); `lifecycle` counts what ran, `ctx.store` keeps it."""

    def __init__(self, ctx, lifecycle):
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.records: list[TestRecord] = []     # every verdict of the run (JUnit, KTAP read them)
        #: called with (run id, record) after each record the store kept (e.g. the store mirror)
        self.listeners: list[Callable[[int, TestRecord], None]] = []

    def pytest_runtest_logreport(self, report) -> None:
        if getattr(report, "vc_crash_recorded", False):     # workers.WorkerWatch recorded it
            return
        rec = classify.record_of(report)
        if rec is None:
            profile = self._lost_verdict(report)
            if profile is None:
                return
            test_id = strip_group(report.nodeid).rpartition("::")[2]
            rec = TestRecord(nodeid=report.nodeid, test_id=test_id,
                             outcome=Outcome.INFRA_ERROR, duration=report.duration,
                             message=classify.short_message(report), profile=profile,
                             test_key=strip_profile(test_id, profile))
        self.keep(rec)

    def keep(self, rec: TestRecord) -> None:
        """Count, keep and store one record (also a record built outside a report: a lost test)."""
        self.lifecycle.seen(rec.profile, rec.nodeid, rec.outcome.value)
        self.records.append(rec)
        run_id = self.ctx.run_ids.get(rec.profile)
        if self.ctx.store is None or run_id is None or self.lifecycle.store_error:
            return
        try:
            with deferred():
                self.ctx.store.record(run_id, rec)
                for listener in self.listeners:
                    listener(run_id, rec)
        except StoreError as exc:
            self.lifecycle.store_lost(exc)
            pytest.exit(f"vfio-conform: {exc}; stopping (the run is incomplete)",
                        returncode=pytest.ExitCode.INTERRUPTED)     # the plugin maps it to 3

    def _lost_verdict(self, report) -> str | None:
        """A failed report that carries no verdict (e.g. an xdist worker crashed in the test):
        the profile its test id names, so it is recorded as an infra-error, never dropped."""
        if not report.failed:
            return None
        return profile_of(report.nodeid, self.ctx.targets)
