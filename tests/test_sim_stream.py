"""The sim's data fds: stream shape, pre-copy, access modes, ended sessions, resume and round trip."""
import errno

import pytest

from vfio_conform.backends.sim import open_sim
from vfio_conform.backends.sim import stream as sim_stream
from vfio_conform.device import Device
from vfio_conform.model.plan import reach
from vfio_conform.uapi.enums import MigState, PciRegion

S = MigState


def open_device(name: str = "sim0", **config) -> Device:
    return Device(open_sim(config, name), io_timeout=1.0)


def save(device: Device, chunk: int = 1 << 20) -> bytes:
    """Full STOP_COPY save from RUNNING or STOP; leaves the device in STOP."""
    flags = device.transport.device.flags
    fd = device.walk(reach(S.STOP_COPY, flags, device.get_state()))[-1]
    data = b"".join(fd.chunks(chunk))
    device.set_state(S.STOP)
    fd.close()
    return data


def resume(device: Device, data: bytes, chunk: int = 5000) -> int:
    """Write `data` into a RESUMING session in chunks; the errno of RESUMING->STOP."""
    fd = device.walk(reach(S.RESUMING, device.transport.device.flags, device.get_state()))[-1]
    for pos in range(0, len(data), chunk):
        fd.write(data[pos:pos + chunk])
    code = device.try_set_state(S.STOP).errno
    fd.close()
    return code


def bars(device: Device) -> tuple[bytes, bytes]:
    return (device.region_read(PciRegion.BAR0, 0, 64 << 10), device.region_read(PciRegion.BAR2, 0, 4096))


@pytest.mark.parametrize("flags", [1, 3, 5, 7])
def test_stop_copy_stream_is_chunk_size_independent(flags):
    with open_device(flags=flags) as device:
        streams = {size: save(device, size) for size in (1, 13, 4096, 1 << 20)}
        assert len(set(streams.values())) == 1
        data = streams[4096]
        assert len(data) == device.mig_data_size() == device.transport.device.layout.stream_len
        assert data == device.transport.device.stop_copy_stream()


def test_stop_copy_eof_is_zero_forever():
    with open_device(flags=1) as device:
        fd = device.walk(reach(S.STOP_COPY, 1))[-1]
        digest = fd.drain(4096)
        assert digest.end == "eof" and digest.length == device.mig_data_size()
        assert [fd.try_read(64) for _ in range(3)] == [(0, b"")] * 3
        fd.close()


def test_streams_are_deterministic_per_seed():
    with open_device("a") as a1, open_device("a") as a2, open_device("b") as b, \
            open_device("c", seed=7) as c1, open_device("d", seed=7) as c2:
        assert save(a1) == save(a2) != save(b)
        assert save(c1) == save(c2)


@pytest.mark.parametrize("flags,path", [(5, [S.PRE_COPY, S.STOP_COPY]),
                                        (7, [S.PRE_COPY, S.PRE_COPY_P2P, S.STOP_COPY]),
                                        (7, [S.RUNNING_P2P, S.PRE_COPY_P2P, S.STOP_COPY])])
def test_precopy_then_stop_copy_equals_stop_copy_stream(flags, path):
    with open_device(flags=flags, precopy_bytes=3000) as device:
        fds = device.walk(path[:-1])
        fd = fds[0]
        info = fd.precopy_info()
        assert (info.initial_bytes, info.dirty_bytes) == (sim_stream.HEADER_LEN + 3000, 0)
        first, last = b"", info.initial_bytes
        while True:
            code, data = fd.try_read(700)
            if code:
                assert code == errno.ENOMSG
                break
            first += data
            now = fd.precopy_info().initial_bytes
            assert now == last - len(data)
            last = now
        assert len(first) == sim_stream.HEADER_LEN + 3000 and last == 0
        assert fd.try_read(10)[0] == errno.ENOMSG          # still the temporary end
        assert device.try_set_state(path[-1]).data_fd is None
        assert fd.try_precopy_info()[0] == errno.EINVAL     # no longer in pre-copy
        rest = b"".join(fd.chunks(1000))
        fd.close()
        device.set_state(S.STOP)
        stop_copy = save(device)        # a pre-copy stream is v2 (dirty records): compare what it loads
        layout = device.transport.device.layout
        assert sim_stream.decode(layout, first + rest) == sim_stream.decode(layout, stop_copy)


def test_precopy_end_zero_like_mtty():
    with open_device(flags=7, precopy_end="zero", precopy_bytes=0) as device:
        fd = device.set_state(S.PRE_COPY)
        assert len(fd.read(4096)) == sim_stream.HEADER_LEN
        assert fd.try_read(4096) == (0, b"")
        fd.close()


