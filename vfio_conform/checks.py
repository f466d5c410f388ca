"""Assertions in the spec's words: each failure names its rule, the operation and errnos by name.

A rule of level `should` (model/spec.py) never fails a test: `expect` records the finding in
`SHOULD_NOT_MET` (and as a ShouldNotMet warning); the plugin drains it into the test's record.
"""
from __future__ import annotations

import warnings

from .errors import SpecViolation, errno_name
from .model.spec import RULES, SHOULD
from .uapi.enums import MigState

#: 'should' findings of the running test, oldest first (see drain_should_not_met).
SHOULD_NOT_MET: list[SpecViolation] = []


class ShouldNotMet(UserWarning):
    """A recommendation (a `should` rule) the device does not follow: reported, never a failure."""


def expect(condition: bool, rule_id: str, message: str, device=None, level: str | None = None) -> None:
    """Raise SpecViolation(rule_id) with `message` unless `condition` holds.

    For a `should` rule (or `level="should"`) the finding is recorded instead of raised;
    `level="must"` makes a `should` rule binding (a profile that promises the recommended behaviour).
    """
    if condition:
        return
    violation = SpecViolation(rule_id, message, getattr(device, "name", device))
    rule = RULES.get(rule_id)
    if (level or (rule.level if rule else "must")) == SHOULD:
        SHOULD_NOT_MET.append(violation)
        warnings.warn(str(violation), ShouldNotMet, stacklevel=2)
        return
    raise violation


def drain_should_not_met() -> list[SpecViolation]:
    """The 'should' findings recorded since the last drain (the list is emptied)."""
    found = list(SHOULD_NOT_MET)
    SHOULD_NOT_MET.clear()
    return found


def expect_errno(got: int, want: int, rule_id: str, operation: str, device=None) -> None:
    """The operation must end with errno `want` (0 = success)."""
    expect(got == want, rule_id,
           f"{operation}: expected {errno_name(want)}, got {errno_name(got)}", device)


def expect_state(device, want: int, rule_id: str, context: str) -> None:
    """GET MIG_DEVICE_STATE must succeed and report `want`."""
    code, state, _ = device.get_state_raw()
    expect(code == 0, rule_id, f"{context}: GET MIG_DEVICE_STATE failed with {errno_name(code)}", device)
    expect(state == want, rule_id,
           f"{context}: GET reports {MigState.label(state)}, expected {MigState.label(want)}", device)
