"""DataFd: a migration data_fd (read/write/poll/pre-copy info through the device's transport)."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import os
import select
import time
from typing import Any, Callable, Iterator, Protocol, TYPE_CHECKING

from ..base.errors import UapiError
from ..uapi import structs as st
from ..uapi.ioctl import number
from . import fdcopy
from .digest import ALGORITHM, new_digest
from .streamstats import STATS
from .errnos import checked, errno_of
from .lastop import LAST_OPERATION
from .records import PrecopyInfo, StreamDigest

if TYPE_CHECKING:
    from .transport import Transport


class FdOwner(Protocol):
    """What a DataFd needs of the device that returned it (a Device): its name, transport and I/O
    time limit, and the list of open data fds it keeps."""

    transport: Transport
    io_timeout: float

    @property
    def name(self) -> str: ...

    def _track(self, fd: DataFd) -> None: ...

    def _forget(self, fd: DataFd) -> None: ...


class Sink(Protocol):
    """Where drain() spills a stream: a binary file, or a resuming DataFd (copy_to)."""

    def write(self, data: bytes, /) -> Any: ...


#: what drain() hands each chunk to (a bytes-like valid only during the call)
OnChunk = Callable[[Any], None]


class DataFd:
    """A migration data_fd (saving or resuming session). Owned by the user: close() it."""

    def __init__(self, device: FdOwner, fd: int):
        self.device, self.fd = device, fd
        self.closed = False
        device._track(self)

    @property
    def cloexec(self) -> bool:
        return bool(fcntl.fcntl(self.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)

    @property
    def access_mode(self) -> int:
        """os.O_RDONLY, os.O_WRONLY or os.O_RDWR: the fd's open mode (fcntl F_GETFL)."""
        return fcntl.fcntl(self.fd, fcntl.F_GETFL) & os.O_ACCMODE

    def poll(self, events: int = select.POLLIN, timeout: float = 0.0) -> int:
        """poll() the fd for `events` (at most `timeout` s): the revents word (0 = not ready)."""
        backend_poll = getattr(self.device.transport, "poll", None)
        if backend_poll is not None:
            return int(backend_poll(self.fd, events, timeout))
        poller = select.poll()
        poller.register(self.fd, events)
        ready = poller.poll(int(timeout * 1000))
        return ready[0][1] if ready else 0

    def try_read(self, size: int) -> tuple[int, bytes]:
        LAST_OPERATION.note(self.device.name, "read(data_fd)", size)
        return errno_of(self.device.transport.read, self.fd, size, self.device.io_timeout, failed=b"")

    def read(self, size: int) -> bytes:
        return checked(self.try_read(size), f"read(data_fd, {size})", self.device.name)

    def try_write(self, data: bytes) -> tuple[int, int]:
        LAST_OPERATION.note(self.device.name, "write(data_fd)", len(data))
        return errno_of(self.device.transport.write, self.fd, data, self.device.io_timeout, failed=0)

    def write(self, data: bytes) -> int:
        """Write all of `data` (looping on short writes)."""
        done = 0
        view = memoryview(data)
        while done < len(data):
            code, n = self.try_write(data if not done else bytes(view[done:]))
            if code:
                raise UapiError(code, f"write(data_fd, {len(data) - done} bytes at stream offset {done})",
                                self.device.name)
            if n == 0:
                raise UapiError(errno.EIO, "write(data_fd) accepted 0 bytes", self.device.name)
            done += n
        return done

    def try_pread(self, size: int, offset: int = 0) -> int:
        return errno_of(self.device.transport.pread, self.fd, size, offset)[0]

    def chunks(self, chunk_size: int = 1 << 20, allow_enomsg: bool = False) -> Iterator[bytes]:
        """Read until end of stream; stops at ENOMSG only if `allow_enomsg` (pre-copy)."""
        while True:
            code, data = self.try_read(chunk_size)
            if code == errno.ENOMSG and allow_enomsg:
                return
            if code:
                raise UapiError(code, f"read(data_fd, {chunk_size})", self.device.name)
            if not data:
                return
            yield data

    def drain(self, chunk_size: int = 1 << 20, sink: Sink | None = None,
              allow_enomsg: bool = False, on_chunk: OnChunk | None = None) -> StreamDigest:
        """Read to end of stream in chunks, hashing (and optionally spilling to `sink`: a binary
        file or a resuming DataFd). Memory is one chunk whatever the stream's length. `on_chunk`
        sees each chunk (a bytes-like valid only during the call)."""
        started = time.perf_counter()
        if getattr(self.device.transport, "raw_data_fds", False) and not allow_enomsg:
            out = self._drain_raw(chunk_size, sink, on_chunk)
        else:
            out = self._drain_calls(chunk_size, sink, allow_enomsg, on_chunk)
        STATS.add(out.length, time.perf_counter() - started)
        return out

    def _drain_calls(self, chunk_size: int, sink: Sink | None, allow_enomsg: bool,
                     on_chunk: OnChunk | None) -> StreamDigest:
        """Through the transport's read (an in-process device): one bytes object per read."""
        digest, length, reads, end = new_digest(), 0, 0, "eof"
        while True:
            code, data = self.try_read(chunk_size)
            reads += 1
            if code == errno.ENOMSG and allow_enomsg:
                end = "enomsg"
                break
            if code:
                raise UapiError(code, f"read(data_fd, {chunk_size}) after {length} bytes",
                                self.device.name)
            if not data:
                break
            digest.update(data)
            length += len(data)
            if on_chunk is not None:
                on_chunk(data)
            if sink is not None:
                sink.write(data)
        return StreamDigest(length, digest.hexdigest(), reads, end, ALGORITHM)

    def _drain_raw(self, chunk_size: int, sink: Sink | None, on_chunk: OnChunk | None) -> StreamDigest:
        """The kernel path: read(2) into one reused buffer, digest and write(2) the same view."""
        dst = _raw_fd_of(sink)
        digest = new_digest()
        LAST_OPERATION.note(self.device.name, "read(data_fd) loop", chunk_size)
        extra = on_chunk
        if sink is not None and dst is None:           # a Python file object: its own write()
            def extra(chunk: Any, _w: Callable[[Any], Any] = sink.write,
                      _f: OnChunk | None = on_chunk) -> None:
                _w(chunk)
                if _f is not None:
                    _f(chunk)
        try:
            length, reads = fdcopy.copy_hashed(self.fd, dst, digest, bytearray(chunk_size),
                                               timeout=self.device.io_timeout, on_chunk=extra)
        except OSError as exc:
            LAST_OPERATION.returned()
            raise UapiError(exc.errno or errno.EIO, f"read/write(data_fd, {chunk_size})",
                            self.device.name) from None
        LAST_OPERATION.returned()
        return StreamDigest(length, digest.hexdigest(), reads, "eof", ALGORITHM)

    def copy_to(self, dst: "DataFd", chunk_size: int = 1 << 20, allow_enomsg: bool = False) -> StreamDigest:
        """Move this (saving) stream into `dst` (a resuming fd) chunk by chunk until end of stream
        (or ENOMSG with `allow_enomsg`), hashing as it goes: memory stays one chunk whatever the
        state's size, and the digest is what a later save of the destination must reproduce."""
        return self.drain(chunk_size, sink=dst, allow_enomsg=allow_enomsg)

    def try_precopy_info(self, argsz: int = 24, flags: int = 0) -> tuple[int, PrecopyInfo | None]:
        buf = bytearray(max(argsz, ctypes.sizeof(st.vfio_precopy_info)))
        hdr = st.vfio_precopy_info(argsz=argsz, flags=flags)
        buf[:len(hdr)] = bytes(hdr)
        code, _ = errno_of(self.device.transport.ioctl, self.fd, number("VFIO_MIG_GET_PRECOPY_INFO"), buf)
        if code:
            return code, None
        out = st.vfio_precopy_info.from_bytes(buf)
        return 0, PrecopyInfo(out.flags, out.initial_bytes, out.dirty_bytes)

    def precopy_info(self) -> PrecopyInfo:
        return checked(self.try_precopy_info(), "VFIO_MIG_GET_PRECOPY_INFO", self.device.name)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.device._forget(self)
            self.device.transport.close(self.fd)

    def __enter__(self) -> "DataFd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataFd({self.fd}{', closed' if self.closed else ''})"


