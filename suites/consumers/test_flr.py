"""Function Level Reset through config space, as a VMM or a guest resets a function: the device is
RUNNING afterwards and the saving session it was in is ended (its data_fd gives ENODEV).

FLR is offered when the PCI Express capability's Device Capabilities report it (bit 28); a device
without it is not-supported, with what its config space says. Started by writing Device Control
bit 15 through the config region (suitelib/flr.py).
"""
import errno

import pytest

from vfio_conform.api import (expect_errno, expect_state, flr_capability, initiate_flr, MigFlag, MigState,
                               not_supported, PciRegion)

pytestmark = [pytest.mark.vc_requires("reset"), pytest.mark.vc_requires(MigFlag.STOP_COPY)]

#: A saving state every flag set reaches, and the pre-copy one where the device has PRE_COPY.
_SAVING = [MigState.STOP_COPY, MigState.PRE_COPY]


@pytest.mark.vc_spec("reset.flr-running")
@pytest.mark.parametrize("state", _SAVING, ids=[s.name for s in _SAVING])
def test_flr_ends_session_and_leaves_running(device, profile, sessions, state):
    if state is MigState.PRE_COPY and not profile.flags & MigFlag.PRE_COPY:
        not_supported(f"profile {profile.name} lacks PRE_COPY")
    widths = profile.regions.policy(int(PciRegion.CONFIG)).widths
    cap, why = flr_capability(device, widths)
    if cap is None:
        not_supported(why)
    fd = sessions.enter(device, state, prime=False)
    expect_errno(initiate_flr(device, cap, widths), 0, "reset.flr-running",
                 "pwrite(config, Device Control | Initiate FLR)", device)
    expect_state(device, MigState.RUNNING, "reset.flr-running", f"after an FLR in {state.name}")
    expect_errno(fd.try_read(16)[0], errno.ENODEV, "reset.flr-running",
                 f"read() on the {state.name} data_fd after an FLR", device)
