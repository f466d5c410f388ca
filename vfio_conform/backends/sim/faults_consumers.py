"""What the consumer knobs (faults.py, area consumers) do: break what QEMU and cloud-hypervisor
expect of a device (suites/consumers).

The knobs act at the uAPI boundary: `attach(transport)` wraps a SimTransport's ioctl/read/close
when (and only when) one of them is configured, so the reference device itself is untouched.
"""
from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from ...uapi.enums import FEATURE_MASK, Feature, FeatureOp, MigState
from ...uapi.ioctl import number
from .faults import names_in
from .sessions import ResumingSession, SavingSession

if TYPE_CHECKING:
    from .transport import SimTransport

S = MigState
_GET, _SET, _PROBE = int(FeatureOp.GET), int(FeatureOp.SET), int(FeatureOp.PROBE)
_GET_ONLY = (Feature.MIGRATION, Feature.MIG_DATA_SIZE)
_PRECOPY_INFO_V2 = 12          # VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (newer than the 6.12 headers)
_RESET_FLAG = 1 << 0           # VFIO_DEVICE_FLAGS_RESET

#: Migration state each sim device id had when its fd was closed (only under reopen_keeps_state).
_KEPT_STATE: dict[str, MigState] = {}

#: The consumer knobs (faults.py, area consumers): a transport is wrapped only if one is on.
NAMES: frozenset[str] = names_in("consumers")


def oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


def attach(transport: "SimTransport") -> "SimTransport":
    """Route `transport`'s ioctl/read/close through the consumer knobs configured on its device."""
    faults = transport.device.faults
    if not any(name in faults for name in NAMES):
        return transport
    kept = _KEPT_STATE.pop(transport.name, None)
    if kept is not None and faults.fire("reopen_keeps_state"):
        transport.device._force_state(kept)
    hooks = _Hooks(transport)
    transport.ioctl, transport.read, transport.close = hooks.ioctl, hooks.read, hooks.close
    return transport


