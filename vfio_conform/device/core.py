"""Device: one VFIO device over any backend, every operation encoded with the uAPI structs."""
from __future__ import annotations

import ctypes
import errno
import struct
import time
from typing import TYPE_CHECKING, Any, Iterable

from ..base.errors import RequestAborted, SpecViolation, UapiError, errno_name
from ..base.interrupts import deferred
from ..model.fsm import BlockedArc, next_step
from ..uapi import structs as st
from ..uapi.enums import MIG_STATE_NR, DeviceFlag, Feature, FeatureOp, MigFlag, MigState
from ..uapi.ioctl import number
from .datafd import DataFd
from .errnos import checked, errno_of
from .lastop import LAST_OPERATION
from .datafd import SetResult
from .records import DATA_FD_SENTINEL, DeviceInfo, IrqInfo, _decode_region, _feature_name

if TYPE_CHECKING:
    import mmap

    from .transport import Transport
    from .records import RegionInfo

_FEATURE = number("VFIO_DEVICE_FEATURE")
#: SET MIG_DEVICE_STATE as one packed request: vfio_device_feature {argsz, flags} followed by
#: vfio_device_feature_mig_state {device_state, data_fd}; the header never changes, so a SET is
#: one pack and one unpack instead of building and copying ctypes structs on every call.
_MIG_REQUEST = struct.Struct("=IIIi")
_MIG_WORDS = struct.Struct("=Ii")
_FEATURE_HDR = struct.Struct("=II")
#: GET MIG_DEVICE_STATE's payload: device_state 0, data_fd the sentinel the kernel overwrites
_GET_PAYLOAD = _MIG_WORDS.pack(0, DATA_FD_SENTINEL)
_MIG_ARGSZ = ctypes.sizeof(st.vfio_device_feature) + ctypes.sizeof(st.vfio_device_feature_mig_state)
_MIG_SET_FLAGS = int(FeatureOp.SET) | int(Feature.MIG_DEVICE_STATE)
_monotonic = time.monotonic
#: state -> (packed SET request, int(state)) for the states a suite SETs over and over
_SET_REQUESTS: dict[int, tuple[bytes, int]] = {}


def _set_request(state: int) -> tuple[bytes, int]:
    """The SET request for `state` (cached for small non-negative states: the legal and near ones)."""
    value = int(state)
    req = (_MIG_REQUEST.pack(_MIG_ARGSZ, _MIG_SET_FLAGS, value & 0xFFFFFFFF, DATA_FD_SENTINEL), value)
    if 0 <= value < 64:
        _SET_REQUESTS[value] = req
    return req


