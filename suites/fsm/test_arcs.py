"""Every (from, to) request of the v2 FSM for the device's flag set, checked against the model.

vfio.h: a SET follows the shortest path of single arcs, a data_fd comes back only on the four
session-opening arcs, illegal requests fail with EINVAL, and the state is re-read with GET.
"""
import errno

import pytest

from vfio_conform.checks import expect, expect_errno, expect_state
from vfio_conform.plugin.classify import GATED
from vfio_conform.uapi.enums import MIG_STATE_NR, MigState


@pytest.mark.vc_spec("fsm.legal-arc")
def test_arc(device, profile, arc, sessions, vc_context):
    """SET arc.target from arc.current: outcome, data_fd, O_CLOEXEC and the state re-read."""
    if arc.hazard and not profile.hazard_safe(arc.hazard.name, vc_context.kernel_release):
        pytest.skip(f"{GATED}{arc.hazard.reason}; kernel {vc_context.kernel_release} is not listed "
                    f"safe in {profile.path} (hazards.{arc.hazard.name}.safe_on)")
    sessions.enter(device, arc.current)
    result = device.try_set_state(arc.target)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    what = f"SET {MigState.label(arc.target)} from {arc.current.name}"

    if not arc.legal:
        rule = "fsm.out-of-range-einval" if arc.target >= MIG_STATE_NR else "fsm.illegal-arc-einval"
        expect_errno(result.errno, arc.errno, rule, what, device)
        expect(result.data_fd is None, "fsm.no-data-fd-otherwise", f"{what} failed but returned a data_fd",
               device)
        expect_state(device, arc.state_after, "fsm.failed-set-keeps-state", f"after the rejected {what}")
        return

    if arc.noop:
        expect_errno(result.errno, 0, "fsm.same-state-noop", what, device)
        expect(result.data_fd is None, "fsm.same-state-noop", f"{what} returned a data_fd", device)
        expect_state(device, arc.current, "fsm.same-state-noop", f"after {what}")
        return

    expect_errno(result.errno, 0, "fsm.legal-arc", f"{what} (path {arc.describe()})", device)
    if arc.data_fd:
        expect(result.data_fd is not None, "fsm.data-fd-on-opening-arc",
               f"{what} (path {arc.describe()}) returned no data_fd", device)
        expect(result.data_fd.cloexec, "fsm.data-fd-cloexec", f"data_fd of {what} lacks FD_CLOEXEC",
               device)
    else:
        expect(result.data_fd is None, "fsm.no-data-fd-otherwise",
               f"{what} (path {arc.describe()}) returned data_fd {getattr(result.data_fd, 'fd', '')}",
               device)
    expect_state(device, arc.target, "fsm.state-after-set", f"after {what}")


@pytest.mark.vc_spec("fsm.flags-valid")
def test_migration_flags_are_valid(device, profile):
    """MIGRATION GET reports STOP_COPY plus a defined combination, and what the profile declares."""
    flags = device.migration_flags()
    expect(flags & 1 and flags <= 7, "fsm.flags-valid", f"MIGRATION flags {int(flags):#x}", device)
    expect(flags == profile.flags, "fsm.flags-match-profile",
           f"device reports {flags!r}, profile {profile.name} declares {profile.flags!r}", device)


@pytest.mark.vc_spec("fsm.no-data-fd-otherwise")
def test_get_state_reports_no_data_fd(device, profile, sessions):
    """GET MIG_DEVICE_STATE writes back data_fd = -1, also while a session is open."""
    sessions.enter(device, MigState.STOP_COPY)
    code, state, fd = device.get_state_raw()
    expect_errno(code, 0, "fsm.state-after-set", "GET MIG_DEVICE_STATE", device)
    expect(fd == -1, "fsm.no-data-fd-otherwise", f"GET wrote back data_fd {fd}, expected -1", device)


@pytest.mark.vc_spec("fsm.illegal-arc-einval")
def test_feature_rejects_get_and_set_together(device, profile):
    """VFIO_DEVICE_FEATURE with both GET and SET (no PROBE) fails with EINVAL, state unchanged."""
    from vfio_conform.uapi.enums import Feature, FeatureOp
    from vfio_conform.uapi import structs as st
    payload = bytes(st.vfio_device_feature_mig_state(device_state=MigState.STOP, data_fd=-1))
    code, _ = device.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.GET | FeatureOp.SET, payload)
    expect_errno(code, errno.EINVAL, "fsm.illegal-arc-einval", "FEATURE(GET|SET MIG_DEVICE_STATE)", device)
    expect_state(device, MigState.RUNNING, "fsm.failed-set-keeps-state", "after GET|SET")
