"""The v2 data_fd stream: end of stream, segmentation, access modes, ended sessions, size estimate."""
import errno
import select

import pytest

from vfio_conform.api import (bounded, expect, expect_errno, expect_state, MigState, new_digest, read_along, read_state, rewound, write_file)

CHUNK_SIZES = [13, 4096, 1 << 20]


@pytest.mark.vc_spec("stream.stop-copy-eof")
def test_stop_copy_stream_ends_with_eof(device, profile, sessions):
    """In STOP_COPY the stream ends with read() == 0, never ENOMSG, and stays at EOF."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    total = 0
    while True:
        code, data = fd.try_read(1 << 16)
        expect(code != errno.ENOMSG, "stream.stop-copy-eof",
               f"read() in STOP_COPY failed with ENOMSG after {total} bytes", device)
        expect_errno(code, 0, "stream.stop-copy-eof", f"read() after {total} bytes", device)
        if not data:
            break
        total += len(data)
    expect(total > 0, "stream.stop-copy-eof", "the STOP_COPY stream is empty", device)
    code, again = fd.try_read(4096)
    expect(code == 0 and again == b"", "stream.stop-copy-eof",
           f"read() after EOF returned errno {code} / {len(again)} bytes instead of 0", device)


@pytest.mark.vc_spec("stream.stop-copy-poll-readable")
def test_stop_copy_end_polls_readable(device, profile, sessions):
    """vfio.h: the STOP_COPY end of stream is read() returning 0 and poll() always readable."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    fd.drain()
    for attempt in ("at the end of the STOP_COPY data", "again after another read() of 0"):
        revents = fd.poll(select.POLLIN, timeout=1.0)
        expect(revents & select.POLLIN, "stream.stop-copy-poll-readable",
               f"poll(POLLIN) {attempt} gave revents {revents:#x}", device)
        fd.try_read(16)


@pytest.mark.vc_spec("precopy.info-enotty-on-resuming", "fsm.data-fd-on-opening-arc")
def test_precopy_info_enotty_on_resuming_fd(device, profile, sessions):
    """VFIO_MIG_GET_PRECOPY_INFO is a saving-fd ioctl: on a resuming fd it gives ENOTTY."""
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    expect(fd is not None, "fsm.data-fd-on-opening-arc", "STOP->RESUMING returned no data_fd", device)
    code, _ = fd.try_precopy_info()
    expect_errno(code, errno.ENOTTY, "precopy.info-enotty-on-resuming", "PRECOPY_INFO on the RESUMING data_fd",
                 device)


@pytest.mark.vc_spec("stream.segmentation-free")
def test_stream_does_not_depend_on_read_size(device, profile, sessions, request):
    """Saving the same stopped state with different read sizes yields identical bytes (on a big
    state the small reads cover the header and a bounded sample of the body, the rest 1 MiB reads)."""
    sessions.enter(device, MigState.STOP)
    first = _save_digest(device, sessions, lambda fd: fd.drain(CHUNK_SIZES[-1]))
    covered = []
    for size in CHUNK_SIZES[:-1]:
        plan = bounded(first.length, size)
        covered.append(f"{size}: {plan.coverage.describe()}")
        digest = new_digest()
        length, code = _save_digest(device, sessions, lambda fd, plan=plan, digest=digest: read_along(fd, plan, digest))
        expect_errno(code, 0, "stream.segmentation-free", f"read() of {size} bytes after {length} bytes", device)
        expect((length, digest.hexdigest()) == (first.length, first.digest),
               "stream.segmentation-free",
               f"reads of {size} bytes ({plan.coverage.describe()}) gave {length} bytes digest "
               f"{digest.hexdigest()[:16]}, reads of {CHUNK_SIZES[-1]} gave {first.length} bytes digest "
               f"{first.digest[:16]}", device)
    request.node.user_properties.append(("stream_coverage", "; ".join(covered)))


def _save_digest(device, sessions, read):
    """STOP -> STOP_COPY, `read(fd)`, STOP: what `read` returned."""
    fd = device.set_state(MigState.STOP_COPY)
    sessions.fds.append(fd)
    out = read(fd)
    device.set_state(MigState.STOP)
    return out


@pytest.mark.vc_spec("stream.saving-fd-not-writable")
def test_saving_fd_refuses_write(device, profile, sessions):
    fd = sessions.enter(device, MigState.STOP_COPY)
    code, _ = fd.try_write(b"\0" * 16)
    expect_errno(code, errno.EBADF, "stream.saving-fd-not-writable", "write() on the STOP_COPY data_fd",
                 device)


@pytest.mark.vc_spec("stream.resuming-fd-not-readable")
def test_resuming_fd_refuses_read(device, profile, sessions):
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    code, data = fd.try_read(16)
    expect_errno(code, errno.EBADF, "stream.resuming-fd-not-readable", "read() on the RESUMING data_fd",
                 device)


