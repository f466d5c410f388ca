"""Writes every verdict to the result store as it arrives (controller only; workers send reports)."""
from __future__ import annotations

import pytest

from ..results import Outcome, StoreError, TestRecord
from . import classify
from .lifecycle import sigterm_deferred


class ResultRecorder:
    """Registered in pytest_configure (controller); `lifecycle` counts what ran, `ctx.store` keeps it."""

    def __init__(self, ctx, lifecycle):
        self.ctx = ctx
        self.lifecycle = lifecycle

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        profile = props.get("vc_profile")
        if "vc_outcome" not in props:
            profile = self._lost_verdict(report)
            if profile is None:
                return
            props.update(vc_test_id=report.nodeid.rpartition("::")[2], vc_outcome=Outcome.INFRA_ERROR.value)
        self.lifecycle.seen(profile, report.nodeid, props["vc_outcome"])
        run_id = self.ctx.run_ids.get(profile)
        if self.ctx.store is None or run_id is None or self.lifecycle.store_error:
            return
        message = (getattr(report, "wasxfail", "") or classify.short_message(report)
                   or props.get("vc_note", ""))
        try:
            with sigterm_deferred():
                self.ctx.store.record(run_id, TestRecord(
                    nodeid=report.nodeid, test_id=props["vc_test_id"],
                    outcome=Outcome(props["vc_outcome"]),
                    duration=report.duration, message=message, rule=props.get("vc_rule", ""),
                    link=props.get("vc_link", "")))
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