assert _MIG_REQUEST.size == _MIG_ARGSZ and st.vfio_device_feature_mig_state.data_fd.offset == 4


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
        #: what the device last reported: its migration flags and state (None: not known)
        self._known_flags: int | None = None
        self._known_state: int | None = None
        #: the SET MIG_DEVICE_STATE ioctl bound to the device fd, if the transport offers one
        #: (the kernel's: fcntl.ioctl itself); otherwise transport.ioctl is looked up per call
        bound = getattr(transport, "bound_ioctl", None)
        self._set_call = bound(transport.device_fd, _FEATURE) if bound is not None else None

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def test_hooks(self) -> Any:
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
        buf = bytearray(_FEATURE_HDR.pack((8 + body if argsz is None else argsz) & 0xFFFFFFFF,
                                          (int(op) | int(feature)) & 0xFFFFFFFF))
        buf += payload
        if len(buf) < 8 + body:
            buf += bytes(8 + body - len(buf))
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
        self._known_flags = st.vfio_device_feature_migration.from_bytes(data).flags
        return MigFlag(self._known_flags)

    def try_migration_flags(self) -> tuple[int, int]:
        code, data = self.try_feature(Feature.MIGRATION, FeatureOp.GET, out_size=8)
        flags = st.vfio_device_feature_migration.from_bytes(data).flags if not code else 0
        if not code:
            self._known_flags = flags
        return code, flags

    def get_state_raw(self) -> tuple[int, int, int]:
        """GET MIG_DEVICE_STATE: (errno, device_state, data_fd as written back)."""
        code, data = self.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.GET, _GET_PAYLOAD)
        state, data_fd = _MIG_WORDS.unpack_from(data)
        self._known_state = state if not code else None
        return code, state, data_fd

    def get_state(self) -> MigState:
        code, state, _ = self.get_state_raw()
        if code:
            raise UapiError(code, "VFIO_DEVICE_FEATURE(GET MIG_DEVICE_STATE)", self.name)
        try:
            return MigState(state)
        except ValueError:
            raise UapiError(errno.ERANGE, f"GET MIG_DEVICE_STATE returned {state}", self.name) from None

    def _set_raw(self, state: int) -> tuple[int, int, int]:
        """One SET MIG_DEVICE_STATE `state`: (errno, device_state and data_fd as written back).

        The hot path of every suite: a cached request copied, one ioctl, one unpack, and the last
        operation noted with a single store; no ctypes structs are built.
        """
        req, value = _SET_REQUESTS.get(state) or _set_request(state)
        buf = bytearray(req)
        transport = self.transport
        LAST_OPERATION.op = op = (transport.name, ("set", value), _monotonic())
        call = self._set_call
        while True:
            try:
                if call is not None:
                    call(buf)
                else:
                    transport.ioctl(transport.device_fd, _FEATURE, buf)
                code = 0
            except InterruptedError:
                continue
            except OSError as exc:
                code = exc.errno or errno.EIO
            except RequestAborted as exc:
                raise self._aborted_set(value, exc) from exc
            break
        LAST_OPERATION.done = op     # it returned (a timeout never gets here: see plugin/timeout.py)
        if LAST_OPERATION.keep is not None:      # an output keeps the test's operations
            LAST_OPERATION.keep(op)
            if code:
                LAST_OPERATION.keep(code)
        written, raw_fd = _MIG_WORDS.unpack_from(buf, 8)
        self._known_state = None if code else value
        return code, written, raw_fd

    def try_set_state(self, state: int) -> SetResult:
        """SET MIG_DEVICE_STATE; keeps whatever the kernel wrote back, an fd even on failure."""
        code, written, raw_fd = self._set_raw(state)
        return SetResult(code, int(state), written, DataFd(self, raw_fd) if raw_fd >= 0 else None, raw_fd)

    def _aborted_set(self, state: int, exc: RequestAborted) -> SpecViolation:
        """The device's server went away instead of answering SET `state`: the rule that SET was under.

        A SET the FSM allows from the last state the device reported must succeed (fsm.legal-arc);
        one it refuses must fail with EINVAL (fsm.illegal-arc-einval, fsm.out-of-range-einval).
        """
        cur, flags = self._known_state, self._known_flags
        if not 0 <= state < MIG_STATE_NR:
            rule = "fsm.out-of-range-einval"
        elif state == MigState.ERROR:
            rule = "fsm.illegal-arc-einval"
        elif cur is None or flags is None:
            rule = "fsm.legal-arc"
        else:
            try:
                next_step(MigState(cur), state, flags)
                rule = "fsm.legal-arc"
            except (ValueError, BlockedArc):
                rule = "fsm.illegal-arc-einval"
        came = f" from {MigState.label(cur)}" if cur is not None else ""
        self._known_state = None
        return SpecViolation(rule, f"SET MIG_DEVICE_STATE {MigState.label(state)}{came}: the device closed "
                                   f"its connection instead of answering ({exc})", self.name)

    def set_state(self, state: int) -> DataFd | None:
        """SET MIG_DEVICE_STATE `state`; UapiError on failure; the data_fd it returned, if any."""
        code, _written, raw_fd = self._set_raw(state)
        fd = DataFd(self, raw_fd) if raw_fd >= 0 else None
        if code:
            if fd is not None:
                fd.close()
            raise UapiError(code, f"SET MIG_DEVICE_STATE {MigState.label(int(state))}", self.name)
        return fd

    def walk(self, path: Iterable[int]) -> list[DataFd]:
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

    def close(self, safe: bool = True, keep_data_fds: bool = False) -> None:
        """Close the device fd (first returning the device to RUNNING when `safe`) and, unless
        `keep_data_fds`, every data fd still open (kept ones stay the caller's to close)."""
        if self.closed:
            return
        try:
            if safe:
                self.to_safe_state()
        finally:
            # every fd closed, or none: a SIGTERM arriving half-way would leave the device held
            # by this process, and its driver could not be given back (the kernel's unbind waits)
            with deferred():
                self.closed = True
                for fd in [] if keep_data_fds else list(self._fds):
                    try:
                        fd.close()
                    except OSError:
                        pass
                self.transport.close(self.transport.device_fd)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, name: str, buf: bytearray | int | None, args: str = "") -> int:
        return checked(errno_of(self._ioctl, name, buf), f"{name}({args})", self.name)

    def __repr__(self) -> str:
        return f"Device({self.name})"
