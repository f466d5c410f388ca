"""PRE_COPY: PRECOPY_INFO only in pre-copy states, initial_bytes decreasing, stream continuity."""
import errno

import pytest

from fixtures.sessions import require_state, rewound
from vfio_conform.checks import expect, expect_errno
from vfio_conform.errors import errno_name
from vfio_conform.uapi.enums import MigFlag, MigState

pytestmark = pytest.mark.vc_requires(MigFlag.PRE_COPY)


@pytest.mark.vc_spec("precopy.info-only-in-precopy")
def test_precopy_info_refused_outside_precopy(device, profile, sessions):
    """On a PRE_COPY device, VFIO_MIG_GET_PRECOPY_INFO on the STOP_COPY fd fails with EINVAL."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    code, _ = fd.try_precopy_info()
    expect_errno(code, errno.EINVAL, "precopy.info-only-in-precopy", "PRECOPY_INFO in STOP_COPY", device)


@pytest.mark.vc_spec("precopy.initial-bytes-decrease")
def test_precopy_initial_bytes_decrease(device, profile, sessions):
    """initial_bytes starts non-zero and only goes down as the pre-copy data is read (a 'should')."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    info = fd.precopy_info()
    expect(info.initial_bytes > 0, "precopy.initial-bytes-decrease", "initial_bytes starts at 0", device)
    last, read = info.initial_bytes, 0
    for _ in range(100_000):
        code, data = fd.try_read(min(512, max(1, last)))
        expect(code in (0, errno.ENOMSG), "walk.model-agreement",
               f"read() of the live pre-copy data_fd after {read} bytes failed with {errno_name(code)}",
               device)
        if code or not data:
            break
        read += len(data)
        now = fd.precopy_info()
        expect(now.initial_bytes <= last, "precopy.initial-bytes-decrease",
               f"initial_bytes rose from {last} to {now.initial_bytes} after reading {read} bytes", device)
        last = now.initial_bytes
    expect(read > 0, "precopy.initial-bytes-decrease", "no pre-copy data could be read", device)


@pytest.mark.vc_spec("precopy.enomsg-at-temporary-end")
def test_precopy_enomsg_at_temporary_end(device, profile, sessions):
    """At the temporary end of the pre-copy data read() should fail with ENOMSG (mtty: returns 0).

    A 'should' in vfio.h, unless the profile declares migration.precopy_enomsg: must.
    """
    fd = sessions.enter(device, MigState.PRE_COPY)
    end = fd.drain(4096, allow_enomsg=True)
    level = "must" if profile.precopy_enomsg == "must" else None
    if end.end == "enomsg":
        return
    code, data = fd.try_read(4096)
    expect(code == errno.ENOMSG, "precopy.enomsg-at-temporary-end",
           f"read() at the temporary end of pre-copy data after {end.length} bytes returned "
           f"{errno_name(code) if code else f'{len(data)} bytes'} instead of ENOMSG", device, level=level)


@pytest.mark.vc_spec("stream.round-trip")
def test_precopy_then_stop_copy_resumes(device, peer_device, profile, sessions, spill_file):
    """Pre-copy data followed by the STOP_COPY remainder (same fd) resumes on the destination."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    first = fd.drain(4096, sink=spill_file, allow_enomsg=True)
    more = device.try_set_state(MigState.STOP_COPY)
    expect_errno(more.errno, 0, "fsm.legal-arc", "SET STOP_COPY from PRE_COPY", device)
    expect(more.data_fd is None, "fsm.no-data-fd-otherwise", "PRE_COPY->STOP_COPY returned a new data_fd",
           device)
    rest = fd.drain(1 << 20, sink=spill_file)
    estimate = device.mig_data_size()
    total = first.length + rest.length
    dest_fd = sessions.enter(peer_device, MigState.RESUMING, prime=False)
    with rewound(spill_file):
        while chunk := spill_file.read(1 << 20):
            dest_fd.write(chunk)
    result = peer_device.try_set_state(MigState.STOP)
    expect_errno(result.errno, 0, "stream.round-trip",
                 f"RESUMING->STOP after {first.length} pre-copy + {rest.length} stop-copy bytes "
                 f"(MIG_DATA_SIZE {estimate})", peer_device)
    expect(total > 0, "stream.round-trip", "empty stream", device)


@pytest.mark.vc_spec("precopy.dirty-bytes-sane")
def test_dirty_bytes_sane(device, profile, sessions):
    """dirty_bytes starts at 0; at the temporary end initial_bytes and dirty_bytes are both 0."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    info = fd.precopy_info()
    expect(info.dirty_bytes == 0, "precopy.dirty-bytes-sane",
           f"dirty_bytes is {info.dirty_bytes} when the session opens", device)
    fd.drain(4096, allow_enomsg=True)
    end = fd.precopy_info()
    expect((end.initial_bytes, end.dirty_bytes) == (0, 0), "precopy.dirty-bytes-sane",
           f"at the temporary end initial_bytes={end.initial_bytes} dirty_bytes={end.dirty_bytes}", device)
    code, data = fd.try_read(4096)
    expect(code in (0, errno.ENOMSG) and not data, "precopy.enomsg-at-temporary-end",
           f"read() again at the temporary end: errno {code}, {len(data)} bytes", device)


NON_PRECOPY = [MigState.STOP_COPY, MigState.RUNNING, MigState.STOP, MigState.RUNNING_P2P, MigState.RESUMING]


@pytest.mark.vc_spec("precopy.info-only-in-precopy")
@pytest.mark.parametrize("state", NON_PRECOPY, ids=[s.name for s in NON_PRECOPY])
def test_precopy_info_refused_in_every_other_state(device, profile, sessions, state):
    """PRECOPY_INFO on the pre-copy session's fd after moving to `state`: EINVAL (ended fd: or ENODEV)."""
    require_state(profile, state)
    fd = sessions.enter(device, MigState.PRE_COPY)
    fd.drain(4096, allow_enomsg=True)
    sessions.enter(device, state, prime=False)
    code, _ = fd.try_precopy_info()
    allowed = (errno.EINVAL,) if state is MigState.STOP_COPY else (errno.EINVAL, errno.ENODEV)
    expect(code in allowed, "precopy.info-only-in-precopy",
           f"PRECOPY_INFO on the pre-copy fd in {state.name}: errno {code}", device)
