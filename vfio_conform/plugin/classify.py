"""A failed phase's outcome, a report's message, and the one place a TestRecord rides on a report."""
from __future__ import annotations

import pytest

from ..base.errors import SpecViolation, UapiError
from ..model.spec import RULES, SHOULD
from ..results import Outcome, TestRecord
from ..results.model import SHOULD_NOT_MET
from ..results.redact import redact_paths

__all__ = ["SHOULD_NOT_MET", "RECORD_KEY", "attach", "record_of", "failure_outcome", "short_message"]

#: The user_properties key of the record (a plain dict: xdist ships reports between processes).
RECORD_KEY = "vc_record"
#: item.stash key: the root cause (results.rootcause) a test's teardown hit after another test
#: reported it (set by the device fixtures, read when the teardown's report is made).
SPOILED_KEY = pytest.StashKey[str]()


def attach(item, report, rec: TestRecord) -> None:
    """Put `rec` on the report that decided it, and its fields as JUnit properties of the testcase.

    JUnit writes the properties of a test's teardown report (the item's list), so the flat fields go
    to the item; the dict goes only to this report, which the controller's listeners read.
    """
    item.user_properties.extend(rec.properties())
    report.user_properties = [*item.user_properties, (RECORD_KEY, rec.to_dict())]


def record_of(report) -> TestRecord | None:
    """The record a report carries (None for a report that decided nothing).

    The listeners of one report (recorder, progress, waivers, perf, Allure) each ask in turn: the
    record is made once per carried dict and shared (no reader changes a record)."""
    props = report.user_properties
    if props and props[-1][0] == RECORD_KEY:       # where attach() puts it
        value = props[-1][1]
    else:
        value = next((v for key, v in props if key == RECORD_KEY), None)
        if value is None:
            return None
    if value is not _LAST[0]:
        _LAST[:] = value, TestRecord.from_dict(value)
    return _LAST[1]


#: The dict record_of read last and its record (the dict held, so its identity names no other).
_LAST: list = [None, None]


def failure_outcome(excinfo, when: str) -> tuple[Outcome, str]:
    """A failed phase: a spec finding in the call phase, or a rule the device broke while a fixture
    set it up or recovered it (SpecViolation in any phase), is FAIL; anything else is an infra error."""
    if excinfo is None:
        return Outcome.FAIL, ""
    found = _findings(excinfo.value)
    rule = found[0].rule_id if found else ""
    if rule or (when == "call" and excinfo.errisinstance((AssertionError, UapiError))):
        return Outcome.FAIL, rule
    return Outcome.INFRA_ERROR, rule


def unattributed_rule(checked) -> tuple[str, bool]:
    """The rule an unattributed failure (an errno or assertion of the call phase) counts against:
    the first `must` rule the test checks, and False; or, when it checks only `should` rules, the
    first of them and True (a recommendation never fails a test, whatever the test raised)."""
    checked = [r for r in checked if r in RULES]
    must = [r for r in checked if RULES[r].level != SHOULD]
    if must or not checked:
        return (must[0] if must else ""), False
    return checked[0], True


def should_finding(rule_id: str, excinfo) -> SpecViolation:
    """The 'should not met' finding for a should-only test that raised `excinfo`."""
    what = str(excinfo.value).split("\n")[0] if excinfo is not None else "the test raised"
    return SpecViolation(rule_id, f"could not be shown met: {what}")


def _findings(exc: BaseException) -> list[SpecViolation]:
    """The SpecViolations `exc` is (several fixtures' teardowns come as one group): all or none."""
    if isinstance(exc, SpecViolation):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        leaves = [leaf for sub in exc.exceptions for leaf in _findings(sub)]
        return leaves if leaves and len(leaves) == _count_leaves(exc) else []
    return []


def _count_leaves(exc: BaseException) -> int:
    if isinstance(exc, BaseExceptionGroup):
        return sum(_count_leaves(sub) for sub in exc.exceptions)
    return 1


def short_message(report) -> str:
    """The first meaningful line(s) of a report's failure or skip text, without this machine's
    absolute paths (results/redact.py: Hypothesis' explanations name source files by path)."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):
        return redact_paths(str(longrepr[2]))
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    return redact_paths(crash or str(longrepr)[-2000:])
