"""A live session's data_fd, step by step: reads of any size work, and closing it keeps the state."""
import errno

import pytest

from vfio_conform.fixtures.sessions import require_state
from vfio_conform.suitelib.checks import expect, expect_state
from vfio_conform.errors import errno_name
from vfio_conform.model.fsm import PRE_COPY_STATES
from vfio_conform.uapi.enums import MigState

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
