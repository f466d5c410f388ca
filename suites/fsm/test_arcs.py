"""Every (from, to) request of the v2 FSM for the device's flag set, checked against the model.

vfio.h: a SET follows the shortest path of single arcs, a data_fd comes back only on the four
session-opening arcs (read-only for saving, write-only for resuming), every other SET reports
data_fd = -1, illegal requests fail with EINVAL and change nothing, and the state is re-read with
GET. A session the request leaves ends (its fd gives ENODEV); one it stays in continues on the same fd.
"""
import errno
import os
import random

import pytest

from vfio_conform.api import (expect, expect_errno, expect_state, Feature, FeatureOp, gated, MIG_STATE_NR,
                               MigState, SAVING_GROUP, structs as st)

S = MigState

#: Every rule test_arc checks; each failing assertion reports its own.
ARC_RULES = (
    "fsm.legal-arc", "fsm.illegal-arc-einval", "fsm.out-of-range-einval", "fsm.failed-set-keeps-state",
    "fsm.same-state-noop", "fsm.state-after-set", "fsm.get-state-ok", "fsm.set-writeback",
    "fsm.data-fd-on-opening-arc", "fsm.no-data-fd-otherwise", "fsm.data-fd-cloexec",
    "stream.saving-fd-not-writable", "stream.resuming-fd-not-readable", "stream.ended-session-enodev",
    "session.rejected-set-keeps-session", "session.saving-group-same-fd",
)


@pytest.mark.vc_spec(*ARC_RULES)
def test_arc(device, profile, arc, sessions, vc_context):
    """SET arc.target from arc.current: outcome, write-back, data_fd, its mode, the old session, the state."""
    if arc.hazard and not profile.hazard_safe(arc.hazard.name, vc_context.kernel_release):
        gated(f"{arc.hazard.reason}; kernel {vc_context.kernel_release} is not listed "
              f"safe in {profile.path} (hazards.{arc.hazard.name}.safe_on)", arc.hazard.name)
    entered = sessions.enter(device, arc.current)
    old = entered if arc.current in SAVING_GROUP or arc.current is S.RESUMING else None
    result = device.try_set_state(arc.target)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    what = f"SET {MigState.label(arc.target)} from {arc.current.name}"
    expect(result.written_state == arc.target, "fsm.set-writeback",
           f"{what} wrote back device_state {MigState.label(result.written_state)} (errno "
           f"{errno.errorcode.get(result.errno, result.errno) if result.errno else 0})", device)

    if not arc.legal:
        rule = "fsm.out-of-range-einval" if arc.target >= MIG_STATE_NR else "fsm.illegal-arc-einval"
        expect_errno(result.errno, arc.errno, rule, what, device)
        expect(result.raw_fd == -1, "fsm.no-data-fd-otherwise",
               f"{what} failed but wrote back data_fd {result.raw_fd} (expected -1)", device)
        expect_state(device, arc.state_after, "fsm.failed-set-keeps-state", f"after the rejected {what}")
        if old is not None:
            _session_continues(device, old, arc.current, "session.rejected-set-keeps-session",
                               f"after the rejected {what}")
        return

    if arc.noop:
        expect_errno(result.errno, 0, "fsm.same-state-noop", what, device)
        expect(result.raw_fd == -1, "fsm.same-state-noop",
               f"{what} wrote back data_fd {result.raw_fd} (expected -1)", device)
        expect_state(device, arc.current, "fsm.same-state-noop", f"after {what}")
        if old is not None:
            _session_continues(device, old, arc.current, "fsm.same-state-noop", f"after {what}")
        return

    expect_errno(result.errno, 0, "fsm.legal-arc", f"{what} (path {arc.describe()})", device)
    if arc.data_fd:
        expect(result.data_fd is not None, "fsm.data-fd-on-opening-arc",
               f"{what} (path {arc.describe()}) wrote back data_fd {result.raw_fd}", device)
        expect(result.data_fd.cloexec, "fsm.data-fd-cloexec", f"data_fd of {what} lacks FD_CLOEXEC",
               device)
        _check_access_mode(device, result.data_fd, arc.target, what)
    else:
        expect(result.raw_fd == -1, "fsm.no-data-fd-otherwise",
               f"{what} (path {arc.describe()}) wrote back data_fd {result.raw_fd} (expected -1)", device)
    expect_state(device, arc.target, "fsm.state-after-set", f"after {what}")
    if old is None:
        return
    if arc.current in SAVING_GROUP and all(step in SAVING_GROUP for step in arc.path):
        _session_continues(device, old, arc.target, "session.saving-group-same-fd", f"after {what}")
    else:
        _session_ended(device, old, arc.current, what)


