"""The v2 migration FSM as data: which flags enable which states, and the full-flag next-step table.

`next_step()` walks the table the way the kernel's `vfio_mig_get_next_state()` does,
skipping states the device's flags do not enable, so one table serves all four flag sets.
"""
from __future__ import annotations

from ..uapi.enums import MIG_STATE_NR, MigFlag, MigState

S = MigState
_SC = MigFlag.STOP_COPY

#: Flags a device must report for each state to exist (ERROR needs "all", so it is never supported).
STATE_FLAGS: dict[MigState, int] = {
    S.ERROR: ~0,
    S.STOP: _SC,
    S.RUNNING: _SC,
    S.STOP_COPY: _SC,
    S.RESUMING: _SC,
    S.RUNNING_P2P: _SC | MigFlag.P2P,
    S.PRE_COPY: _SC | MigFlag.PRE_COPY,
    S.PRE_COPY_P2P: _SC | MigFlag.P2P | MigFlag.PRE_COPY,
}

#: The four flag sets a device may report (others are reserved).
FLAG_SETS: tuple[MigFlag, ...] = (
    _SC, _SC | MigFlag.P2P, _SC | MigFlag.PRE_COPY, _SC | MigFlag.P2P | MigFlag.PRE_COPY,
)

#: Next single step from `cur` toward `new` when every optional state is supported.
#: Row = current state, column = requested state; ERROR marks a blocked arc.
_ORDER = (S.ERROR, S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING, S.RUNNING_P2P, S.PRE_COPY,
          S.PRE_COPY_P2P)
_E, _ST, _RU, _SCS, _RE, _RP, _PC, _PP = _ORDER
NEXT_STEP_FULL: dict[MigState, dict[MigState, MigState]] = {
    row: dict(zip(_ORDER, cells)) for row, cells in {
        #        ERROR STOP RUNNING STOP_COPY RESUMING RUNNING_P2P PRE_COPY PRE_COPY_P2P
        S.STOP: (_E, _ST, _RP, _SCS, _RE, _RP, _RP, _RP),
        S.RUNNING: (_E, _RP, _RU, _RP, _RP, _RP, _PC, _RP),
        S.STOP_COPY: (_E, _ST, _ST, _SCS, _ST, _ST, _E, _E),
        S.RESUMING: (_E, _ST, _ST, _ST, _RE, _ST, _ST, _ST),
        S.RUNNING_P2P: (_E, _ST, _RU, _ST, _ST, _RP, _RU, _PP),
        S.PRE_COPY: (_E, _RU, _RU, _PP, _RU, _RU, _PC, _PP),
        S.PRE_COPY_P2P: (_E, _RP, _RP, _SCS, _RP, _RP, _PC, _PP),
        S.ERROR: (_E,) * 8,
    }.items()
}

#: Arcs that open a migration session and return a new data_fd.
SESSION_OPENING_ARCS: frozenset[tuple[MigState, MigState]] = frozenset({
    (S.STOP, S.STOP_COPY), (S.RUNNING, S.PRE_COPY), (S.RUNNING_P2P, S.PRE_COPY_P2P),
    (S.STOP, S.RESUMING),
})

#: Arcs that end a session; the driver disables its data_fd (later read/write: ENODEV).
SESSION_ENDING_ARCS: frozenset[tuple[MigState, MigState]] = frozenset({
    (S.STOP_COPY, S.STOP), (S.PRE_COPY, S.RUNNING), (S.PRE_COPY_P2P, S.RUNNING_P2P),
    (S.RESUMING, S.STOP),
})

#: States that share one saving data_fd.
SAVING_GROUP: frozenset[MigState] = frozenset({S.PRE_COPY, S.PRE_COPY_P2P, S.STOP_COPY})
PRE_COPY_STATES: frozenset[MigState] = frozenset({S.PRE_COPY, S.PRE_COPY_P2P})


def supports(flags: int, state: int) -> bool:
    """True if a device reporting `flags` has `state`."""
    if not 0 <= state < MIG_STATE_NR:
        return False
    need = STATE_FLAGS[MigState(state)]
    return (need & flags) == need


def supported_states(flags: int) -> list[MigState]:
    """States a device with `flags` can be in, ERROR excluded, in enum order."""
    return [s for s in MigState if supports(flags, s)]


class BlockedArc(Exception):
    """The table leads to ERROR: the spec says fail; 6.2-6.12 kernels without the fix spin forever."""


def next_step(cur: MigState, new: int, flags: int) -> MigState:
    """One step from `cur` toward `new` for a device with `flags`.

    Raises ValueError for an unsupported current or requested state (kernel: EINVAL)
    and BlockedArc where the kernel's skip loop would land on ERROR.
    """
    if not supports(flags, new) or not supports(flags, cur):
        raise ValueError(f"{MigState.label(cur)}->{MigState.label(new)} not supported by flags {flags:#x}")
    step = NEXT_STEP_FULL[MigState(cur)][MigState(new)]
    while not supports(flags, step):
        if step is S.ERROR:
            raise BlockedArc(f"{cur.name}->{MigState(new).name}")
        step = NEXT_STEP_FULL[step][MigState(new)]
    return step


def single_arcs(flags: int) -> frozenset[tuple[MigState, MigState]]:
    """Every single step a driver with `flags` must implement (the arcs it ever sees)."""
    arcs = set()
    states = supported_states(flags)
    for cur in states:
        for new in states:
            if cur == new:
                continue
            try:
                arcs.add((cur, next_step(cur, new, flags)))
            except BlockedArc:
                continue
    return frozenset(arcs)
