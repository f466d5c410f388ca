"""Writes every verdict to the result store as it arrives (controller only; workers send reports)."""
from __future__ import annotations

from typing import Callable

import pytest

from ..results import Outcome, StoreError, TestRecord
from . import classify
from .lifecycle import sigterm_deferred


class ResultRecorder:
    """Registered in pytest_configure (controller); `lifecycle` counts what ran, `ctx.store` keeps it."""

    def __init__(self, ctx, lifecycle):
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.records: list[TestRecord] = []     # every verdict of the run (JUnit, KTAP read them)
        #: called with (run id, record) after each record the store kept (e.g. the store mirror)
        self.listeners: list[Callable[[int, TestRecord], None]] = []

    def pytest_runtest_logreport(self, report) -> None:
        rec = classify.record_of(report)
        if rec is None:
            profile = self._lost_verdict(report)
            if profile is None:
                return
            rec = TestRecord(nodeid=report.nodeid, test_id=report.nodeid.rpartition("::")[2],
                             outcome=Outcome.INFRA_ERROR, duration=report.duration,
                             message=classify.short_message(report), profile=profile)
        self.lifecycle.seen(rec.profile, report.nodeid, rec.outcome.value)
        self.records.append(rec)
        run_id = self.ctx.run_ids.get(rec.profile)
        if self.ctx.store is None or run_id is None or self.lifecycle.store_error:
            return
        try:
            with sigterm_deferred():
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
        param = report.nodeid.rpartition("[")[2]
        for name in sorted(self.ctx.targets, key=len, reverse=True):
            if param.startswith((f"{name}:", f"{name}]")):
                return name
        return None
