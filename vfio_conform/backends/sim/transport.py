"""SimTransport: the Transport protocol over a SimDevice, decoding uAPI buffers as the kernel does.

Every fd it hands out is real (so fcntl works): the device fd is an eventfd, a saving data fd the
read end of a pipe (O_RDONLY) and a resuming one the write end (O_WRONLY), as drivers open them;
the table fd -> session routes read/write/ioctl/pread/poll/close.
"""
from __future__ import annotations

import errno
import mmap
import os
import select
from typing import Callable

from ...uapi import structs as st
from ...uapi.enums import (FEATURE_MASK, DeviceFlag, Feature, FeatureOp, IrqFlag, MigFlag, MigState,
                           PciRegion, RegionFlag)
from ...uapi.ioctl import number
from ..pipes import session_pipe_end
from . import flr
from .config import SimConfig
from .device import SimDevice
from .hooks import SimTestHooks
from .regions import OFFSET_MASK, OFFSET_SHIFT, oserror
from .sessions import ResumingSession, SavingSession, Session, StraySession

_GET, _SET, _PROBE = int(FeatureOp.GET), int(FeatureOp.SET), int(FeatureOp.PROBE)
_NUM_IRQS = 5
#: IRQ index -> (flags, count) for the ones the sim offers (INTX, MSI).
_IRQS = {0: (IrqFlag.EVENTFD | IrqFlag.MASKABLE | IrqFlag.AUTOMASKED, 1),
         1: (IrqFlag.EVENTFD | IrqFlag.NORESIZE, 1)}
_IRQ_DATA = 0x7          # DATA_NONE | DATA_BOOL | DATA_EVENTFD
_IRQ_ACTION = 0x38       # ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER
#: VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (newer than 6.12) and its output flag.
PRECOPY_INFO_V2 = 12
PRECOPY_INFO_REINIT = 1 << 0


def _copy_in(buf, size: int, what: str) -> bytearray:
    """The kernel's copy_from_user of `size` bytes: EFAULT if the caller's buffer is shorter."""
    if not isinstance(buf, bytearray) or len(buf) < size:
        raise oserror(errno.EFAULT, f"{what}: argument is not a {size}-byte buffer")
    return buf


def _put(buf: bytearray, offset: int, data: bytes, what: str) -> None:
    """copy_to_user: EFAULT past the end of the caller's buffer."""
    if offset + len(data) > len(buf):
        raise oserror(errno.EFAULT, f"{what}: {offset + len(data)}-byte copy-out into {len(buf)} bytes")
    buf[offset:offset + len(data)] = data


