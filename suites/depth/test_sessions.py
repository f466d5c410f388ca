"""A live session's data_fd, step by step: reads of any size work, and closing it keeps the state."""
import errno

import pytest

from vfio_conform.api import (errno_name, expect, expect_state, MigState, not_supported, open_device,
                               PRE_COPY_STATES, require_state, Sessions)

SESSION_STATES = [MigState.STOP_COPY, MigState.PRE_COPY, MigState.PRE_COPY_P2P, MigState.RESUMING]
SAVING_STATES = SESSION_STATES[:3]
#: Odd sizes on purpose: the stream is opaque, any read size is valid.
READ_SIZES = (1, 7, 513, 4097)


@pytest.mark.vc_spec("session.close-keeps-state")
@pytest.mark.parametrize("state", SESSION_STATES, ids=[s.name for s in SESSION_STATES])
def test_closing_data_fd_keeps_state(device, profile, sessions, state):
    """vfio.h: the state never changes asynchronously (only reset does): close() of the fd is no SET."""
    require_state(profile, state)
    fd = sessions.enter(device, state, prime=False)
    fd.close()
    expect_state(device, state, "session.close-keeps-state", f"after closing the {state.name} data_fd")


@pytest.mark.vc_spec("walk.model-agreement")
@pytest.mark.parametrize("state", SAVING_STATES, ids=[s.name for s in SAVING_STATES])
def test_live_saving_fd_reads_any_size(device, profile, sessions, state):
    """read() of 1, 7, 513 and 4097 bytes on the live saving fd: data, 0, or ENOMSG in pre-copy."""
    require_state(profile, state)
    fd = sessions.enter(device, state)
    for size in READ_SIZES:
        code, data = fd.try_read(size)
        expect(code == 0 or (code == errno.ENOMSG and state in PRE_COPY_STATES), "walk.model-agreement",
               f"read({size}) on the live {state.name} data_fd failed with {errno_name(code)}", device)
        expect(len(data) <= size, "walk.model-agreement",
               f"read({size}) on the live {state.name} data_fd returned {len(data)} bytes", device)


#: States whose session the device's close must end. RESUMING only where VFIO_DEVICE_RESET works:
#: the reopened device is reset first (mtty oopses on STOP after a reopen in RESUMING, vfio-uapi.md 0.3c).
CLOSE_STATES = [MigState.STOP_COPY, MigState.PRE_COPY, MigState.RESUMING]


@pytest.mark.vc_spec("session.close-device-ends")
@pytest.mark.parametrize("state", CLOSE_STATES, ids=[s.name for s in CLOSE_STATES])
def test_session_ends_on_close_device(device_pool, profile, state):
    """Keep the data_fd, close the device fd (close_device), then read/write the fd: ENODEV; open the
    device again: the fd stays dead, and after reset (or SET RUNNING) a new session saves a stream."""
    require_state(profile, state)
    if state is MigState.RESUMING and not profile.features.reset:
        not_supported(f"profile {profile.name} has no VFIO_DEVICE_RESET: closing a device in RESUMING "
                      "is safe only when the reopened device is reset first (vfio-uapi.md 0.3c)")
    sessions = Sessions(profile)
    device = device_pool.make_running(profile, 0)
    fd = sessions.enter(device, state, prime=False)
    name, key = device.name, (profile.name, 0)
    try:
        device.close(safe=False, keep_data_fds=True)
        _expect_dead(fd, state, device, "after the device fd was closed")
        reopened = open_device(profile, name)
        device_pool.devices[key] = reopened
        if state is MigState.RESUMING:
            reopened.reset()                # before anything else: the hazard above
        _expect_dead(fd, state, reopened, "after the device was opened again")
    finally:
        fd.close()
    expect(reopened.to_safe_state() in ("reset", "running"), "session.close-device-ends",
           f"the device opened again after a close in {state.name} cannot be brought to RUNNING", reopened)
    fresh = sessions.enter(reopened, MigState.STOP_COPY)
    try:
        saved = fresh.drain(1 << 16)
    finally:
        sessions.close()
    expect(saved.length > 0, "session.close-device-ends",
           "a new STOP_COPY session of the reopened device read an empty stream", reopened)
    reopened.to_safe_state()


def _expect_dead(fd, state, device, when: str) -> None:
    if state is MigState.RESUMING:
        code, _ = fd.try_write(b"\0" * 16)
        what = "write(16)"
    else:
        code, _ = fd.try_read(4096)
        what = "read(4096)"
    expect(code == errno.ENODEV, "session.close-device-ends",
           f"{what} on the {state.name} data_fd kept past close_device {when} "
           f"{'succeeded' if not code else 'failed with ' + errno_name(code)}, not ENODEV", device)
