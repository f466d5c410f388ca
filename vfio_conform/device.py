"""One device interface over any backend: every VFIO operation encoded with the uAPI structs.

Two names per operation (kernel selftest style): `x()` raises UapiError on any errno,
`try_x()` returns the errno so negative checks can compare it with the spec.
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import hashlib
import mmap
import os
import select
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, TypeVar

from .errors import UapiError, errno_name
from .uapi import structs as st
from .uapi.enums import (DeviceFlag, Feature, FeatureOp, MigFlag, MigState, RegionCap,
                         RegionFlag)
from .uapi.ioctl import number

if TYPE_CHECKING:                  # the protocol every backend implements (backends/base.py)
    from .backends.base import Transport

T = TypeVar("T")
F = TypeVar("F")
_FEATURE = number("VFIO_DEVICE_FEATURE")
_MAX_CAP_CHAIN = 64
#: VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (12) and VFIO_PRECOPY_INFO_REINIT: newer than the 6.12
#: headers (VFIO_PRECOPY_INFO_REINIT series, 2026; vfio-uapi.md 4.7).
PRECOPY_INFO_V2 = 12
PRECOPY_INFO_REINIT = 1 << 0
#: data_fd value the harness puts in a MIG_DEVICE_STATE request: the kernel overwrites it (-1 or an fd).
DATA_FD_SENTINEL = -2


class _LastOperation:
    """The device operation this process started last (named when a test times out)."""

    device = ""
    what: tuple = ()
    started = 0.0

    def note(self, device: str, *what) -> None:
        self.device, self.what, self.started = device, what, time.monotonic()

    def describe(self) -> str:
        if not self.what:
            return "no device operation yet"
        kind, *args = self.what
        if kind == "feature":
            feature, op, payload = args
            text = f"VFIO_DEVICE_FEATURE({_feature_name(feature)}, op={op:#x})"
            if feature == Feature.MIG_DEVICE_STATE and op & FeatureOp.SET and len(payload) >= 4:
                text = f"SET MIG_DEVICE_STATE {MigState.label(int.from_bytes(payload[:4], 'little'))}"
            elif feature == Feature.MIG_DEVICE_STATE and op & FeatureOp.GET:
                text = "GET MIG_DEVICE_STATE"
        else:
            text = f"{kind}({', '.join(str(a) for a in args)})"
        return f"{text} on {self.device}, started {time.monotonic() - self.started:.1f}s ago"


LAST_OPERATION = _LastOperation()


def errno_of(call: Callable[..., T], *args: Any, failed: F = None) -> tuple[int, T | F]:
    """(0, call(*args)), or (its errno, `failed`) if it raised OSError: the body of every `try_x()`."""
    try:
        return 0, call(*args)
    except OSError as exc:
        return exc.errno or errno.EIO, failed


def checked(result: tuple[int, T], operation: str, device: str) -> T:
    """The value of a `try_x()` result, or UapiError(errno, operation): the body of every `x()`."""
    code, value = result
    if code:
        raise UapiError(code, operation, device)
    return value


def last_operation() -> str:
    """'SET MIG_DEVICE_STATE STOP_COPY on sim0, started 2.0s ago' (or 'no device operation yet')."""
    return LAST_OPERATION.describe()


@dataclasses.dataclass(frozen=True)
class CapHeader:
    id: int
    version: int
    offset: int
    next: int


@dataclasses.dataclass(frozen=True)
class RegionInfo:
    """Decoded vfio_region_info with its capability chain."""

    index: int
    flags: RegionFlag
    size: int
    offset: int
    argsz: int
    caps: tuple[CapHeader, ...] = ()
    sparse_areas: tuple[tuple[int, int], ...] | None = None   # (offset, size) pairs
    type: tuple[int, int] | None = None                         # (type, subtype)
    raw: bytes = b""

    @property
    def readable(self) -> bool:
        return bool(self.flags & RegionFlag.READ)

    @property
    def writable(self) -> bool:
        return bool(self.flags & RegionFlag.WRITE)

    @property
    def mmappable(self) -> bool:
        return bool(self.flags & RegionFlag.MMAP)


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    flags: DeviceFlag
    num_regions: int
    num_irqs: int
    cap_offset: int


@dataclasses.dataclass(frozen=True)
class IrqInfo:
    index: int
    flags: int
    count: int


@dataclasses.dataclass(frozen=True)
class SetResult:
    """Outcome of a MIG_DEVICE_STATE SET, exactly as the kernel left it.

    errno: 0 on success. written_state / raw_fd: the device_state and data_fd words the kernel wrote
    back (raw_fd is DATA_FD_SENTINEL if it wrote nothing). data_fd: a DataFd for any raw_fd >= 0,
    also when errno != 0 (so a check can see it; the Device closes it at the latest on close()).
    """

    errno: int
    requested: int
    written_state: int
    data_fd: "DataFd | None"
    raw_fd: int = -1

    @property
    def ok(self) -> bool:
        return self.errno == 0


@dataclasses.dataclass(frozen=True)
class PrecopyInfo:
    flags: int
    initial_bytes: int
    dirty_bytes: int


@dataclasses.dataclass
class StreamDigest:
    """What a drained stream looked like: total length and SHA-256 (never the bytes themselves)."""

    length: int
    sha256: str
    reads: int
    end: str            # "eof" (read returned 0) or "enomsg"


class DataFd:
    """A migration data_fd (saving or resuming session). Owned by the user: close() it."""

    def __init__(self, device: "Device", fd: int):
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
            return backend_poll(self.fd, events, timeout)
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
            code, n = self.try_write(bytes(view[done:]))
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

    def drain(self, chunk_size: int = 1 << 20, sink: BinaryIO | None = None,
              allow_enomsg: bool = False) -> StreamDigest:
        """Read to end of stream in chunks, hashing (and optionally spilling to `sink`)."""
        digest, length, reads, end = hashlib.sha256(), 0, 0, "eof"
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
            if sink is not None:
                sink.write(data)
        return StreamDigest(length, digest.hexdigest(), reads, end)

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

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataFd({self.fd}{', closed' if self.closed else ''})"


class Device:
    """A VFIO device opened through some Transport.

    Args:
        transport: the backend's byte-level access to the device.
        io_timeout: seconds any data_fd read/write may block.
    """

    def __init__(self, transport: Transport, io_timeout: float = 30.0):
        self.transport = transport
        self.io_timeout = io_timeout
        self._info: DeviceInfo | None = None
        self.closed = False
        self._fds: list[DataFd] = []

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def test_hooks(self):
        """The backend's test hooks (the sim's: make the device DMA, fail a step, ...), or None."""
        return getattr(self.transport, "test_hooks", None)

    def _track(self, fd: DataFd) -> None:
        self._fds.append(fd)

    def _forget(self, fd: DataFd) -> None:
        if fd in self._fds:
            self._fds.remove(fd)

    def open_data_fds(self) -> list[DataFd]:
        """Data fds the kernel returned that nobody has closed yet."""
        return list(self._fds)

    # -- plain ioctls -------------------------------------------------------------
    def _ioctl(self, name: str, buf: bytearray | int | None = None) -> int:
        LAST_OPERATION.note(self.name, name)
        return self.transport.ioctl(self.transport.device_fd, number(name), buf)

    def info(self) -> DeviceInfo:
        buf = bytearray(bytes(st.vfio_device_info(argsz=ctypes.sizeof(st.vfio_device_info))))
        self._call("VFIO_DEVICE_GET_INFO", buf)
        out = st.vfio_device_info.from_bytes(buf)
        self._info = DeviceInfo(DeviceFlag(out.flags), out.num_regions, out.num_irqs, out.cap_offset)
        return self._info

    def try_region_info(self, index: int, argsz: int | None = None) -> tuple[int, RegionInfo | None]:
        """GET_REGION_INFO, growing the buffer when the kernel asks for room for caps."""
        size = argsz or ctypes.sizeof(st.vfio_region_info)
        for _ in range(4):
            buf = bytearray(max(size, ctypes.sizeof(st.vfio_region_info)))
            buf[:32] = bytes(st.vfio_region_info(argsz=size, index=index))
            code, _ = errno_of(self._ioctl, "VFIO_DEVICE_GET_REGION_INFO", buf)
            if code:
                return code, None
            out = st.vfio_region_info.from_bytes(buf)
            if out.argsz > size and argsz is None:
                size = out.argsz
                continue
            return 0, _decode_region(buf, out)
        return errno.EMSGSIZE, None

    def region_info(self, index: int) -> RegionInfo:
        return checked(self.try_region_info(index), f"VFIO_DEVICE_GET_REGION_INFO(index={index})", self.name)

    def irq_info(self, index: int) -> IrqInfo:
        buf = bytearray(bytes(st.vfio_irq_info(argsz=16, index=index)))
        self._call("VFIO_DEVICE_GET_IRQ_INFO", buf, f"index={index}")
        out = st.vfio_irq_info.from_bytes(buf)
        return IrqInfo(out.index, out.flags, out.count)

    def try_reset(self) -> int:
        return errno_of(self._ioctl, "VFIO_DEVICE_RESET")[0]

    def reset(self) -> None:
        checked((self.try_reset(), None), "VFIO_DEVICE_RESET", self.name)

    # -- regions --------------------------------------------------------------------
    def try_region_read(self, index: int, offset: int, size: int,
                        info: RegionInfo | None = None) -> tuple[int, bytes]:
        info = info or self.region_info(index)
        LAST_OPERATION.note(self.name, "pread(region)", index, offset, size)
        return errno_of(self.transport.pread, self.transport.device_fd, size, info.offset + offset,
                        failed=b"")

    def region_read(self, index: int, offset: int, size: int) -> bytes:
        return checked(self.try_region_read(index, offset, size),
                       f"pread(region {index}, offset {offset:#x}, {size})", self.name)

    def try_region_write(self, index: int, offset: int, data: bytes,
                         info: RegionInfo | None = None) -> tuple[int, int]:
        info = info or self.region_info(index)
        LAST_OPERATION.note(self.name, "pwrite(region)", index, offset, len(data))
        return errno_of(self.transport.pwrite, self.transport.device_fd, data, info.offset + offset,
                        failed=0)

    def region_write(self, index: int, offset: int, data: bytes) -> int:
        return checked(self.try_region_write(index, offset, data),
                       f"pwrite(region {index}, offset {offset:#x}, {len(data)})", self.name)

    def region_mmap(self, index: int, offset: int, length: int, writable: bool = False,
                    info: RegionInfo | None = None) -> mmap.mmap:
        """mmap `length` bytes at `offset` inside region `index` (raises OSError as the backend does)."""
        info = info or self.region_info(index)
        return self.transport.mmap(self.transport.device_fd, length, info.offset + offset, writable)

    # -- features --------------------------------------------------------------------
    def try_feature(self, feature: int, op: int, payload: bytes = b"",
                    argsz: int | None = None, out_size: int = 0) -> tuple[int, bytes]:
        """Raw VFIO_DEVICE_FEATURE: returns (errno, payload bytes after the 8-byte header)."""
        body = max(len(payload), out_size)
        buf = bytearray(8 + body)
        hdr = st.vfio_device_feature(argsz=8 + body if argsz is None else argsz,
                                     flags=int(op) | int(feature))
        buf[:8] = bytes(hdr)
        buf[8:8 + len(payload)] = payload
        LAST_OPERATION.note(self.name, "feature", int(feature), int(op), payload)
        code, _ = errno_of(self.transport.ioctl, self.transport.device_fd, _FEATURE, buf)
        return code, bytes(buf[8:])

    def feature(self, feature: int, op: int, payload: bytes = b"", out_size: int = 0) -> bytes:
        return checked(self.try_feature(feature, op, payload, out_size=out_size),
                       f"VFIO_DEVICE_FEATURE({_feature_name(feature)}, {FeatureOp(op)!r})", self.name)

    def probe_feature(self, feature: int, op: int = FeatureOp.GET) -> int:
        """PROBE (with GET/SET bits): 0 if supported, else the errno."""
        return self.try_feature(feature, FeatureOp.PROBE | op)[0]

    def migration_flags(self) -> MigFlag:
        data = self.feature(Feature.MIGRATION, FeatureOp.GET, out_size=8)
        return MigFlag(st.vfio_device_feature_migration.from_bytes(data).flags)

    def try_migration_flags(self) -> tuple[int, int]:
        code, data = self.try_feature(Feature.MIGRATION, FeatureOp.GET, out_size=8)
        return code, (st.vfio_device_feature_migration.from_bytes(data).flags if not code else 0)

    def get_state_raw(self) -> tuple[int, int, int]:
        """GET MIG_DEVICE_STATE: (errno, device_state, data_fd as written back)."""
        payload = bytes(st.vfio_device_feature_mig_state(device_state=0, data_fd=DATA_FD_SENTINEL))
        code, data = self.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.GET, payload)
        out = st.vfio_device_feature_mig_state.from_bytes(data)
        return code, out.device_state, out.data_fd

    def get_state(self) -> MigState:
        code, state, _ = self.get_state_raw()
        if code:
            raise UapiError(code, "VFIO_DEVICE_FEATURE(GET MIG_DEVICE_STATE)", self.name)
        try:
            return MigState(state)
        except ValueError:
            raise UapiError(errno.ERANGE, f"GET MIG_DEVICE_STATE returned {state}", self.name) from None

    def try_set_state(self, state: int) -> SetResult:
        """SET MIG_DEVICE_STATE; keeps whatever the kernel wrote back, an fd even on failure."""
        payload = bytes(st.vfio_device_feature_mig_state(device_state=int(state) & 0xFFFFFFFF,
                                                         data_fd=DATA_FD_SENTINEL))
        code, data = self.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.SET, payload)
        out = st.vfio_device_feature_mig_state.from_bytes(data)
        fd = DataFd(self, out.data_fd) if out.data_fd >= 0 else None
        return SetResult(code, int(state), out.device_state, fd, out.data_fd)

    def set_state(self, state: int) -> DataFd | None:
        result = self.try_set_state(state)
        if result.errno:
            if result.data_fd is not None:
                result.data_fd.close()
            raise UapiError(result.errno, f"SET MIG_DEVICE_STATE {MigState.label(state)}", self.name)
        return result.data_fd

    def walk(self, path) -> list[DataFd]:
        """SET each state of `path` in turn (single steps); returns any data_fds that came back."""
        fds = []
        for state in path:
            fd = self.set_state(state)
            if fd is not None:
                fds.append(fd)
        return fds

    def try_mig_data_size(self) -> tuple[int, int]:
        code, data = self.try_feature(Feature.MIG_DATA_SIZE, FeatureOp.GET, out_size=8)
        return code, (st.vfio_device_feature_mig_data_size.from_bytes(data).stop_copy_length
                      if not code else 0)

    def mig_data_size(self) -> int:
        return checked(self.try_mig_data_size(), "VFIO_DEVICE_FEATURE(GET MIG_DATA_SIZE)", self.name)

    # -- lifecycle ------------------------------------------------------------------------
    def to_safe_state(self) -> str:
        """Reset, or failing that SET RUNNING: never leave a device mid-session (mtty oopses on reopen)."""
        if self.try_reset() == 0:
            return "reset"
        result = self.try_set_state(MigState.RUNNING)
        if result.data_fd:
            result.data_fd.close()
        return "running" if result.ok else f"unsafe ({errno_name(result.errno)})"

    def close(self, safe: bool = True) -> None:
        if self.closed:
            return
        try:
            if safe:
                self.to_safe_state()
        finally:
            self.closed = True
            for fd in list(self._fds):
                try:
                    fd.close()
                except OSError:
                    pass
            self.transport.close(self.transport.device_fd)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, name: str, buf, args: str = "") -> int:
        return checked(errno_of(self._ioctl, name, buf), f"{name}({args})", self.name)

    def __repr__(self) -> str:
        return f"Device({self.name})"


def _feature_name(feature: int) -> str:
    try:
        return Feature(feature).name
    except ValueError:
        return str(feature)


def _decode_region(buf: bytearray, out: st.vfio_region_info) -> RegionInfo:
    """Walk the capability chain (bounded, loop- and bounds-checked by the region suites)."""
    caps, sparse, rtype = [], None, None
    flags = RegionFlag(out.flags)
    offset = out.cap_offset if flags & RegionFlag.CAPS else 0
    seen = set()
    while offset and offset not in seen and len(caps) < _MAX_CAP_CHAIN and offset + 8 <= len(buf):
        seen.add(offset)
        hdr = st.vfio_info_cap_header.from_bytes(buf, offset)
        caps.append(CapHeader(hdr.id, hdr.version, offset, hdr.next))
        if hdr.id == RegionCap.SPARSE_MMAP and offset + 16 <= len(buf):
            sm = st.vfio_region_info_cap_sparse_mmap_hdr.from_bytes(buf, offset)
            areas = []
            for i in range(min(sm.nr_areas, (len(buf) - offset - 16) // 16)):
                area = st.vfio_region_sparse_mmap_area.from_bytes(buf, offset + 16 + 16 * i)
                areas.append((area.offset, area.size))
            sparse = tuple(areas)
        elif hdr.id == RegionCap.TYPE and offset + 16 <= len(buf):
            t = st.vfio_region_info_cap_type.from_bytes(buf, offset)
            rtype = (t.type, t.subtype)
        offset = hdr.next
    return RegionInfo(out.index, flags, out.size, out.offset, out.argsz, tuple(caps), sparse, rtype,
                      bytes(buf))