class SimTransport:
    """Raw access to one SimDevice; owns the device fd, region memfds and every data fd it returns."""

    def __init__(self, config: SimConfig, name: str):
        self.config = config
        self.name = name
        self.device = SimDevice(config, name)
        self.device_fd = os.eventfd(0, os.EFD_CLOEXEC)
        self._data: dict[int, Session] = {}
        self.closed = False
        self.precopy_info_v2 = False         # the user opted in (per open, like a driver's file state)
        self.test_hooks = SimTestHooks(self.device)
        self._device_ioctls: dict[int, Callable[[object], int]] = {
            number("VFIO_DEVICE_GET_INFO"): self._device_info,
            number("VFIO_DEVICE_GET_REGION_INFO"): self._region_info,
            number("VFIO_DEVICE_GET_IRQ_INFO"): self._irq_info,
            number("VFIO_DEVICE_SET_IRQS"): self._set_irqs,
            number("VFIO_DEVICE_RESET"): self._reset,
            number("VFIO_DEVICE_FEATURE"): self._feature,
        }
        self._precopy_info = number("VFIO_MIG_GET_PRECOPY_INFO")

    # -- fd table ------------------------------------------------------------------------
    @property
    def data_fds(self) -> dict[int, Session]:
        return dict(self._data)

    def _session(self, fd: int, what: str) -> Session:
        if fd not in self._data:        # a data fd outlives the device fd (its session ended)
            raise oserror(errno.EBADF, f"{what} on fd {fd}: not a fd of {self.name}")
        return self._data[fd]

    def _install(self, session: Session) -> int:
        """A real fd for `session` with the access mode a driver gives it: the read end of a pipe for a
        saving session (O_RDONLY), the write end for a resuming one (O_WRONLY); O_CLOEXEC unless the
        no_cloexec knob is on. The pipe carries no data: read/write/ioctl go through the fd table."""
        faults = self.device.faults
        cloexec = 0 if faults.fire("no_cloexec") else os.O_CLOEXEC
        if isinstance(session, (SavingSession, ResumingSession)) and not faults.fire("data_fd_rdwr"):
            fd = session_pipe_end(isinstance(session, SavingSession), cloexec)
        else:
            fd = os.eventfd(0, os.EFD_CLOEXEC if cloexec else 0)
        session.fd = fd
        self._data[fd] = session
        return fd

    def poll(self, fd: int, events: int, timeout: float = 0.0) -> int:
        """poll() on a data fd from its session's state (the sim's data is always ready at once)."""
        if self.closed or fd not in self._data:
            return select.POLLNVAL
        return self._data[fd].poll(events)

    # -- Transport protocol ---------------------------------------------------------------
    def ioctl(self, fd: int, request: int, arg: bytearray | int | None = None) -> int:
        if fd == self.device_fd and not self.closed:
            handler = self._device_ioctls.get(request)
            if handler is None:
                raise oserror(errno.ENOTTY, f"ioctl {request:#x} on the device fd")
            return handler(arg)
        session = self._session(fd, f"ioctl {request:#x}")
        if request == self._precopy_info and isinstance(session, ResumingSession) \
                and self.device.faults.fire("precopy_info_on_resuming_einval"):
            raise oserror(errno.EINVAL, "VFIO_MIG_GET_PRECOPY_INFO on the resuming data fd")
        if request != self._precopy_info or not isinstance(session, SavingSession):
            raise oserror(errno.ENOTTY, f"ioctl {request:#x} on a {session.kind} data fd")
        buf = _copy_in(arg, 8, "VFIO_MIG_GET_PRECOPY_INFO")
        info = st.vfio_precopy_info.from_bytes(bytes(buf[:24]).ljust(24, b"\0"))
        faults = self.device.faults
        if info.argsz < 24 and not faults.fire("precopy_info_argsz_unchecked"):
            raise oserror(errno.EINVAL, f"VFIO_MIG_GET_PRECOPY_INFO argsz {info.argsz} < 24")
        _copy_in(arg, 24, "VFIO_MIG_GET_PRECOPY_INFO")
        info.initial_bytes, info.dirty_bytes = self.device.precopy_info(session)
        if self.precopy_info_v2:          # opted in: flags are output only
            info.flags = 0
            if getattr(session, "reinit_pending", False):
                session.reinit_pending = False
                info.flags |= PRECOPY_INFO_REINIT
                if faults.fire("precopy_reinit_keeps_dirty"):
                    info.dirty_bytes += 4096
        if faults.fire("precopy_info_stray_flags"):
            info.flags |= 0x2
        buf[:24] = bytes(info)
        return 0

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        if fd == self.device_fd and not self.closed:
            region, off = self._region_at(offset)
            return region.read(off, size)
        return self._session(fd, "pread()").pread(size, offset)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if fd == self.device_fd and not self.closed:
            region, off = self._region_at(offset)
            written = region.write(off, bytes(data))
            if region.spec.index == PciRegion.CONFIG and self.config.pcie_flr:
                flr.after_write(self.device, region, off, written)
            return written
        session = self._session(fd, "pwrite()")
        if self.device.faults.fire("seekable_fd"):
            return len(data)
        raise oserror(errno.ESPIPE, f"pwrite() on a {session.kind} data fd (a stream)")

    def read(self, fd: int, size: int, timeout: float | None = None) -> bytes:
        """Never blocks: the sim's data is always ready."""
        if fd == self.device_fd:
            raise oserror(errno.EINVAL, "read() on the device fd (use pread at a region offset)")
        return (self._data.get(fd) or self._session(fd, f"read({size})")).read(size)

    def write(self, fd: int, data: bytes, timeout: float | None = None) -> int:
        if fd == self.device_fd:
            raise oserror(errno.EINVAL, "write() on the device fd (use pwrite at a region offset)")
        session = self._data.get(fd) or self._session(fd, f"write({len(data)})")     # EBADF, named
        return session.write(data if getattr(session, "takes_views", False) else bytes(data))

    def mmap(self, fd: int, length: int, offset: int, writable: bool) -> mmap.mmap:
        if fd != self.device_fd or self.closed:
            self._session(fd, "mmap()")
            raise oserror(errno.ENODEV, "mmap() on a data fd")
        region, off = self._region_at(offset)
        return region.mmap(off, length, writable)

    def close(self, fd: int) -> None:
        """Close a data fd (the session and state stay), or the device fd: the device's close_device,
        which ends its sessions (their fds, still open, then give ENODEV)."""
        if fd == self.device_fd:
            self.close_device()
            return
        session = self._session(fd, "close()")
        del self._data[fd]
        session.fd = -1
        os.close(fd)
        device = self.device
        if session is device.session and session.active and isinstance(session, SavingSession) \
                and device.faults.fire("close_fd_changes_state"):
            device._force_state(MigState.STOP)

    def close_device(self) -> None:
        """The device fd's last close (idempotent): like the drivers' close_device, end the sessions
        (unless the close_keeps_session knob is on) and release the regions; data fds stay open."""
        if self.closed:
            return
        self.closed = True
        self.device.close()
        os.close(self.device_fd)

    def close_all(self) -> None:
        """Close the device fd and every data fd still open (idempotent)."""
        self.close_device()
        for fd in list(self._data):
            os.close(fd)
        self._data.clear()

    # -- device-fd ioctls -------------------------------------------------------------------
    def _region_at(self, offset: int):
        index = offset >> OFFSET_SHIFT
        if index >= len(self.device.regions):
            raise oserror(errno.EINVAL, f"offset {offset:#x}: no region {index}")
        return self.device.regions[index], offset & OFFSET_MASK

    def _device_info(self, arg) -> int:
        buf = _copy_in(arg, 16, "VFIO_DEVICE_GET_INFO")
        info = st.vfio_device_info.from_bytes(bytes(buf[:16]) + bytes(8))
        if info.argsz < 16:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_GET_INFO argsz {info.argsz} < 16")
        info.flags = DeviceFlag.PCI | (DeviceFlag.RESET if self.config.reset_supported else 0)
        info.num_regions = len(self.device.regions)
        info.num_irqs = _NUM_IRQS
        _put(buf, 0, bytes(info)[:min(info.argsz, 24)], "VFIO_DEVICE_GET_INFO")
        return 0

    def _region_info(self, arg) -> int:
        buf = _copy_in(arg, 32, "VFIO_DEVICE_GET_REGION_INFO")
        info = st.vfio_region_info.from_bytes(buf)
        if info.argsz < 32:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_GET_REGION_INFO argsz {info.argsz} < 32")
        if info.index >= len(self.device.regions):
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_GET_REGION_INFO index {info.index}")
        region = self.device.regions[info.index]
        info.flags, info.size, info.offset, caps = region.info_fields(32)
        info.cap_offset = 0
        if caps:
            info.flags |= RegionFlag.CAPS
            if info.argsz < 32 + len(caps):
                info.argsz = 32 + len(caps)
            else:
                _put(buf, 32, caps, "VFIO_DEVICE_GET_REGION_INFO caps")
                info.cap_offset = 32
        buf[:32] = bytes(info)
        return 0

    def _irq_info(self, arg) -> int:
        buf = _copy_in(arg, 16, "VFIO_DEVICE_GET_IRQ_INFO")
        info = st.vfio_irq_info.from_bytes(buf)
        if info.argsz < 16 or info.index >= _NUM_IRQS or info.index not in _IRQS:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_GET_IRQ_INFO argsz {info.argsz} index {info.index}")
        info.flags, info.count = _IRQS[info.index]
        buf[:16] = bytes(info)
        return 0

    def _set_irqs(self, arg) -> int:
        buf = _copy_in(arg, 20, "VFIO_DEVICE_SET_IRQS")
        irq = st.vfio_irq_set.from_bytes(buf)
        data, action = irq.flags & _IRQ_DATA, irq.flags & _IRQ_ACTION
        bad = (irq.argsz < 20 or irq.flags & ~(_IRQ_DATA | _IRQ_ACTION) or bin(data).count("1") != 1
               or bin(action).count("1") != 1 or irq.index not in _IRQS
               or irq.start + irq.count > _IRQS[irq.index][1])
        if bad:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_SET_IRQS {irq!r}")
        return 0

    def _reset(self, arg) -> int:
        self.device.reset()
        return 0

    # -- VFIO_DEVICE_FEATURE (vfio-uapi.md 4.1, in the core's order) -------------------------
    def _feature(self, arg) -> int:
        buf = _copy_in(arg, 8, "VFIO_DEVICE_FEATURE")
        hdr = st.vfio_device_feature.from_bytes(buf)
        argsz, flags = hdr.argsz, hdr.flags
        if argsz < 8:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_FEATURE argsz {argsz} < 8")
        if flags & ~(FEATURE_MASK | _GET | _SET | _PROBE):
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_FEATURE unknown flag bits {flags:#x}")
        if flags & _GET and flags & _SET and not flags & _PROBE:
            if not self.device.faults.fire("feature_get_set_accepted"):
                raise oserror(errno.EINVAL, "VFIO_DEVICE_FEATURE GET|SET without PROBE")
            flags &= ~_GET                    # the knob: the request runs as a SET
        feature = flags & FEATURE_MASK
        row = self._feature_row(feature)
        if row is None:
            raise oserror(self._absent_feature_errno(feature), f"VFIO_DEVICE_FEATURE {feature} not supported")
        ops, size, handler = row
        if flags & (_GET | _SET) & ~ops:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_FEATURE {feature}: op {flags & (_GET | _SET):#x}")
        if flags & _PROBE:
            return 0
        if not flags & (_GET | _SET):
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_FEATURE {feature}: neither GET nor SET")
        if argsz - 8 < size:
            raise oserror(errno.EINVAL, f"VFIO_DEVICE_FEATURE {feature}: argsz {argsz} < {8 + size}")
        _copy_in(buf, 8 + size, f"VFIO_DEVICE_FEATURE {feature} payload")
        return handler(flags, buf)

    def _absent_feature_errno(self, feature: int) -> int:
        """ENOTTY (the core without mig_ops/log_ops, vfio-pci-core for unknown features); the knobs
        answer EINVAL for a missing migration or logging feature instead."""
        faults = self.device.faults
        if feature in (Feature.MIGRATION, Feature.MIG_DEVICE_STATE, Feature.MIG_DATA_SIZE) \
                and faults.fire("mig_features_einval_without_ops"):
            return errno.EINVAL
        if feature in (Feature.DMA_LOGGING_START, Feature.DMA_LOGGING_STOP, Feature.DMA_LOGGING_REPORT) \
                and faults.fire("log_features_einval_without_ops"):
            return errno.EINVAL
        return errno.ENOTTY

    def _feature_row(self, feature: int):
        """(allowed ops, payload size, handler) for `feature`, or None (ENOTTY)."""
        if feature == PRECOPY_INFO_V2:
            offered = self.config.precopy_info_v2 and self.config.flags & MigFlag.PRE_COPY
            return (_SET, 0, self._f_precopy_v2) if offered else None
        if feature in (Feature.MIGRATION, Feature.MIG_DEVICE_STATE, Feature.MIG_DATA_SIZE):
            if not self.config.flags:
                return None
            return {Feature.MIGRATION: (_GET, 8, self._f_migration),
                    Feature.MIG_DEVICE_STATE: (_GET | _SET, 8, self._f_mig_state),
                    Feature.MIG_DATA_SIZE: (_GET, 8, self._f_data_size)}[feature]
        if feature in (Feature.DMA_LOGGING_START, Feature.DMA_LOGGING_STOP, Feature.DMA_LOGGING_REPORT):
            if not self.config.dma_logging:
                return None
            return {Feature.DMA_LOGGING_START: (_SET, 24, self._f_log_start),
                    Feature.DMA_LOGGING_STOP: (_SET, 0, self._f_log_stop),
                    Feature.DMA_LOGGING_REPORT: (_GET, 32, self._f_log_report)}[feature]
        return None

    def _f_precopy_v2(self, flags: int, buf: bytearray) -> int:
        """MIG_PRECOPY_INFOv2 SET (no payload): PRECOPY_INFO flags become output only."""
        self.precopy_info_v2 = True
        return 0

    def _f_migration(self, flags: int, buf: bytearray) -> int:
        buf[8:16] = bytes(st.vfio_device_feature_migration(flags=self.device.migration_flags()))
        return 0

    def _f_data_size(self, flags: int, buf: bytearray) -> int:
        buf[8:16] = bytes(st.vfio_device_feature_mig_data_size(stop_copy_length=self.device.data_size()))
        return 0

    def _f_mig_state(self, flags: int, buf: bytearray) -> int:
        mig = st.vfio_device_feature_mig_state.from_bytes(buf, 8)
        if flags & _GET:
            mig.device_state, mig.data_fd = self.device.get_state(), -1
            buf[8:16] = bytes(mig)
            return 0
        faults = self.device.faults
        sentinel, mig.data_fd = mig.data_fd, -1
        try:
            session = self.device.set_state(mig.device_state)
        except OSError:
            # the core: device_state = requested (never the state reached), data_fd = -1
            if faults.fire("writeback_reached_state"):
                mig.device_state = self.device.state
            if faults.fire("failed_set_returns_fd"):
                mig.data_fd = self._install(StraySession(faults))
            buf[8:16] = bytes(mig)
            raise
        if session is not None:
            mig.data_fd = self._install(session)
        elif faults.fire("data_fd_sentinel_kept"):
            mig.data_fd = sentinel          # the caller's word left as it was
        buf[8:16] = bytes(mig)
        return 0

    def _f_log_start(self, flags: int, buf: bytearray) -> int:
        ctl = st.vfio_device_feature_dma_logging_control.from_bytes(buf, 8)
        ctl.page_size = self.device.dma.start(ctl)
        buf[8:32] = bytes(ctl)
        return 0

    def _f_log_stop(self, flags: int, buf: bytearray) -> int:
        self.device.dma.stop()
        return 0

    def _f_log_report(self, flags: int, buf: bytearray) -> int:
        self.device.dma.report(st.vfio_device_feature_dma_logging_report.from_bytes(buf, 8))
        return 0

    # -- the DMA map table (the IOMMU's in the kernel; VFIO_USER_DMA_MAP over vfio-user) ----------
    def dma_map_raw(self, address: int, size: int, fd: int = -1) -> int:
        """Map [address, +size) for the device's DMA: 0 or the errno (type1's checks)."""
        try:
            self.device.dma_maps.map(address, size)
        except OSError as exc:
            return exc.errno
        return 0

    def dma_unmap_raw(self, address: int, size: int) -> int:
        try:
            self.device.dma_maps.unmap(address, size)
        except OSError as exc:
            return exc.errno
        return 0

    def __enter__(self) -> "SimTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close_all()

    def __repr__(self) -> str:
        return f"SimTransport({self.name}, {self.device.state.name}, {len(self._data)} data fds)"

