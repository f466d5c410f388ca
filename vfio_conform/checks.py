"""Assertions in the spec's words: each failure names its rule, the operation and errnos by name."""
from __future__ import annotations

from .errors import SpecViolation, errno_name
from .uapi.enums import MigState


def expect(condition: bool, rule_id: str, message: str, device=None) -> None:
    """Raise SpecViolation(rule_id) with `message` unless `condition` holds."""
    if not condition:
        raise SpecViolation(rule_id, message, getattr(device, "name", device))


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
