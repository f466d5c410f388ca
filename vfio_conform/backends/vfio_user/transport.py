"""VfioUserTransport: the Transport protocol over a vfio-user connection.

The harness speaks the kernel uAPI (ioctl buffers on a device fd, read/write on a data fd); this
transport turns each call into vfio-user messages:

    VFIO_DEVICE_GET_INFO / GET_REGION_INFO / GET_IRQ_INFO / SET_IRQS / RESET / FEATURE
        -> VFIO_USER_DEVICE_* (same payload layout as the kernel structs)
    pread/pwrite on the device fd -> VFIO_USER_REGION_READ/WRITE (chunked by max_data_xfer_size)
    mmap on the device fd -> mmap of the fd the server passed with GET_REGION_INFO
    read/write on a data fd -> VFIO_USER_MIG_DATA_READ/WRITE (chunked)

The device fd is an eventfd (a real fd number; nothing flows through it). Region offsets are
presented as `index << 40` (as vfio-pci does) and translated back. vfio-user has no data fd: a SET
MIG_DEVICE_STATE that opens a saving or resuming session in the kernel's model hands out the read
(saving) or write (resuming) end of a pipe as the data fd; no bytes flow through the pipe.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct

from ...uapi import structs as st
from ...uapi.enums import FEATURE_MASK, Feature, FeatureOp, MigState, RegionFlag
from ...uapi.ioctl import number
from ...model.spec import NO_MIG_DATA_SIZE, NO_PRECOPY_INFO
from ...results.outcomes import not_supported
from ..pipes import session_pipe_end
from .connection import Connection, VfioUserProtocolError, _close_fds
from .protocol import Cmd

OFFSET_SHIFT = 40
OFFSET_MASK = (1 << OFFSET_SHIFT) - 1
_SAVING = (MigState.STOP_COPY, MigState.PRE_COPY, MigState.PRE_COPY_P2P)
_ACCESS = struct.Struct("<QII")      # struct vfio_user_region_access {u64 offset; u32 region, count}
_MIG_DATA = struct.Struct("<II")     # struct vfio_user_mig_data {u32 argsz, size}
_MAX_LOG_RANGES = 1 << 16
_MAX_DMA_MAP = 1 << 30
_DMA_READ, _DMA_WRITE = 1 << 0, 1 << 1          # VFIO_USER_F_DMA_REGION_READ / _WRITE


def _err(code: int, message: str) -> OSError:
    return OSError(code, f"{message}: {os.strerror(code)}")


class _DataFd:
    def __init__(self, fd: int, saving: bool):
        self.fd, self.saving, self.ended = fd, saving, False


class VfioUserTransport:
    """Raw access to one vfio-user device; owns the socket, the device fd, region fds and data fds."""

    #: VFIO_DEVICE_FEATURE indexes vfio-user does not define, and why (a request for one is
    #: not-supported, never answered with a made-up errno).
    not_offered_features = {int(Feature.MIG_DATA_SIZE): NO_MIG_DATA_SIZE}

    def __init__(self, socket_path: str, io_timeout: float = 30.0, connect_timeout: float | None = None,
                 name: str | None = None):
        self.name = name or f"vfio-user:{socket_path}"
        self.conn = Connection(socket_path, io_timeout, connect_timeout)
        self.caps = self.conn.caps
        self.device_fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.closed = False
        #: region index -> (fd or -1, the server's mmap offset in that fd)
        self._region_fds: dict[int, tuple[int, int]] = {}
        self._data: dict[int, _DataFd] = {}
        self._dma: dict[tuple[int, int], bool] = {}
        self._handlers = {
            number("VFIO_DEVICE_GET_INFO"): self._device_info,
            number("VFIO_DEVICE_GET_REGION_INFO"): self._region_info,
            number("VFIO_DEVICE_GET_IRQ_INFO"): self._irq_info,
            number("VFIO_DEVICE_SET_IRQS"): self._set_irqs,
            number("VFIO_DEVICE_RESET"): self._reset,
            number("VFIO_DEVICE_FEATURE"): self._feature,
        }

    @property
    def connection_lost(self) -> bool:
        """True after a protocol fault: the server is gone or out of step; open the device again."""
        return self.conn.broken is not None

    @property
    def max_xfer(self) -> int:
        return max(1, self.caps.max_data_xfer_size)

    # -- Transport protocol ------------------------------------------------------------
    def ioctl(self, fd: int, request: int, arg: bytearray | int | None = None) -> int:
        if fd == self.device_fd and not self.closed:
            handler = self._handlers.get(request)
            if handler is None:
                raise _err(errno.ENOTTY, f"ioctl {request:#x} on the device fd")
            return handler(arg)
        self._data_fd(fd, f"ioctl {request:#x}")
        if request == number("VFIO_MIG_GET_PRECOPY_INFO"):
            # no such message in vfio-user: the test cannot be run here (no errno is made up)
            not_supported(NO_PRECOPY_INFO)
        raise _err(errno.ENOTTY, f"ioctl {request:#x} on a data fd (the kernel's data fd has no other ioctl)")

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        if fd != self.device_fd or self.closed:
            self._data_fd(fd, "pread()")
            raise _err(errno.ESPIPE, "pread() on a data fd (a stream)")
        index, off = offset >> OFFSET_SHIFT, offset & OFFSET_MASK
        out = bytearray()
        while len(out) < size or size == 0:
            count = min(size - len(out), self.max_xfer)
            reply = self.conn.request(Cmd.REGION_READ, _ACCESS.pack(off + len(out), index, count))
            _close_fds(reply.fds)
            data = self._access_reply(Cmd.REGION_READ, reply.payload, count, with_data=True)
            out += data
            if size == 0 or not data:
                break
        return bytes(out)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if fd != self.device_fd or self.closed:
            self._data_fd(fd, "pwrite()")
            raise _err(errno.ESPIPE, "pwrite() on a data fd (a stream)")
        index, off = offset >> OFFSET_SHIFT, offset & OFFSET_MASK
        data, done = bytes(data), 0
        while done < len(data) or not data:
            chunk = data[done:done + self.max_xfer]
            reply = self.conn.request(Cmd.REGION_WRITE, _ACCESS.pack(off + done, index, len(chunk)) + chunk)
            _close_fds(reply.fds)
            self._access_reply(Cmd.REGION_WRITE, reply.payload, len(chunk), with_data=False)
            done += len(chunk)
            if not data:
                break
        return done

    def _access_reply(self, cmd: Cmd, payload: bytes, count: int, with_data: bool) -> bytes:
        if len(payload) < _ACCESS.size:
            raise self._protocol(cmd, f"{len(payload)}-byte reply (< {_ACCESS.size})")
        _, _, got = _ACCESS.unpack_from(payload)
        if got > count:
            raise self._protocol(cmd, f"reply count {got} > the {count} bytes asked for")
        if with_data:
            data = payload[_ACCESS.size:]
            if len(data) < got:
                raise self._protocol(cmd, f"reply says {got} bytes but carries {len(data)}")
            return data[:got]
        return b""

    def _protocol(self, cmd: Cmd, message: str) -> VfioUserProtocolError:
        return self.conn._fail(VfioUserProtocolError(f"VFIO_USER_{cmd.name}", message, self.conn.path))

    def read(self, fd: int, size: int, timeout: float | None = None) -> bytes:
        if fd == self.device_fd:
            raise _err(errno.EINVAL, "read() on the device fd (use pread at a region offset)")
        data_fd = self._data_fd(fd, f"read({size})")
        if not data_fd.saving:
            raise _err(errno.EBADF, "read() on a resuming (write-only) data fd")
        if data_fd.ended:
            raise _err(errno.ENODEV, "read() on a data fd whose session ended")
        size = min(size, self.max_xfer)
        reply = self.conn.request(Cmd.MIG_DATA_READ, _MIG_DATA.pack(_MIG_DATA.size + size, size),
                                  timeout=timeout)
        _close_fds(reply.fds)
        if len(reply.payload) < _MIG_DATA.size:
            raise self._protocol(Cmd.MIG_DATA_READ, f"{len(reply.payload)}-byte reply (< {_MIG_DATA.size})")
        _, got = _MIG_DATA.unpack_from(reply.payload)
        data = reply.payload[_MIG_DATA.size:]
        if got > size or len(data) < got:
            raise self._protocol(Cmd.MIG_DATA_READ, f"reply size {got} for a {size}-byte read carrying "
                                 f"{len(data)} bytes")
        return bytes(data[:got])

    def write(self, fd: int, data: bytes, timeout: float | None = None) -> int:
        if fd == self.device_fd:
            raise _err(errno.EINVAL, "write() on the device fd (use pwrite at a region offset)")
        data_fd = self._data_fd(fd, f"write({len(data)})")
        if data_fd.saving:
            raise _err(errno.EBADF, "write() on a saving (read-only) data fd")
        if data_fd.ended:
            raise _err(errno.ENODEV, "write() on a data fd whose session ended")
        chunk = bytes(data[:self.max_xfer])
        reply = self.conn.request(Cmd.MIG_DATA_WRITE, _MIG_DATA.pack(_MIG_DATA.size + len(chunk), len(chunk))
                                  + chunk, timeout=timeout)
        _close_fds(reply.fds)
        return len(chunk)

    def mmap(self, fd: int, length: int, offset: int, writable: bool) -> mmap.mmap:
        if fd != self.device_fd or self.closed:
            self._data_fd(fd, "mmap()")
            raise _err(errno.ENODEV, "mmap() on a data fd")
        index, off = offset >> OFFSET_SHIFT, offset & OFFSET_MASK
        if index not in self._region_fds:
            self._region_info_for(index)
        region_fd, base = self._region_fds.get(index, (-1, 0))
        if region_fd < 0:
            raise _err(errno.EINVAL, f"mmap() of region {index}: the server passed no fd for it")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(region_fd, length, mmap.MAP_SHARED, prot, offset=base + off)

    def close(self, fd: int) -> None:
        if self.closed:
            return
        if fd == self.device_fd:
            self.close_all()
            return
        self._data_fd(fd, "close()")
        del self._data[fd]
        os.close(fd)

    def close_all(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in list(self._data):
            os.close(fd)
        self._data.clear()
        _close_fds([fd for fd, _ in self._region_fds.values() if fd >= 0])
        self._region_fds.clear()
        self.conn.close()
        os.close(self.device_fd)

    def __enter__(self) -> "VfioUserTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close_all()

    def __repr__(self) -> str:
        return f"VfioUserTransport({self.name}, {len(self._data)} data fds)"

    # -- data fds ----------------------------------------------------------------------------
    def _data_fd(self, fd: int, what: str) -> _DataFd:
        if self.closed or fd not in self._data:
            raise _err(errno.EBADF, f"{what} on fd {fd}: not a fd of {self.name}")
        return self._data[fd]

    def _new_data_fd(self, saving: bool) -> int:
        keep = session_pipe_end(saving)
        self._data[keep] = _DataFd(keep, saving)
        return keep

    def _end_sessions(self) -> None:
        for data_fd in self._data.values():
            data_fd.ended = True

    # -- device-fd ioctls -----------------------------------------------------------------------
    @staticmethod
    def _buffer(arg, size: int, what: str) -> bytearray:
        if not isinstance(arg, bytearray) or len(arg) < size:
            raise _err(errno.EFAULT, f"{what}: argument is not a {size}-byte buffer")
        return arg

    def _simple(self, cmd: Cmd, arg, size: int, what: str) -> int:
        """Send the caller's struct (argsz bytes) and copy the reply back over it."""
        buf = self._buffer(arg, size, what)
        argsz = struct.unpack_from("<I", buf)[0]
        out = bytes(buf[:max(size, min(argsz, len(buf)))])
        reply = self.conn.request(cmd, out)
        _close_fds(reply.fds)
        payload = reply.payload[:len(buf)]
        buf[:len(payload)] = payload
        return 0

    def _device_info(self, arg) -> int:
        buf = self._buffer(arg, 16, "VFIO_DEVICE_GET_INFO")
        argsz = struct.unpack_from("<I", buf)[0]
        if argsz < 16:
            raise _err(errno.EINVAL, f"VFIO_DEVICE_GET_INFO argsz {argsz} < 16")
        # vfio_user_device_info has no cap_offset: ask for 16 bytes, report argsz as sent.
        reply = self.conn.request(Cmd.DEVICE_GET_INFO, struct.pack("<IIII", 16, 0, 0, 0))
        _close_fds(reply.fds)
        if len(reply.payload) < 16:
            raise self._protocol(Cmd.DEVICE_GET_INFO, f"{len(reply.payload)}-byte reply (< 16)")
        _, flags, nregions, nirqs = struct.unpack_from("<IIII", reply.payload)
        buf[4:16] = struct.pack("<III", flags, nregions, nirqs)
        if len(buf) >= 24 and argsz >= 24:
            buf[16:24] = bytes(8)
        return 0

    def _region_info_for(self, index: int) -> None:
        buf = bytearray(4096)
        buf[:32] = bytes(st.vfio_region_info(argsz=4096, index=index))
        try:
            self._region_info(buf)
        except OSError:
            self._region_fds[index] = (-1, 0)

    def _region_info(self, arg) -> int:
        buf = self._buffer(arg, 32, "VFIO_DEVICE_GET_REGION_INFO")
        info = st.vfio_region_info.from_bytes(buf)
        if info.argsz < 32:
            raise _err(errno.EINVAL, f"VFIO_DEVICE_GET_REGION_INFO argsz {info.argsz} < 32")
        ask = min(info.argsz, len(buf))
        reply = self.conn.request(Cmd.DEVICE_GET_REGION_INFO, bytes(buf[:32]) if ask == 32 else
                                  struct.pack("<I", ask) + bytes(buf[4:32]))
        if len(reply.payload) < 32:
            _close_fds(reply.fds)
            raise self._protocol(Cmd.DEVICE_GET_REGION_INFO, f"{len(reply.payload)}-byte reply (< 32)")
        out = st.vfio_region_info.from_bytes(reply.payload[:32])
        if out.index != info.index:
            _close_fds(reply.fds)
            raise self._protocol(Cmd.DEVICE_GET_REGION_INFO, f"reply for region {out.index}, asked {info.index}")
        if reply.fds:
            old = self._region_fds.get(info.index)
            if old and old[0] >= 0:
                os.close(old[0])
            self._region_fds[info.index] = (reply.fds[0], out.offset)
            _close_fds(reply.fds[1:])
        elif info.index not in self._region_fds:
            self._region_fds[info.index] = (-1, out.offset)
        if out.flags & RegionFlag.MMAP and self._region_fds[info.index][0] < 0 and out.argsz <= ask:
            # the server announces MMAP but passed no fd: the region cannot be mapped through us
            out.flags &= ~RegionFlag.MMAP
        out.offset = info.index << OFFSET_SHIFT
        payload = bytearray(reply.payload[:len(buf)])
        payload[:32] = bytes(out)
        buf[:len(payload)] = payload
        return 0

    def _irq_info(self, arg) -> int:
        return self._simple(Cmd.DEVICE_GET_IRQ_INFO, arg, 16, "VFIO_DEVICE_GET_IRQ_INFO")

    def _set_irqs(self, arg) -> int:
        buf = self._buffer(arg, 20, "VFIO_DEVICE_SET_IRQS")
        irq = st.vfio_irq_set.from_bytes(buf)
        fds: list[int] = []
        if irq.flags & 0x4 and irq.argsz >= 20 + 4 * irq.count:     # DATA_EVENTFD: pass the fds
            fds = [f for f in struct.unpack_from(f"<{irq.count}i", buf, 20) if f >= 0]
            payload = bytes(buf[:20])
            payload = struct.pack("<I", 20) + payload[4:]
        else:
            payload = bytes(buf[:max(20, min(irq.argsz, len(buf)))])
        reply = self.conn.request(Cmd.DEVICE_SET_IRQS, payload, fds=fds)
        _close_fds(reply.fds)
        return 0

    def _reset(self, arg) -> int:
        reply = self.conn.request(Cmd.DEVICE_RESET)
        _close_fds(reply.fds)
        self._end_sessions()
        return 0

    def _feature(self, arg) -> int:
        buf = self._buffer(arg, 8, "VFIO_DEVICE_FEATURE")
        argsz, flags = struct.unpack_from("<II", buf)
        feature = flags & FEATURE_MASK
        op = flags & (FeatureOp.GET | FeatureOp.SET | FeatureOp.PROBE)
        if feature in self.not_offered_features:
            not_supported(self.not_offered_features[feature])   # not in the specification's table
        if feature == Feature.DMA_LOGGING_STOP and op == FeatureOp.SET:
            try:
                return self._simple_feature(buf, argsz)
            finally:
                self._dma_unmap_all(defer=True)   # the mappings made for START go with the log
        if feature == Feature.DMA_LOGGING_START and op == FeatureOp.SET and argsz >= 32 and len(buf) >= 32:
            return self._log_start(buf, argsz, flags)
        if feature == Feature.DMA_LOGGING_REPORT and op == FeatureOp.GET and argsz >= 40 and len(buf) >= 40:
            return self._log_report(buf, flags)
        is_state_set = feature == Feature.MIG_DEVICE_STATE and flags & FeatureOp.SET \
            and not flags & FeatureOp.PROBE
        before = self._current_state() if is_state_set else None
        out = bytes(buf[:min(max(argsz, 8), len(buf))])
        try:
            reply = self.conn.request(Cmd.DEVICE_FEATURE, out)
        except OSError:
            if feature == Feature.MIG_DEVICE_STATE and len(buf) >= 16 and not flags & FeatureOp.PROBE:
                struct.pack_into("<i", buf, 12, -1)     # no data fd on a failed SET, as the kernel
            raise
        _close_fds(reply.fds)
        payload = reply.payload[8:len(buf)]
        buf[8:8 + len(payload)] = payload
        if is_state_set and len(buf) >= 16:
            new = struct.unpack_from("<I", buf, 8)[0]
            struct.pack_into("<i", buf, 12, self._session_fd(before, new))
        elif feature == Feature.MIG_DEVICE_STATE and len(buf) >= 16:
            # vfio-user carries no fd in this field: the kernel's -1 for "no data fd"
            struct.pack_into("<i", buf, 12, -1)
        return 0

    def _simple_feature(self, buf: bytearray, argsz: int) -> int:
        reply = self.conn.request(Cmd.DEVICE_FEATURE, bytes(buf[:min(max(argsz, 8), len(buf))]))
        _close_fds(reply.fds)
        payload = reply.payload[8:len(buf)]
        buf[8:8 + len(payload)] = payload
        return 0

    # -- DMA logging: the kernel passes user pointers, vfio-user carries the arrays inline ------------
    def _log_start(self, buf: bytearray, argsz: int, flags: int) -> int:
        """DMA_LOGGING_START: inline the ranges the caller points at; DMA_MAP each range first (the
        server logs writes to mapped client memory, as a VMM's guest RAM is mapped before logging)."""
        page_size, num, reserved, ptr = struct.unpack_from("<QIIQ", buf, 8)
        if num > _MAX_LOG_RANGES or (num and not ptr):
            raise _err(errno.EINVAL if num and not ptr else errno.E2BIG,
                       f"DMA_LOGGING_START: {num} ranges at {ptr:#x}")
        raw = ctypes.string_at(ptr, 16 * num) if num else b""
        self._dma_unmap_all()                     # what an earlier STOP could not unmap (raises)
        made = []
        try:
            for i in range(num):
                if self._dma_map(*struct.unpack_from("<QQ", raw, 16 * i)):
                    made.append(struct.unpack_from("<QQ", raw, 16 * i))
            payload = struct.pack("<QII", page_size, num, reserved) + raw
            reply = self.conn.request(Cmd.DEVICE_FEATURE, struct.pack("<II", 8 + len(payload), flags) + payload)
        except OSError:
            for iova, length in made:             # a refused START keeps no mapping it needed
                self._dma_unmap(iova, length)
            raise
        _close_fds(reply.fds)
        if len(reply.payload) >= 16:
            buf[8:16] = reply.payload[8:16]           # the page size the server selected
        return 0

    def _log_report(self, buf: bytearray, flags: int) -> int:
        """DMA_LOGGING_REPORT: the server returns the bitmap inline; copy it to the caller's pointer."""
        iova, length, page_size, ptr = struct.unpack_from("<QQQQ", buf, 8)
        # one bit per page in whole u64 words (the kernel's iova_bitmap and libvfio-user agree)
        pages = -(-length // page_size) if page_size else 0
        bitmap_size = -(-pages // 64) * 8
        request = struct.pack("<IIQQQ", 8 + 24 + bitmap_size, flags, iova, length, page_size)
        reply = self.conn.request(Cmd.DEVICE_FEATURE, request)
        _close_fds(reply.fds)
        bitmap = reply.payload[8 + 24:]
        if len(bitmap) > bitmap_size:
            raise self._protocol(Cmd.DEVICE_FEATURE, f"DMA_LOGGING_REPORT bitmap of {len(bitmap)} bytes, "
                                 f"{bitmap_size} expected")
        if bitmap and ptr:
            # the kernel sets the dirty bits in the caller's bitmap (iova_bitmap_set), never clears
            old = ctypes.string_at(ptr, len(bitmap))
            ctypes.memmove(ptr, bytes(a | b for a, b in zip(old, bitmap)), len(bitmap))
        return 0

    def _dma_map(self, iova: int, length: int) -> bool:
        """VFIO_USER_DMA_MAP a memfd of `length` bytes at `iova` for DMA_LOGGING_START (True if mapped
        now). Ranges the kernel's START would refuse (empty, unaligned, past 1 GiB) are not mapped; a
        map the server refuses fails the START with the server's errno (it is never ignored)."""
        if (iova, length) in self._dma or not length or length > _MAX_DMA_MAP or iova % 4096 or length % 4096 \
                or iova + length > 1 << 64:
            return False
        fd = os.memfd_create("vfio-conform-dma", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, length)
            code = self.dma_map_raw(iova, length, fd)
        finally:
            os.close(fd)
        if code:
            raise _err(code, f"VFIO_USER_DMA_MAP of [{iova:#x}, +{length:#x}) for DMA_LOGGING_START refused")
        self._dma[(iova, length)] = True
        return True

    def _dma_unmap(self, iova: int, length: int) -> None:
        self._dma.pop((iova, length), None)
        code = self.dma_unmap_raw(iova, length)
        if code:
            raise _err(code, f"VFIO_USER_DMA_UNMAP of [{iova:#x}, +{length:#x}) (mapped for DMA_LOGGING_START)")

    def _dma_unmap_all(self, defer: bool = False) -> None:
        """Unmap what START mapped. With `defer` a refusal (libvfio-user refuses DMA_UNMAP while the
        device is stopped) keeps the mapping for the next START to unmap; there a refusal fails."""
        for iova, length in list(self._dma):
            try:
                self._dma_unmap(iova, length)
            except OSError:
                if not defer:
                    raise
                self._dma[(iova, length)] = True

    def dma_map_raw(self, address: int, size: int, fd: int = -1) -> int:
        """One VFIO_USER_DMA_MAP (readable and writable; `fd` passed when >= 0): 0 or the server's errno."""
        payload = struct.pack("<IIQQQ", 32, _DMA_READ | _DMA_WRITE, 0, address % (1 << 64), size % (1 << 64))
        try:
            reply = self.conn.request(Cmd.DMA_MAP, payload, fds=[fd] if fd >= 0 else [])
        except OSError as exc:
            if isinstance(exc, VfioUserProtocolError) or not exc.errno:
                raise
            return exc.errno
        _close_fds(reply.fds)
        return 0

    def dma_unmap_raw(self, address: int, size: int) -> int:
        """One VFIO_USER_DMA_UNMAP: 0 or the server's errno."""
        payload = struct.pack("<IIQQ", 24, 0, address % (1 << 64), size % (1 << 64))
        try:
            reply = self.conn.request(Cmd.DMA_UNMAP, payload)
        except OSError as exc:
            if isinstance(exc, VfioUserProtocolError) or not exc.errno:
                raise
            return exc.errno
        _close_fds(reply.fds)
        return 0

    def _current_state(self) -> int | None:
        request = struct.pack("<IIII", 16, int(FeatureOp.GET) | int(Feature.MIG_DEVICE_STATE), 0, 0)
        try:
            reply = self.conn.request(Cmd.DEVICE_FEATURE, request)
        except OSError:
            return None
        _close_fds(reply.fds)
        return struct.unpack_from("<I", reply.payload, 8)[0] if len(reply.payload) >= 12 else None

    def _session_fd(self, before: int | None, new: int) -> int:
        """The data fd the kernel's model hands out for the arc before -> new (-1 for none)."""
        if before == new:
            return -1
        saving_before = before in _SAVING
        if new in _SAVING and not saving_before:
            self._end_sessions()
            return self._new_data_fd(saving=True)
        if new == MigState.RESUMING:
            self._end_sessions()
            return self._new_data_fd(saving=False)
        if new not in _SAVING:
            self._end_sessions()
        return -1
