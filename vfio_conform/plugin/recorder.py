"""Writes every verdict to the result store as it arrives (controller only; workers send reports)."""
from __future__ import annotations

import pytest

from ..results import Outcome, TestRecord
from . import classify


class ResultRecorder:
    """Registered in pytest_configure when a store is open."""

    def __init__(self, ctx):
        self.ctx = ctx

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        run_id = self.ctx.run_ids.get(props.get("vc_profile"))
        if "vc_outcome" not in props or run_id is None:
            return
        message = (getattr(report, "wasxfail", "") or classify.short_message(report)
                   or props.get("vc_note", ""))
        self.ctx.store.record(run_id, TestRecord(
            nodeid=report.nodeid, test_id=props["vc_test_id"], outcome=Outcome(props["vc_outcome"]),
            duration=report.duration, message=message, rule=props.get("vc_rule", ""),
            link=props.get("vc_link", "")))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        status = "interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "finished"
        for run_id in self.ctx.run_ids.values():
            self.ctx.store.end_run(run_id, status)
        self.ctx.store.close()