def test_precopy_info_decoding():
    with open_device(flags=7) as device:
        fd = device.set_state(S.PRE_COPY)
        code, info = fd.try_precopy_info(flags=0x5A)
        assert code == 0 and info.flags == 0x5A                 # flags echoed, as 6.12 drivers do
        assert fd.try_precopy_info(argsz=23)[0] == errno.EINVAL
        device.set_state(S.RUNNING)                             # ends the session, out of pre-copy
        assert fd.try_precopy_info()[0] == errno.EINVAL
        fd2 = device.set_state(S.PRE_COPY)
        assert fd.try_precopy_info()[0] == errno.ENODEV         # in PRE_COPY, but an ended session
        assert fd.try_read(1)[0] == errno.ENODEV
        assert fd2.precopy_info().initial_bytes > 0
        fd.close()
        fd2.close()


def test_access_modes():
    with open_device(flags=7) as device:
        saving = device.walk(reach(S.STOP_COPY, 7))[-1]
        assert saving.try_write(b"x")[0] == errno.EBADF
        assert saving.try_pread(8, 0) == errno.ESPIPE
        with pytest.raises(OSError) as exc:
            device.transport.pwrite(saving.fd, b"x", 0)
        assert exc.value.errno == errno.ESPIPE
        device.set_state(S.STOP)
        resuming = device.set_state(S.RESUMING)
        assert resuming.try_read(8)[0] == errno.EBADF
        assert resuming.try_pread(8, 0) == errno.ESPIPE
        assert resuming.try_precopy_info()[0] == errno.ENOTTY
        with pytest.raises(OSError) as exc:
            device.transport.ioctl(saving.fd, 0x3B64)
        assert exc.value.errno == errno.ENOTTY
        saving.close()
        resuming.close()


@pytest.mark.parametrize("flags,state,leave", [(1, S.STOP_COPY, S.STOP), (5, S.PRE_COPY, S.RUNNING),
                                               (7, S.PRE_COPY_P2P, S.RUNNING_P2P)])
def test_ended_saving_session_gives_enodev(flags, state, leave):
    with open_device(flags=flags) as device:
        fd = device.walk(reach(state, flags))[-1]
        device.set_state(leave)
        assert fd.try_read(16)[0] == errno.ENODEV
        assert fd.try_write(b"x")[0] == errno.EBADF          # access mode is checked first
        fd.close()


def test_round_trip_restores_regions():
    with open_device("sim0", flags=7) as src, open_device("sim1", flags=7) as dst:
        assert bars(src) != bars(dst)
        src.region_write(PciRegion.BAR2, 0x10, b"written by pwrite")
        with src.region_mmap(PciRegion.BAR0, 32 << 10, 4096, writable=True) as m:
            m[:15] = b"written by mmap"
        data = save(src)
        assert resume(dst, data) == 0
        assert bars(dst) == bars(src)
        assert dst.region_read(PciRegion.BAR0, 32 << 10, 15) == b"written by mmap"
        assert save(dst) == data
        dst.set_state(S.RUNNING)


def test_resume_fd_ends_with_commit():
    with open_device("sim0") as src, open_device("sim1") as dst:
        data = save(src)
        fd = dst.walk(reach(S.RESUMING, 7))[-1]
        fd.write(data)
        dst.set_state(S.STOP)
        assert fd.try_write(b"x")[0] == errno.ENODEV
        assert fd.try_read(1)[0] == errno.EBADF
        fd.close()


def test_incomplete_stream_fails_and_session_stays_usable():
    with open_device("sim0") as src, open_device("sim1") as dst:
        data, before = save(src), bars(dst)
        fd = dst.walk(reach(S.RESUMING, 7))[-1]
        fd.write(data[:-1])
        result = dst.try_set_state(S.RUNNING)
        assert result.errno == errno.EINVAL and dst.get_state() == S.RESUMING
        assert bars(dst) == before
        fd.write(data[-1:])
        assert dst.try_set_state(S.STOP).ok and bars(dst) == bars(src)
        fd.close()


def test_corrupt_payload_is_refused_at_stop():
    with open_device("sim0") as src, open_device("sim1") as dst:
        data = bytearray(save(src))
        data[-100] ^= 0xFF
        assert resume(dst, bytes(data)) == errno.EINVAL
        assert dst.get_state() == S.RESUMING


