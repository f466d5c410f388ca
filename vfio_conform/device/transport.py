"""The byte-level transport every backend provides (the registry is backends/registry.py).

A Transport moves raw bytes and ioctl buffers between the harness and one device; it
knows nothing about VFIO structs. `vfio_conform.device.Device` encodes and decodes
everything on top of it, so the sim and the kernel run the very same uAPI code.
"""
from __future__ import annotations

import mmap
from typing import Protocol, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    """Raw access to one opened device and the fds it hands out.

    Every fd is a real file descriptor number (the sim backs its fds with eventfds and pipes), so
    fcntl checks such as FD_CLOEXEC work the same on every backend.
    """

    #: Human-readable device id (BDF, mdev UUID, sim instance name) for messages.
    name: str
    #: The device fd.
    device_fd: int

    def ioctl(self, fd: int, request: int, arg: bytearray | int | None = None) -> int:
        """Issue `request` on `fd`; a bytearray is updated in place.

        Guarantees: returns the ioctl's non-negative return value or raises OSError(errno).
        """

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Positional read (regions on the device fd; ESPIPE on a data fd)."""

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """Positional write; returns bytes written."""

    def read(self, fd: int, size: int, timeout: float) -> bytes:
        """Stream read on a data fd. Guarantees: never blocks longer than `timeout` (HarnessTimeout)."""

    def write(self, fd: int, data: bytes, timeout: float) -> int:
        """Stream write on a data fd, bounded by `timeout`; returns bytes accepted."""

    def mmap(self, fd: int, length: int, offset: int, writable: bool) -> mmap.mmap:
        """Map `length` bytes at `offset` of `fd` (MAP_SHARED); raises OSError."""

    def close(self, fd: int) -> None:
        """Close an fd this transport handed out (data fds) or the device fd."""
