"""A log read around every test: armed before the setup, searched after the teardown.

The kernel log (kmsg.py) and the user-space servers' logs (sanitizers.py) are watched the same way:
before a test's setup each log is read to its end (what came before is not this test's); after its
teardown the new text is searched, and what was found fails the test as a `SpecViolation`. When
the teardown itself failed, a `SpecViolation` or an exception group keeps both findings in one
group, and any other error is chained under the log's finding (the driver's report is the cause).
A subclass says what to arm and what a finding is; the hooks are this class's.
"""
from __future__ import annotations

import pytest

from ..base.errors import SpecViolation


class AroundTestWatch:
    """pytest plugin base: `arm(item)` before each test, `finding(item)` after its teardown."""

    #: what is watched, in the name of the exception group that keeps two findings
    watched = "log"

    def arm(self, item) -> None:
        raise NotImplementedError

    def finding(self, item) -> SpecViolation | None:
        raise NotImplementedError

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item) -> None:
        self.arm(item)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item, nextitem):
        try:
            result = yield
        except Exception as exc:
            finding = self.finding(item)
            if finding is None:
                raise
            if isinstance(exc, (SpecViolation, BaseExceptionGroup)):    # both findings are kept
                raise BaseExceptionGroup(f"teardown and {self.watched}", [exc, finding]) from None
            raise finding from exc      # the log's report is the cause: a fail, the error chained
        finding = self.finding(item)
        if finding is not None:
            raise finding
        return result
