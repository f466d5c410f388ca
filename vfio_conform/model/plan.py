"""What a SET of the migration state must do: path, data_fd, errno, state afterwards, hazards."""
from __future__ import annotations

import dataclasses
import errno as _errno

from ..uapi.enums import MigState
from .fsm import SESSION_OPENING_ARCS, BlockedArc, next_step, supports


@dataclasses.dataclass(frozen=True)
class Hazard:
    """A request that can hang or oops a kernel; run it only where the profile says it is safe."""

    name: str
    reason: str


#: STOP_COPY -> PRE_COPY(_P2P): spins forever in vfio_mig_get_next_state() on 6.2..6.12 without the fix.
HANG_BLOCKED_ARC = Hazard(
    "blocked-arc-hang",
    "STOP_COPY -> PRE_COPY(_P2P) spins in the kernel on 6.2-6.12 builds without the 2026 "
    "vfio_mig_get_next_state() fix (spec: EINVAL)",
)
#: Any SET while the device is in ERROR (or another state its flags lack) trips WARN_ON in the core
#: (panics with panic_on_warn).
WARN_FROM_ERROR = Hazard(
    "set-from-error-warn",
    "a SET while in ERROR hits WARN_ON in vfio_mig_get_next_state() (panic with panic_on_warn)",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Expected outcome of SET `target` from `current` on a device with `flags`.

    path: the states the driver steps through (last = target), empty if rejected or no-op.
    errno: 0 on success; else the errno the spec requires.
    data_fd: True if a new data_fd must come back.
    state_after: the state GET must report afterwards.
    hazard: set if running this request can hang or oops an unfixed kernel.
    """

    current: MigState
    target: int
    flags: int
    path: tuple[MigState, ...]
    errno: int
    data_fd: bool
    state_after: MigState
    hazard: Hazard | None = None

    def __repr__(self) -> str:          # stable and short: shows in ids and history ids
        return f"Plan({self.arc_id}, flags={self.flags:#x})"

    @property
    def legal(self) -> bool:
        return self.errno == 0

    @property
    def noop(self) -> bool:
        return self.legal and not self.path

    @property
    def arc_id(self) -> str:
        return f"{self.current.name}->{MigState.label(self.target)}"

    def describe(self) -> str:
        if self.errno:
            return f"{self.arc_id}: {_errno.errorcode[self.errno]}, state stays {self.state_after.name}"
        if self.noop:
            return f"{self.arc_id}: no-op"
        steps = "->".join(s.name for s in (self.current, *self.path))
        return f"{self.arc_id}: {steps}{' [data_fd]' if self.data_fd else ''}"


def plan(current: MigState, target: int, flags: int) -> Plan:
    """The spec's answer for SET `target` while in `current` (see vfio-uapi.md 4.2-4.4).

    Total: every (current, target, flags) has an answer. A current state the flags do not enable
    (ERROR, or an optional state the device lacks) is handled like ERROR: the driver loop makes a
    request equal to it a no-op, and `vfio_mig_get_next_state()` refuses anything else with EINVAL
    after its WARN_ON on the current state (checked before the target).
    """
    current = MigState(current)
    if target == current and not supports(flags, current):
        return Plan(current, target, flags, (), 0, False, current)   # driver loop: nothing to do
    if not supports(flags, current):
        return Plan(current, target, flags, (), _errno.EINVAL, False, current, WARN_FROM_ERROR)
    reject = Plan(current, target, flags, (), _errno.EINVAL, False, current)
    if not supports(flags, target):
        return reject
    if target == current:
        return Plan(current, target, flags, (), 0, False, current)
    path: list[MigState] = []
    state = current
    while state != target:
        try:
            step = next_step(state, target, flags)
        except BlockedArc:
            return dataclasses.replace(reject, hazard=HANG_BLOCKED_ARC)
        path.append(step)
        state = step
    opens = (path[-2] if len(path) > 1 else current, path[-1]) in SESSION_OPENING_ARCS
    return Plan(current, target, flags, tuple(path), 0, opens, MigState(target))


def reach(target: MigState, flags: int, start: MigState = MigState.RUNNING) -> tuple[MigState, ...]:
    """Path of single steps from `start` to `target` (used to set up a from-state)."""
    return plan(start, target, flags).path