def _raw_fd_of(sink: Sink | None) -> int | None:
    """The fd to write(2) to directly: a DataFd of a raw-fd transport, or an unbuffered file's."""
    if isinstance(sink, DataFd):
        return sink.fd if getattr(sink.device.transport, "raw_data_fds", False) else None
    if isinstance(sink, io.FileIO):                # unbuffered: its position is the fd's own
        return sink.fileno()
    return None


class SetResult:
    """Outcome of a MIG_DEVICE_STATE SET, exactly as the kernel left it.

    errno: 0 on success. written_state / raw_fd: the device_state and data_fd words the kernel wrote
    back (raw_fd is DATA_FD_SENTINEL if it wrote nothing). data_fd: a DataFd for any raw_fd >= 0,
    also when errno != 0 (so a check can see it; the Device closes it at the latest on close()).
    A plain slotted class, not a dataclass: one is built per SET, and building it must stay cheap.
    """

    __slots__ = ("errno", "requested", "written_state", "data_fd", "raw_fd")

    def __init__(self, errno: int, requested: int, written_state: int, data_fd: "DataFd | None",
                 raw_fd: int = -1):
        self.errno, self.requested, self.written_state = errno, requested, written_state
        self.data_fd, self.raw_fd = data_fd, raw_fd

    @property
    def ok(self) -> bool:
        return self.errno == 0

    def _key(self) -> tuple[object, ...]:
        return (self.errno, self.requested, self.written_state, self.data_fd, self.raw_fd)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SetResult) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]   # mutable: not hashable

    def __repr__(self) -> str:
        return (f"SetResult(errno={self.errno!r}, requested={self.requested!r}, "
                f"written_state={self.written_state!r}, data_fd={self.data_fd!r}, raw_fd={self.raw_fd!r})")
