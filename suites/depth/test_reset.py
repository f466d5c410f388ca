"""VFIO_DEVICE_RESET: RUNNING from every reachable state, sessions ended, RESUMING aborted, usable."""
import errno

import pytest

from vfio_conform.api import (expect, expect_errno, expect_state, MigState, REQUESTABLE_STATES,
                               require_state, resume, save_stream, write_file)

pytestmark = pytest.mark.vc_requires("reset")


@pytest.mark.vc_spec("reset.returns-running")
@pytest.mark.parametrize("state", REQUESTABLE_STATES, ids=[s.name for s in REQUESTABLE_STATES])
def test_reset_from_state(device, profile, sessions, state):
    require_state(profile, state)
    fd = sessions.enter(device, state, prime=False)
    expect_errno(device.try_reset(), 0, "reset.returns-running", f"VFIO_DEVICE_RESET in {state.name}", device)
    expect_state(device, MigState.RUNNING, "reset.returns-running", f"after reset from {state.name}")
    for old in sessions.fds:
        code = old.try_write(b"\0")[0] if state is MigState.RESUMING and old is fd else old.try_read(16)[0]
        expect_errno(code, errno.ENODEV, "stream.ended-session-enodev",
                     f"I/O on a data_fd after reset from {state.name}", device)


@pytest.mark.vc_spec("reset.aborts-resuming")
def test_reset_aborts_resuming(device, profile, sessions):
    """Half a stream, reset, then a complete resume succeeds (the aborted bytes are gone)."""
    data = save_stream(device, sessions)
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    write_file(fd, data.file, len(data) // 2)
    expect_errno(device.try_reset(), 0, "reset.aborts-resuming", "VFIO_DEVICE_RESET in RESUMING", device)
    expect_state(device, MigState.RUNNING, "reset.aborts-resuming", "after reset from RESUMING")
    out = resume(device, sessions, data)
    expect(not out.refused, "reset.aborts-resuming", f"resume after the aborted one: {out.describe()}", device)


@pytest.mark.vc_spec("reset.device-usable")
def test_device_usable_after_reset(device, peer_device, profile, sessions):
    """Reset mid-save, then a full save is non-empty and resumes on the peer."""
    sessions.enter(device, MigState.STOP_COPY)
    device.reset()
    data = save_stream(device, sessions)
    expect(len(data) > 0, "reset.device-usable", "the STOP_COPY stream after reset is empty", device)
    out = resume(peer_device, sessions, data)
    expect(not out.refused, "reset.device-usable", f"peer refused the post-reset stream: {out.describe()}",
           peer_device)
