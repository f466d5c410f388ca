"""KernelTransport: the Transport protocol on real fds (fcntl.ioctl, os.pread, poll-bounded read/write)."""
from __future__ import annotations

import errno
import fcntl
import functools
import math
import mmap
import os
import select
import time

from ...base.errors import HarnessTimeout, UapiError
from ...uapi.ioctl import IOCTLS
from .holdings import note_mapped
from .open_paths import OpenedDevice


def ioctl_name(request: int, fd_kind: str) -> str:
    """C name of `request` as issued on an fd of `fd_kind` (numbers collide across fd kinds)."""
    for row in IOCTLS.values():
        if row.number == request and row.fd == fd_kind:
            return row.name
    names = [row.name for row in IOCTLS.values() if row.number == request]
    return f"{'/'.join(names)}?" if names else f"ioctl {request:#x}"


class KernelTransport:
    """Raw access to one opened VFIO device; owns the device, group, container and iommufd fds.

    Closing the device fd (what `Device.close()` does) also closes the group, container and
    iommufd fds it was opened through. Data fds are closed one by one by their owners.
    """

    #: read/write on a data fd are plain syscalls: DataFd may copy with readv into one buffer.
    raw_data_fds = True

    def __init__(self, opened: OpenedDevice, io_timeout: float = 30.0, location=None):
        self.opened = opened
        self.name = opened.name
        self.device_fd = opened.device_fd
        self.io_timeout = io_timeout
        self.location = location
        self._kinds = opened.fd_kinds()

    # -- helpers ---------------------------------------------------------------------
    def fd_kind(self, fd: int) -> str:
        """'device', 'group', 'container', 'iommufd', or 'data' for any other fd."""
        return self._kinds.get(fd, "data")

    def _error(self, exc: OSError, operation: str) -> UapiError:
        return UapiError(exc.errno or errno.EIO, operation, self.name)

    def _wait(self, fd: int, event: int, deadline: float, timeout: float, op: str) -> None:
        """Poll `fd` for `event` until the deadline; HarnessTimeout naming the fd and op."""
        poller = select.poll()
        poller.register(fd, event)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessTimeout(f"{op} on {self.fd_kind(fd)} fd {fd} of {self.name} did not complete "
                                     f"within {timeout:g}s")
            try:
                ready = poller.poll(math.ceil(remaining * 1000))
            except InterruptedError:
                continue
            for _, revents in ready:
                if revents & select.POLLNVAL:
                    raise UapiError(errno.EBADF, f"{op} on fd {fd} (not open)", self.name)
                return      # readable/writable, or POLLERR/POLLHUP: the syscall reports it

    # -- Transport protocol ---------------------------------------------------------
    def ioctl(self, fd: int, request: int, arg: bytearray | int | None = None) -> int:
        """fcntl.ioctl; a bytearray is updated in place; errors name the ioctl, fd kind and errno."""
        while True:
            try:
                if isinstance(arg, bytearray):
                    return fcntl.ioctl(fd, request, arg, True)
                return fcntl.ioctl(fd, request, 0 if arg is None else arg)
            except InterruptedError:
                continue
            except OSError as exc:
                kind = self.fd_kind(fd)
                raise self._error(exc, f"{ioctl_name(request, kind)} on {kind} fd {fd}") from None

    def bound_ioctl(self, fd: int, request: int):
        """`request` on `fd` as one C callable taking the bytearray (updated in place): the hot path
        of the Device (SET MIG_DEVICE_STATE); raises plain OSError, the caller keeps only the errno."""
        return functools.partial(fcntl.ioctl, fd, request)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        try:
            return os.pread(fd, size, offset)
        except OSError as exc:
            raise self._error(exc, f"pread({size} bytes at {offset:#x}) on {self.fd_kind(fd)} fd {fd}") from None

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        try:
            return os.pwrite(fd, data, offset)
        except OSError as exc:
            raise self._error(exc, f"pwrite({len(data)} bytes at {offset:#x}) on "
                                   f"{self.fd_kind(fd)} fd {fd}") from None

    def read(self, fd: int, size: int, timeout: float | None = None) -> bytes:
        """Wait (poll) for data, then read; never waits longer than `timeout` in poll."""
        timeout = self.io_timeout if timeout is None else timeout
        deadline, op = time.monotonic() + timeout, f"read({size})"
        while True:
            self._wait(fd, select.POLLIN, deadline, timeout, op)
            try:
                return os.read(fd, size)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise self._error(exc, f"{op} on {self.fd_kind(fd)} fd {fd}") from None

    def write(self, fd: int, data: bytes, timeout: float | None = None) -> int:
        """Wait (poll) until writable, then write; returns the bytes accepted."""
        timeout = self.io_timeout if timeout is None else timeout
        deadline, op = time.monotonic() + timeout, f"write({len(data)})"
        while True:
            self._wait(fd, select.POLLOUT, deadline, timeout, op)
            try:
                return os.write(fd, data)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise self._error(exc, f"{op} on {self.fd_kind(fd)} fd {fd}") from None

    def mmap(self, fd: int, length: int, offset: int, writable: bool) -> mmap.mmap:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        try:
            mapping = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=prot, offset=offset)
        except OSError as exc:
            raise self._error(exc, f"mmap({length} bytes at {offset:#x}, "
                                   f"{'rw' if writable else 'ro'}) on {self.fd_kind(fd)} fd {fd}") from None
        note_mapped(self.name, mapping)
        return mapping

    def close(self, fd: int) -> None:
        """Close a data fd, or the device fd together with the fds it was opened through."""
        if fd == self.device_fd:
            self.close_all()
            return
        kind = self.fd_kind(fd)
        try:
            os.close(fd)
        except OSError as exc:
            raise self._error(exc, f"close({kind} fd {fd})") from None

    def close_all(self) -> None:
        """Close device, group, container and iommufd fds (idempotent)."""
        self.opened.close()
        self._kinds = {}

    def __enter__(self) -> "KernelTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close_all()

    def __repr__(self) -> str:
        return f"KernelTransport({self.name}, {self.opened.path_kind}, device fd {self.device_fd})"
