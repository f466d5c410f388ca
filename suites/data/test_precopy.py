"""PRE_COPY: PRECOPY_INFO only in pre-copy states, initial_bytes decreasing, stream continuity."""
import errno

import pytest

from vfio_conform.api import (errno_name, expect, expect_errno, Feature, FeatureOp, MigFlag, MigState, not_supported, PRECOPY_INFO_REINIT, PRECOPY_INFO_V2, require_state, rewound)

pytestmark = pytest.mark.vc_requires(MigFlag.PRE_COPY)


@pytest.mark.vc_spec("precopy.info-only-in-precopy")
def test_precopy_info_refused_outside_precopy(device, profile, sessions):
    """On a PRE_COPY device, VFIO_MIG_GET_PRECOPY_INFO on the STOP_COPY fd fails with EINVAL."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    code, _ = fd.try_precopy_info()
    expect_errno(code, errno.EINVAL, "precopy.info-only-in-precopy", "PRECOPY_INFO in STOP_COPY", device)


@pytest.mark.vc_spec("precopy.initial-bytes-decrease", "walk.model-agreement")
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


@pytest.mark.vc_spec("stream.round-trip", "fsm.legal-arc", "fsm.no-data-fd-otherwise")
def test_precopy_then_stop_copy_resumes(device, peer_device, profile, sessions, spill_file):
    """Pre-copy data followed by the STOP_COPY remainder (same fd) resumes on the destination."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    first = fd.drain(4096, sink=spill_file, allow_enomsg=True)
    more = device.try_set_state(MigState.STOP_COPY)
    expect_errno(more.errno, 0, "fsm.legal-arc", "SET STOP_COPY from PRE_COPY", device)
    expect(more.data_fd is None, "fsm.no-data-fd-otherwise", "PRE_COPY->STOP_COPY returned a new data_fd",
           device)
    rest = fd.drain(1 << 20, sink=spill_file)
    absent = int(Feature.MIG_DATA_SIZE) in getattr(device.transport, "not_offered_features", {})
    estimate = "not offered" if absent else device.mig_data_size()
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


@pytest.mark.vc_spec("precopy.dirty-bytes-sane", "precopy.enomsg-at-temporary-end")
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


@pytest.mark.vc_spec("precopy.info-works-in-precopy")
def test_precopy_info_works_in_precopy_states(device, profile, sessions):
    """PRECOPY_INFO is mandatory with PRE_COPY: it succeeds in PRE_COPY and (with P2P) PRE_COPY_P2P."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    code, _ = fd.try_precopy_info()
    expect_errno(code, 0, "precopy.info-works-in-precopy", "PRECOPY_INFO in PRE_COPY", device)
    if not profile.flags & MigFlag.P2P:
        return
    sessions.enter(device, MigState.PRE_COPY_P2P)
    code, _ = fd.try_precopy_info()
    expect_errno(code, 0, "precopy.info-works-in-precopy",
                 "PRECOPY_INFO on the same fd after PRE_COPY->PRE_COPY_P2P", device)


@pytest.mark.vc_spec("precopy.info-argsz-einval")
@pytest.mark.parametrize("argsz", [0, 8, 23])
def test_precopy_info_rejects_small_argsz(device, profile, sessions, argsz):
    """argsz below sizeof(struct vfio_precopy_info) = 24 fails with EINVAL (in PRE_COPY)."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    code, _ = fd.try_precopy_info(argsz=argsz)
    expect_errno(code, errno.EINVAL, "precopy.info-argsz-einval", f"PRECOPY_INFO with argsz {argsz}", device)


@pytest.mark.vc_spec("precopy.info-flags-opt-in", "precopy.info-works-in-precopy")
def test_precopy_info_flags_without_opt_in(device, profile, sessions):
    """Asked with flags 0 and no MIG_PRECOPY_INFOv2 opt-in, PRECOPY_INFO returns flags 0 throughout."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    for _ in range(10_000):
        code, info = fd.try_precopy_info(flags=0)
        expect_errno(code, 0, "precopy.info-works-in-precopy", "PRECOPY_INFO in PRE_COPY", device)
        expect(info.flags == 0, "precopy.info-flags-opt-in",
               f"PRECOPY_INFO returned flags {info.flags:#x}; the caller passed 0 and did not opt in", device)
        code, data = fd.try_read(512)
        if code or not data:
            break


@pytest.mark.vc_spec("precopy.info-flags-opt-in", "precopy.reinit-semantics", "precopy.info-works-in-precopy")
def test_precopy_info_v2_reinit(device, profile, sessions):
    """With the MIG_PRECOPY_INFOv2 opt-in, flags carry at most REINIT; REINIT resets dirty_bytes to 0,
    and without it initial_bytes does not rise. Where the sim can add initial data, REINIT must show."""
    code = device.probe_feature(PRECOPY_INFO_V2, FeatureOp.SET)
    if code:
        not_supported(f"PROBE SET of feature {PRECOPY_INFO_V2} (MIG_PRECOPY_INFOv2) gives "
                    f"{errno.errorcode.get(code, code)}: this kernel or driver has no REINIT opt-in")
    code, _ = device.try_feature(PRECOPY_INFO_V2, FeatureOp.SET)
    expect_errno(code, 0, "precopy.info-flags-opt-in", "SET MIG_PRECOPY_INFOv2 (the PROBE succeeded)", device)
    fd = sessions.enter(device, MigState.PRE_COPY)
    hooks = device.test_hooks
    reinit_at = 2 if hooks is not None and hasattr(hooks, "precopy_reinit") else None
    last, seen_reinit = None, False
    for turn in range(10_000):
        if turn == reinit_at:
            expect(hooks.precopy_reinit(), "precopy.reinit-semantics", "no live pre-copy session", device)
        code, info = fd.try_precopy_info(flags=0)
        expect_errno(code, 0, "precopy.info-works-in-precopy", "PRECOPY_INFO in PRE_COPY", device)
        expect(not info.flags & ~PRECOPY_INFO_REINIT, "precopy.info-flags-opt-in",
               f"PRECOPY_INFO after the opt-in returned flags {info.flags:#x} (only REINIT may be set)", device)
        if info.flags & PRECOPY_INFO_REINIT:
            seen_reinit = True
            expect(info.dirty_bytes == 0, "precopy.reinit-semantics",
                   f"REINIT reported with dirty_bytes {info.dirty_bytes} (must reset to 0)", device)
        elif last is not None:
            expect(info.initial_bytes <= last, "precopy.reinit-semantics",
                   f"initial_bytes rose from {last} to {info.initial_bytes} without REINIT", device)
        if turn == reinit_at:
            expect(info.flags & PRECOPY_INFO_REINIT and info.initial_bytes > 0, "precopy.reinit-semantics",
                   f"after new initial data: flags {info.flags:#x}, initial_bytes {info.initial_bytes}", device)
        last = info.initial_bytes
        code, data = fd.try_read(256)
        if (code or not data) and (reinit_at is None or turn > reinit_at):
            break
    if reinit_at is not None:
        expect(seen_reinit, "precopy.reinit-semantics", "REINIT was never reported", device)
