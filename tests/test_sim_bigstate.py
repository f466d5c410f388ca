"""The sim's generated device state: any size, produced and checked on the fly, pre-copy rounds that
keep dirtying it, saved and resumed through DataFd.copy_to with a running digest."""
import errno
import json
import subprocess
import sys

import pytest

from vfio_conform.backends.sim import open_sim
from vfio_conform.backends.sim.bigstate import BLOCK, GeneratedResumingSession
from vfio_conform.backends.sim.config import GENERATED_ABOVE, SimConfig
from vfio_conform.device import Device
from vfio_conform.uapi.enums import MigState as S

SIZE = 5 * BLOCK + 123          # not a whole number of blocks


def pair(size=SIZE, **extra):
    cfg = {"flags": 7, "state_size": size, "generated_state": True, **extra}
    return Device(open_sim(cfg, "big-src"), io_timeout=1.0), Device(open_sim(cfg, "big-dst"), io_timeout=1.0)


def test_large_state_is_generated_by_default_and_never_held():
    assert SimConfig.from_dict({"state_size": GENERATED_ABOVE + 1}).generated_state
    assert not SimConfig.from_dict({"state_size": 8192}).generated_state
    with pytest.raises(ValueError, match="generated_state"):
        SimConfig.from_dict({"flags": 0, "state_size": 1 << 30, "v1": {}})
    with pytest.raises(ValueError, match=r"generated_state: the fault knob\(s\) \['live_read_eio'\]"):
        SimConfig.from_dict({"state_size": 1 << 30, "faults": [{"name": "live_read_eio"}]})
    assert SimConfig.from_dict({"state_size": 1 << 30, "generated_state": False,
                                "faults": [{"name": "live_read_eio"}]}).faults
    assert SimConfig.from_dict({"state_size": 1 << 30, "faults": [{"name": "corrupt_stream"}]}).faults
    device = Device(open_sim({"state_size": 4 << 30}, "huge"), io_timeout=1.0)   # 4 GiB: nothing allocated
    try:
        sim = device.transport.device
        assert sim.generated is not None and sim.internal == b"" and sim.generated.nblocks == 4096
        assert device.mig_data_size() > 4 << 30
    finally:
        device.close()


def test_stop_copy_stream_length_is_mig_data_size():
    src, _ = pair()
    with src, _:
        size = src.mig_data_size()
        with src.set_state(S.STOP) or src.set_state(S.STOP_COPY) as fd:
            assert fd.drain(65536).length == size


def test_precopy_rounds_keep_producing_dirty_data_and_the_migration_verifies():
    src, dst = pair(dirty_blocks=2)
    with src, dst:
        out = src.set_state(S.PRE_COPY)
        dst.set_state(S.STOP)
        inp = dst.set_state(S.RESUMING)
        first = out.copy_to(inp, 300_000, allow_enomsg=True)
        assert first.end == "enomsg" and first.length > SIZE
        for _ in range(3):                       # every round: the device dirtied blocks again
            info = out.precopy_info()                  # the temporary end, as the uAPI says: 0 and 0
            assert (info.initial_bytes, info.dirty_bytes) == (0, 0)
            again = out.copy_to(inp, 300_000, allow_enomsg=True)
            assert again.end == "enomsg" and again.length > BLOCK
        src.set_state(S.STOP_COPY)
        out.copy_to(inp, 1 << 20)
        assert dst.try_set_state(S.STOP).ok                     # every block and the end digest checked
        assert dst.transport.device.generated.gen.tolist() == src.transport.device.generated.gen.tolist()
        assert any(src.transport.device.generated.gen)
        out.close(), inp.close()
        src.set_state(S.STOP)
        digests = []
        for dev in (src, dst):
            with dev.set_state(S.STOP_COPY) as fd:
                digests.append(fd.drain(4096).digest)
            dev.set_state(S.STOP)
        assert digests[0] == digests[1]


@pytest.mark.parametrize("damage", ["flip", "truncate", "mixed", "extra", "header"])
def test_damaged_stream_is_refused_at_stop(damage):
    src, dst = pair()
    with src, dst:
        src.set_state(S.STOP)
        with src.set_state(S.STOP_COPY) as fd:
            data = bytearray(b"".join(fd.chunks(1 << 20)))
        if damage == "flip":
            data[72 + 12 + 3 * BLOCK // 2] ^= 1
        elif damage == "truncate":
            del data[-40:]
        elif damage == "extra":                  # bytes after the end record, in the same write
            data += b"\0"
        elif damage == "header":                 # the unused digest field of the header
            data[40] ^= 1
        else:                            # block 1 carries another device's content tag (all of it)
            start = 72 + (12 + BLOCK) + 12
            other = Device(open_sim({"flags": 7, "state_size": SIZE, "generated_state": True}, "other"))
            with other:
                data[start:start + BLOCK] = other.transport.device.generated.block(1)
        dst.set_state(S.STOP)
        with dst.set_state(S.RESUMING) as inp:
            code, _ = inp.try_write(bytes(data))
            assert code == (errno.EFAULT if damage == "header" else 0)
            res = dst.try_set_state(S.STOP)
        assert res.errno == errno.EINVAL and dst.get_state() == S.RESUMING


@pytest.mark.parametrize("flip", [None, 72 + 12 + 16, 72 + 12 + 3 * BLOCK // 2, 72 + 2 * (12 + BLOCK) - 1])
def test_small_writes_inside_a_block_are_checked_like_large_ones(flip):
    """997-byte writes (most of them inside a block's body, short of its end): the stream loads
    whole; a byte flipped at a body's start, middle or last byte is refused at RESUMING -> STOP."""
    src, dst = pair()
    with src, dst:
        src.set_state(S.STOP)
        with src.set_state(S.STOP_COPY) as fd:
            data = bytearray(b"".join(fd.chunks(1 << 20)))
        if flip is not None:
            data[flip] ^= 0x10
        dst.set_state(S.STOP)
        with dst.set_state(S.RESUMING) as inp:
            for at in range(0, len(data), 997):
                assert inp.try_write(bytes(data[at:at + 997])) == (0, len(data[at:at + 997]))
            res = dst.try_set_state(S.STOP)
        assert res.errno == (0 if flip is None else errno.EINVAL)


def test_bad_header_gives_efault():
    src, dst = pair()
    with src, dst:
        dst.set_state(S.STOP)
        with dst.set_state(S.RESUMING) as inp:
            code, _ = inp.try_write(bytes(72))
        assert code == errno.EFAULT


def test_resuming_session_holds_no_block_bytes():
    src, dst = pair()
    with src, dst:
        src.set_state(S.STOP)
        dst.set_state(S.STOP)
        with src.set_state(S.STOP_COPY) as out, dst.set_state(S.RESUMING) as inp:
            session = dst.transport.device.session
            assert isinstance(session, GeneratedResumingSession)
            while chunk := out.read(7777):
                inp.write(chunk)
                assert len(session.small) <= max(32, len(session.regions)) and len(session.head) < 72
            assert dst.try_set_state(S.STOP).ok


def test_resident_memory_does_not_grow_with_the_state():
    """A 256 MiB state migrates in a process whose peak RSS is within 64 MiB of a 1 MiB state's."""
    def run(size):
        proc = subprocess.run([sys.executable, "-m", "vfio_conform.bench.streams", str(size)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])
    small, big = run(1 << 20), run(256 << 20)
    assert small["verified"] and big["verified"] and big["moved"] > 256 << 20
    assert big["hwm_kib"] - small["hwm_kib"] < 64 << 10
