"""Assertions in the spec's words: each failure names its rule, the operation and errnos by name.

Every rule id is checked against the catalogue on every call (pass or fail), so a misspelt id is a
harness error the first time the line runs, not a silently mislabelled finding; the plugin also
checks the ids a suite spells out at collection time (plugin/rulecheck.py).

A rule of level `should` (model/spec.py) never fails a test: `expect` records the finding in
`SHOULD_NOT_MET` (and as a ShouldNotMet warning); the plugin drains it into the test's record.
"""
from __future__ import annotations

import warnings

from ..base.errors import InfraError, SpecViolation, errno_name
from ..model.spec import RULES, SHOULD
from ..uapi.enums import MigState

#: 'should' findings of the running test, oldest first (see drain_should_not_met).
SHOULD_NOT_MET: list[SpecViolation] = []

class UnknownRule(InfraError, KeyError):
    """A suite named a rule id the catalogue (model/spec.py) does not have: a harness bug."""

    def __init__(self, rule_id: str):
        self.rule_id = rule_id
        super().__init__(f"unknown rule id {rule_id!r}: not in the catalogue (vfio_conform/model/spec.py)")

    def __str__(self) -> str:
        return self.args[0]


def known_rule(rule_id: str) -> str:
    """`rule_id` itself if the catalogue has it; else UnknownRule (a harness error)."""
    if rule_id not in RULES:
        raise UnknownRule(rule_id)
    return rule_id


class ShouldNotMet(UserWarning):
    """A recommendation (a `should` rule) the device does not follow: reported, never a failure."""


def expect(condition: bool, rule_id: str, message: str, device=None, level: str | None = None) -> None:
    """Raise SpecViolation(rule_id) with `message` unless `condition` holds.

    For a `should` rule (or `level="should"`) the finding is recorded instead of raised;
    `level="must"` makes a `should` rule binding (a profile that promises the recommended behaviour).
    """
    rule = RULES[known_rule(rule_id)]
    if condition:
        return
    violation = SpecViolation(rule_id, message, getattr(device, "name", device))
    if (level or rule.level) == SHOULD:
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
    """GET MIG_DEVICE_STATE must succeed (fsm.get-state-ok) and report `want` (`rule_id`)."""
    known_rule(rule_id)
    code, state, _ = device.get_state_raw()
    expect(code == 0, "fsm.get-state-ok", f"{context}: GET MIG_DEVICE_STATE failed with {errno_name(code)}",
           device)
    expect(state == want, rule_id,
           f"{context}: GET reports {MigState.label(state)}, expected {MigState.label(want)}", device)


def read_state(device, context: str) -> int:
    """GET MIG_DEVICE_STATE, which must succeed (fsm.get-state-ok); the raw state value."""
    code, state, _ = device.get_state_raw()
    expect(code == 0, "fsm.get-state-ok", f"{context}: GET MIG_DEVICE_STATE failed with {errno_name(code)}",
           device)
    return state


def not_on_transport(rule_ids, transport: str) -> str | None:
    """Why a test checking `rule_ids` cannot run on `transport` (None: it can).

    A test is not-supported when one of its rules needs something the transport does not offer
    (a feature or message the transport's specification lacks: `Rule.not_offered`), or when none of
    its rules applies to the transport (e.g. the kernel data fd's O_CLOEXEC on a vfio-user device);
    otherwise it runs.
    """
    ids = [known_rule(r) for r in rule_ids]
    absent = [(r, RULES[r].absent_on(transport)) for r in ids if RULES[r].absent_on(transport)]
    if absent:
        reasons = dict.fromkeys(why for _, why in absent)
        return f"rule(s) {', '.join(r for r, _ in absent)}: " + "; ".join(reasons)
    if not ids or any(RULES[r].applies_to(transport) for r in ids):
        return None
    return (f"rule(s) {', '.join(ids)} are about the kernel's data fd; this device's transport "
            f"moves migration data as {transport}")