def test_empty_stream_is_refused_at_stop():
    with open_device("sim1") as dst:
        fd = dst.walk(reach(S.RESUMING, 7))[-1]
        assert dst.try_set_state(S.STOP).errno == errno.EINVAL
        fd.close()


@pytest.mark.parametrize("corrupt", ["magic", "foreign"])
def test_bad_header_gives_efault_when_complete(corrupt):
    other = {"state_size": 4096} if corrupt == "foreign" else {}
    with open_device("src", **other) as src, open_device("dst") as dst:
        data = bytearray(save(src))
        if corrupt == "magic":
            data[0] ^= 1
        fd = dst.walk(reach(S.RESUMING, 7))[-1]
        fd.write(bytes(data[:sim_stream.HEADER_LEN - 1]))        # header not complete yet: fine
        code, _ = fd.try_write(bytes(data[sim_stream.HEADER_LEN - 1:sim_stream.HEADER_LEN + 10]))
        assert code == errno.EFAULT
        assert dst.try_set_state(S.STOP).errno == errno.EINVAL
        fd.close()


def test_oversized_stream_gives_enomem():
    with open_device("sim0") as src, open_device("sim1") as dst:
        data = save(src)
        fd = dst.walk(reach(S.RESUMING, 7))[-1]
        assert fd.try_write(data + b"x")[0] == errno.ENOMEM
        fd.write(data)                                          # nothing was stored
        assert fd.try_write(b"x")[0] == errno.ENOMEM
        assert dst.try_set_state(S.STOP).ok
        fd.close()


def test_stream_module_round_trip():
    layout = sim_stream.StreamLayout(16, ((0, 8), (2, 4)))
    payload = bytes(range(28))
    data = sim_stream.encode(layout, payload)
    assert len(data) == layout.stream_len and sim_stream.decode(layout, data) == payload
    internal, regions = sim_stream.split(layout, payload)
    assert sim_stream.join(layout, internal, regions) == payload
    assert sim_stream.header_problem(sim_stream.StreamLayout(16, ((0, 8),)), data)
    with pytest.raises(sim_stream.StreamError):
        sim_stream.decode(layout, data[:-1])


def test_sim_dma_log_granule_rescaling_and_clearing():
    """Device writes land at START's granule; REPORT rescales (both ways) and clears what it read."""
    from vfio_conform.backends.sim import open_sim
    from vfio_conform.suitelib.depth import dma
    from vfio_conform.device import Device
    iova = 0x100000
    with Device(open_sim({"dma_logging": True}, "sim0"), io_timeout=1.0) as device:
        assert dma.report(device, iova, 0x10000, 4096)[0] == errno.EINVAL      # not started
        assert dma.start(device, [(iova, 0x10000)], 8192) == (0, 8192)
        def bits(page):
            return int.from_bytes(dma.report(device, iova, 0x10000, page)[1], "little")
        assert bits(4096) == 0                                                # clean
        device.test_hooks.dma_write(iova + 3 * 8192 + 100, 1)
        device.test_hooks.dma_write(iova + 0x20000, 1)                        # outside the range
        assert bits(4096) == 0b11 << 6                                        # replicated to 2 bits
        assert bits(4096) == 0                                                # cleared
        device.test_hooks.dma_write(iova + 3 * 8192, 1)
        assert bits(32768) == 0b1                                             # page 3 -> 32 KiB page 0


def test_sim_precopy_reinit_after_opt_in():
    from vfio_conform.backends.sim import open_sim
    from vfio_conform.device import PRECOPY_INFO_REINIT, PRECOPY_INFO_V2, Device
    from vfio_conform.uapi.enums import FeatureOp
    with Device(open_sim({}, "sim0"), io_timeout=1.0) as device:
        fd = device.set_state(MigState.PRE_COPY)
        assert fd.try_precopy_info(flags=0x5)[1].flags == 0x5                 # 6.12: flags echoed
        assert device.try_feature(PRECOPY_INFO_V2, FeatureOp.SET)[0] == 0
        assert fd.try_precopy_info(flags=0x5)[1].flags == 0                   # opted in: output only
        fd.drain(4096, allow_enomsg=True)
        assert device.test_hooks.precopy_reinit()
        info = fd.precopy_info()
        assert info.flags == PRECOPY_INFO_REINIT and info.initial_bytes > 0 and info.dirty_bytes == 0
        assert fd.precopy_info().flags == 0                                   # reported once
    with Device(open_sim({"flags": 1}, "sim0"), io_timeout=1.0) as device:
        assert device.probe_feature(PRECOPY_INFO_V2, FeatureOp.SET) == errno.ENOTTY
