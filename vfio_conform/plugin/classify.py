"""Turn a pytest report into one of the result outcomes (pass/fail/not-supported/known-issue/...)."""
from __future__ import annotations

from ..errors import SpecViolation, UapiError
from ..results import Outcome

#: Skip-reason prefixes the suites and plugin use; anything else is a plain skip.
NOT_SUPPORTED = "not-supported: "
GATED = "gated: "
BROKEN = "infra-error: "
#: Message prefix of a passing test that did not follow a `should` rule (see checks.expect).
SHOULD_NOT_MET = "should not met: "


def skip_outcome(reason: str) -> Outcome:
    reason = reason.removeprefix("Skipped: ")
    if reason.startswith(NOT_SUPPORTED):
        return Outcome.NOT_SUPPORTED
    if reason.startswith(GATED):
        return Outcome.GATED
    if reason.startswith(BROKEN):
        return Outcome.INFRA_ERROR
    return Outcome.SKIPPED


def failure_outcome(excinfo, when: str) -> tuple[Outcome, str]:
    """A failed phase: a spec finding in the call phase, or a rule the device broke while a fixture
    set it up or recovered it (SpecViolation in any phase), is FAIL; anything else is an infra error."""
    if excinfo is None:
        return Outcome.FAIL, ""
    rule = excinfo.value.rule_id if isinstance(excinfo.value, SpecViolation) else ""
    if rule or (when == "call" and excinfo.errisinstance((AssertionError, UapiError))):
        return Outcome.FAIL, rule
    return Outcome.INFRA_ERROR, rule


def short_message(report) -> str:
    """The first meaningful line(s) of a report's failure or skip text."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    return crash or str(longrepr)[-2000:]
