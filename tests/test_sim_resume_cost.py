"""A resuming sim session judges its length cap from the header once, not again on every write
(a stream written a byte at a time must not re-parse and re-hash the header per byte)."""
from vfio_conform.backends.sim import open_sim
from vfio_conform.backends.sim import sessions, stream
from vfio_conform.device import Device
from vfio_conform.uapi.enums import MigState as S


def test_header_judged_once_for_one_byte_writes(monkeypatch):
    with Device(open_sim({"flags": 1}, "cost0"), io_timeout=1.0) as src, \
            Device(open_sim({"flags": 1}, "cost1"), io_timeout=1.0) as dst:
        src.set_state(S.STOP)
        with src.set_state(S.STOP_COPY) as fd:
            data = b"".join(fd.chunks())
        calls = []
        real = stream.header_problem
        monkeypatch.setattr(sessions.stream, "header_problem",
                            lambda *a: calls.append(1) or real(*a))
        dst.set_state(S.STOP)
        with dst.set_state(S.RESUMING) as inp:
            for i in range(len(data)):
                inp.write(data[i:i + 1])
            assert dst.try_set_state(S.STOP).ok
        assert stream.HEADER_LEN <= len(calls) <= stream.HEADER_LEN + 4, len(calls)
