"""Write (possibly hostile) streams into a resuming device and report where it refused them."""
from __future__ import annotations

import dataclasses
import errno

from ...errors import errno_name
from ...uapi.enums import MigState


@dataclasses.dataclass
class ResumeOutcome:
    """write_errors: (stream offset, errno) of each failed write; stop_errno: RESUMING -> STOP's errno."""

    length: int
    write_errors: list[tuple[int, int]]
    stop_errno: int
    state_after: int

    @property
    def refused(self) -> bool:
        return bool(self.write_errors) or self.stop_errno != 0

    def describe(self) -> str:
        writes = ", ".join(f"{errno_name(c)} at {o}" for o, c in self.write_errors[:3]) or "none"
        return (f"{self.length}-byte stream: write errors {writes}; RESUMING->STOP "
                f"{errno_name(self.stop_errno)}; state {MigState.label(self.state_after)}")


def resume(device, sessions, data: bytes, chunk: int = 1 << 20) -> ResumeOutcome:
    """STOP -> RESUMING, write `data` in `chunk`s (going on past errors, as a hostile user), SET STOP."""
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    errors, pos = [], 0
    while pos < len(data):
        piece = data[pos:pos + chunk]
        code, n = fd.try_write(piece)
        if code or n == 0:
            errors.append((pos, code or errno.EIO))
            pos += len(piece)
            continue
        pos += n
    result = device.try_set_state(MigState.STOP)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    _, state, _ = device.get_state_raw()
    return ResumeOutcome(len(data), errors, result.errno, state)


def save_bytes(device, sessions) -> bytes:
    """A full STOP_COPY save of `device` as bytes (depth suites only use small device states)."""
    import io
    sink = io.BytesIO()
    sessions.save(device, sink)
    return sink.getvalue()


def flip(data: bytes, offset: int, mask: int = 0xFF) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def stop_copy_bytes(dev) -> bytes:
    """STOP -> STOP_COPY, the whole stream read as bytes, back to STOP (small device states only)."""
    dev.set_state(MigState.STOP)
    fd = dev.set_state(MigState.STOP_COPY)
    data = b"".join(fd.chunks())
    fd.close()
    dev.set_state(MigState.STOP)
    return data


def foreign_stream() -> bytes:
    """A stream of another device type: an in-process reference device with a different layout."""
    from ...backends.sim.transport import open_sim
    from ...device import Device
    with Device(open_sim({"flags": 1, "state_size": 1000}, "foreign0"), io_timeout=5.0) as dev:
        return stop_copy_bytes(dev)