class _Hooks:
    """The knob behaviour around one transport's original methods."""

    def __init__(self, transport: "SimTransport"):
        self._saving, self._resuming = SavingSession, ResumingSession
        self.t, self.dev, self.faults = transport, transport.device, transport.device.faults
        self._ioctl, self._read, self._close = transport.ioctl, transport.read, transport.close
        self._stop_copy_read: set[int] = set()
        self._feature = number("VFIO_DEVICE_FEATURE")
        self._region_info = number("VFIO_DEVICE_GET_REGION_INFO")
        self._reset = number("VFIO_DEVICE_RESET")
        self._info = number("VFIO_DEVICE_GET_INFO")
        self._precopy = number("VFIO_MIG_GET_PRECOPY_INFO")

    # -- ioctl -----------------------------------------------------------------------------
    def ioctl(self, fd: int, request: int, arg=None) -> int:
        if fd == self.t.device_fd and not self.t.closed:
            if request == self._feature and isinstance(arg, bytearray) and len(arg) >= 8:
                return self._feature_ioctl(fd, request, arg)
            if request == self._region_info and isinstance(arg, bytearray) and len(arg) >= 32:
                return self._region_info_ioctl(fd, request, arg)
            if request == self._reset:
                return self._reset_ioctl(fd, request, arg)
            if request == self._info and isinstance(arg, bytearray) and len(arg) >= 8:
                return self._info_ioctl(fd, request, arg)
        if request == self._precopy:
            return self._precopy_ioctl(fd, request, arg)
        return self._ioctl(fd, request, arg)

    def _feature_ioctl(self, fd: int, request: int, buf: bytearray) -> int:
        argsz, flags = struct.unpack_from("<II", buf)
        feature, ops = flags & FEATURE_MASK, flags & (_GET | _SET | _PROBE)
        fire = self.faults.fire
        if ops == _PROBE and feature == Feature.DMA_LOGGING_START and fire("probe_dma_start_fails"):
            raise oserror(errno.ENOTTY, "PROBE DMA_LOGGING_START")
        if (ops == _PROBE and feature == Feature.DMA_LOGGING_START and not self.t.config.dma_logging
                and fire("probe_dma_start_unclaimed")):
            return 0
        if feature == _PRECOPY_INFO_V2 and fire("unknown_feature_einval"):
            raise oserror(errno.EINVAL, "unknown feature 12")
        if ops == _SET and feature in _GET_ONLY and fire("set_on_get_only_ok"):
            return 0
        if ops == _GET and feature in _GET_ONLY and 8 <= argsz < 16 and fire("feature_argsz_unchecked"):
            return 0
        if (ops == _GET and feature == Feature.DMA_LOGGING_REPORT
                and self.dev.state in (S.STOP, S.STOP_COPY) and fire("dma_report_fails_stopped")):
            raise oserror(errno.EIO, "DMA_LOGGING_REPORT while stopped")
        if ops == _SET and feature == Feature.MIG_DEVICE_STATE and "reset_error_sticky" in self.faults:
            was = self.dev.state
            try:
                return self._ioctl(fd, request, buf)
            except OSError:
                if was is S.RESUMING and self.dev.state is S.RESUMING:
                    fire("reset_error_sticky")
                    self.dev._force_state(S.ERROR)
                raise
        code = self._ioctl(fd, request, buf)
        if (ops == _GET and feature == Feature.MIG_DATA_SIZE and self.dev.state is S.RUNNING
                and fire("data_size_zero_running")):
            buf[8:16] = bytes(8)
        if ops == _SET and feature == Feature.DMA_LOGGING_START and fire("dma_start_granule_zero"):
            buf[8:16] = bytes(8)
        return code

    def _region_info_ioctl(self, fd: int, request: int, buf: bytearray) -> int:
        argsz = struct.unpack_from("<I", buf)[0]
        if argsz < 32 and self.faults.fire("region_info_small_argsz_ok"):
            struct.pack_into("<I", buf, 0, 32)
            code = self._ioctl(fd, request, buf)
            struct.pack_into("<I", buf, 0, argsz)
            return code
        code = self._ioctl(fd, request, buf)
        if struct.unpack_from("<I", buf)[0] > argsz and self.faults.fire("region_info_caps_argsz_kept"):
            struct.pack_into("<I", buf, 0, argsz)
        return code

    def _info_ioctl(self, fd: int, request: int, buf: bytearray) -> int:
        code = self._ioctl(fd, request, buf)
        flags = struct.unpack_from("<I", buf, 4)[0]
        if not flags & _RESET_FLAG and self.faults.fire("reset_flag_spurious"):
            struct.pack_into("<I", buf, 4, flags | _RESET_FLAG)
        elif flags & _RESET_FLAG and self.faults.fire("reset_flag_hidden"):
            struct.pack_into("<I", buf, 4, flags & ~_RESET_FLAG)
        return code

    def _reset_ioctl(self, fd: int, request: int, arg) -> int:
        if self.dev.state is S.ERROR and self.faults.fire("reset_error_sticky"):
            return 0
        if self.t.config.reset_supported and self.faults.fire("reset_flag_without_reset"):
            raise oserror(errno.EINVAL, "VFIO_DEVICE_RESET")
        return self._ioctl(fd, request, arg)

    def _precopy_ioctl(self, fd: int, request: int, buf) -> int:
        code = self._ioctl(fd, request, buf)
        initial = struct.unpack_from("<Q", buf, 8)[0]
        if self.faults.fire("precopy_initial_endless"):
            initial += 1 << 20
        elif self.faults.fire("precopy_initial_underreported"):
            initial //= 2
        struct.pack_into("<Q", buf, 8, initial)
        return code

    # -- data fds ----------------------------------------------------------------------------
    def read(self, fd: int, size: int, timeout: float | None = None) -> bytes:
        session = self.t.data_fds.get(fd)
        live_saving = isinstance(session, self._saving) and session.active
        if live_saving and self.dev.state is S.STOP_COPY and id(session) not in self._stop_copy_read:
            self._stop_copy_read.add(id(session))
            if self.faults.fire("enomsg_before_stop_copy_data"):
                raise oserror(errno.ENOMSG, "STOP_COPY data not staged yet")
        try:
            data = self._read(fd, size, timeout)
        except OSError as exc:
            if exc.errno == errno.ENOMSG and live_saving and self.faults.fire("precopy_initial_endless"):
                return b"\0"
            raise
        if not data and size and live_saving and self.dev.state in (S.PRE_COPY, S.PRE_COPY_P2P) \
                and self.faults.fire("precopy_initial_endless"):
            return b"\0"
        return data

    def close(self, fd: int) -> None:
        if fd == self.t.device_fd and not self.t.closed and "reopen_keeps_state" in self.faults:
            _KEPT_STATE[self.t.name] = self.dev.state
        session = self.t.data_fds.get(fd)
        self._close(fd)
        if isinstance(session, self._resuming) and session.active \
                and self.faults.fire("resume_close_drops_data"):
            session.buf.clear()