@pytest.mark.vc_spec("stream.no-seek")
def test_data_fd_is_not_seekable(device, profile, sessions):
    fd = sessions.enter(device, MigState.STOP_COPY)
    expect_errno(fd.try_pread(16, 0), errno.ESPIPE, "stream.no-seek", "pread() on the data_fd", device)


@pytest.mark.vc_spec("stream.ended-session-enodev")
def test_ended_saving_session_fd_gives_enodev(device, profile, sessions):
    """STOP_COPY -> STOP ends the session: the old fd's read() fails with ENODEV."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    device.set_state(MigState.STOP)
    code, data = fd.try_read(4096)
    expect_errno(code, errno.ENODEV, "stream.ended-session-enodev",
                 "read() on the data_fd after STOP_COPY->STOP", device)


@pytest.mark.vc_spec("stream.ended-session-enodev")
def test_ended_resuming_session_fd_gives_enodev(device, peer_device, profile, sessions, spill_file):
    """RESUMING -> STOP commits and ends the session: the old fd's write() fails with ENODEV."""
    sessions.save(peer_device, spill_file)
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    with rewound(spill_file):
        _write_from(fd, spill_file)
    device.set_state(MigState.STOP)
    code, _ = fd.try_write(b"\0" * 8)
    expect_errno(code, errno.ENODEV, "stream.ended-session-enodev",
                 "write() on the data_fd after RESUMING->STOP", device)


@pytest.mark.vc_spec("reset.returns-running", "stream.ended-session-enodev")
@pytest.mark.vc_requires("reset")
def test_reset_ends_session_and_returns_running(device, profile, sessions):
    """VFIO_DEVICE_RESET returns the device to RUNNING and disables the session's fd."""
    fd = sessions.enter(device, MigState.STOP_COPY)
    device.reset()
    expect_state(device, MigState.RUNNING, "reset.returns-running", "after VFIO_DEVICE_RESET")
    code, _ = fd.try_read(4096)
    expect_errno(code, errno.ENODEV, "stream.ended-session-enodev", "read() on the data_fd after reset",
                 device)


@pytest.mark.vc_spec("stream.data-size-estimate")
def test_mig_data_size_matches_stream(device, profile, sessions):
    """MIG_DATA_SIZE (read in STOP) estimates the STOP_COPY stream within the profile's tolerance."""
    sessions.enter(device, MigState.STOP)
    estimate = device.mig_data_size()
    fd = device.set_state(MigState.STOP_COPY)
    sessions.fds.append(fd)
    actual = fd.drain().length
    allowed = profile.data_size_tolerance * actual
    expect(abs(estimate - actual) <= allowed, "stream.data-size-estimate",
           f"MIG_DATA_SIZE says {estimate} bytes, the stream had {actual} "
           f"(tolerance {profile.data_size_tolerance:g} = {allowed:.0f} bytes)", device)


@pytest.mark.vc_spec("stream.round-trip", "fsm.state-after-set")
def test_round_trip_restores_state(device, peer_device, profile, sessions, spill_file):
    """Save the source, resume into the destination, and re-save it: the streams are identical."""
    source = sessions.save(device, spill_file)
    fd = sessions.enter(peer_device, MigState.RESUMING, prime=False)
    with rewound(spill_file):
        _write_from(fd, spill_file)
    result = peer_device.try_set_state(MigState.STOP)
    expect_errno(result.errno, 0, "stream.round-trip",
                 f"RESUMING->STOP after writing the {source.length}-byte stream", peer_device)
    spill_file.seek(0)
    spill_file.truncate()
    again = sessions.save(peer_device, spill_file)
    expect((again.length, again.digest) == (source.length, source.digest), "stream.round-trip",
           f"destination re-saves {again.length} bytes digest {again.digest[:16]}, source saved "
           f"{source.length} bytes digest {source.digest[:16]}", peer_device)
    peer_device.set_state(MigState.RUNNING)
    expect_state(peer_device, MigState.RUNNING, "fsm.state-after-set", "after resume and STOP->RUNNING")


@pytest.mark.vc_spec("resume.incomplete-stream-fails", "fsm.failed-path-on-path")
def test_truncated_stream_is_refused(device, peer_device, profile, sessions, spill_file):
    """RESUMING -> STOP must fail when the stream is one byte short."""
    source = sessions.save(device, spill_file)
    fd = sessions.enter(peer_device, MigState.RESUMING, prime=False)
    with rewound(spill_file):
        _write_from(fd, spill_file, limit=source.length - 1)
    result = peer_device.try_set_state(MigState.STOP)
    expect(result.errno != 0, "resume.incomplete-stream-fails",
           f"RESUMING->STOP succeeded after {source.length - 1} of {source.length} bytes", peer_device)
    state = read_state(peer_device, "after the refused RESUMING->STOP")
    expect(state in (MigState.RESUMING, MigState.ERROR), "fsm.failed-path-on-path",
           f"after the refused RESUMING->STOP the device is in {MigState.label(state)}", peer_device)


def _write_from(fd, f, limit: int | None = None) -> int:
    """Stream a spilled file into a resuming data_fd (optionally only `limit` bytes)."""
    return write_file(fd, f, limit)