def _check_access_mode(device, fd, target: MigState, what: str) -> None:
    """Saving fds are read-only, resuming fds write-only (fcntl F_GETFL)."""
    names = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
    mode = fd.access_mode
    if target is S.RESUMING:
        expect(mode == os.O_WRONLY, "stream.resuming-fd-not-readable",
               f"data_fd of {what} is opened {names.get(mode, mode)}, expected O_WRONLY", device)
    else:
        expect(mode == os.O_RDONLY, "stream.saving-fd-not-writable",
               f"data_fd of {what} is opened {names.get(mode, mode)}, expected O_RDONLY", device)


def _session_continues(device, fd, state: MigState, rule: str, context: str) -> None:
    """The session behind `fd` is still live: a saving fd still reads, a resume still commits."""
    if state is S.RESUMING:
        result = device.try_set_state(S.STOP)
        if result.data_fd is not None:
            result.data_fd.close()
        expect_errno(result.errno, 0, rule, f"{context}: RESUMING->STOP of the primed resume session",
                     device)
        return
    code, _ = fd.try_read(4096)
    allowed = (0, errno.ENOMSG) if state in (S.PRE_COPY, S.PRE_COPY_P2P) else (0,)
    expect(code in allowed, rule,
           f"{context}: read() on the session's data_fd failed with {errno.errorcode.get(code, code)}",
           device)


def _session_ended(device, fd, state: MigState, what: str) -> None:
    """The request left the session's state: read (saving) / write (resuming) give ENODEV."""
    if state is S.RESUMING:
        code, _ = fd.try_write(b"\0" * 8)
        op = "write()"
    else:
        code, _ = fd.try_read(4096)
        op = "read()"
    expect_errno(code, errno.ENODEV, "stream.ended-session-enodev",
                 f"{op} on the {state.name} session's data_fd after {what}", device)


#: Requests far past VFIO_DEVICE_STATE_NR: both ends of u32, sign-bit values and a seeded sample.
LARGE_STATES = sorted({9, 0x10, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF,
                       *random.Random(20261127).sample(range(9, 1 << 32), 4)})


@pytest.mark.vc_spec("fsm.out-of-range-einval", "fsm.failed-set-keeps-state", "fsm.no-data-fd-otherwise",
                     "fsm.set-writeback", "fsm.get-state-ok")
@pytest.mark.parametrize("value", LARGE_STATES, ids=[f"{v:#x}" for v in LARGE_STATES])
def test_large_invalid_state_rejected(device, profile, sessions, value):
    """SET of a value far past the last state fails with EINVAL, returns no fd, changes nothing."""
    sessions.enter(device, S.RUNNING)
    result = device.try_set_state(value)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    what = f"SET {value:#x} from RUNNING"
    expect_errno(result.errno, errno.EINVAL, "fsm.out-of-range-einval", what, device)
    expect(result.raw_fd == -1, "fsm.no-data-fd-otherwise",
           f"{what} failed but wrote back data_fd {result.raw_fd}", device)
    expect(result.written_state == value, "fsm.set-writeback",
           f"{what} wrote back device_state {result.written_state:#x}", device)
    expect_state(device, S.RUNNING, "fsm.failed-set-keeps-state", f"after the rejected {what}")


@pytest.mark.vc_spec("fsm.flags-valid", "fsm.flags-match-profile")
def test_migration_flags_are_valid(device, profile):
    """MIGRATION GET reports STOP_COPY plus a defined combination, and what the profile declares."""
    flags = device.migration_flags()
    expect(flags & 1 and flags <= 7, "fsm.flags-valid", f"MIGRATION flags {int(flags):#x}", device)
    expect(flags == profile.flags, "fsm.flags-match-profile",
           f"device reports {flags!r}, profile {profile.name} declares {profile.flags!r}", device)


@pytest.mark.vc_spec("fsm.no-data-fd-otherwise", "fsm.get-state-ok")
def test_get_state_reports_no_data_fd(device, profile, sessions):
    """GET MIG_DEVICE_STATE writes back data_fd = -1, also while a session is open."""
    sessions.enter(device, S.STOP_COPY)
    code, state, fd = device.get_state_raw()
    expect_errno(code, 0, "fsm.get-state-ok", "GET MIG_DEVICE_STATE", device)
    expect(fd == -1, "fsm.no-data-fd-otherwise", f"GET wrote back data_fd {fd}, expected -1", device)


@pytest.mark.vc_spec("fsm.feature-get-set-einval")
def test_feature_rejects_get_and_set_together(device, profile):
    """VFIO_DEVICE_FEATURE with both GET and SET (no PROBE) fails with EINVAL, state unchanged."""
    payload = bytes(st.vfio_device_feature_mig_state(device_state=S.STOP, data_fd=-1))
    code, _ = device.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.GET | FeatureOp.SET, payload)
    expect_errno(code, errno.EINVAL, "fsm.feature-get-set-einval", "FEATURE(GET|SET MIG_DEVICE_STATE)",
                 device)
    expect_state(device, S.RUNNING, "fsm.feature-get-set-einval", "after GET|SET")
