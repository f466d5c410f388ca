"""The byte-level transport every backend provides, and the backend registry.

A Transport moves raw bytes and ioctl buffers between the harness and one device; it
knows nothing about VFIO structs. `vfio_conform.device.Device` encodes and decodes
everything on top of it, so the sim and the kernel run the very same uAPI code.
"""
from __future__ import annotations

import mmap
from typing import Callable, Protocol, runtime_checkable


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


#: name -> factory(profile, device_id) -> Transport
_BACKENDS: dict[str, Callable] = {}


class RegistrationError(Exception):
    pass


def register_backend(name: str):
    """Class/function decorator: make a transport factory available to profiles by `name`."""
    def deco(factory):
        if name in _BACKENDS:
            raise RegistrationError(f"backend {name!r} registered twice")
        _BACKENDS[name] = factory
        return factory
    return deco


def backend(name: str) -> Callable:
    """The factory registered as `name` (KeyError lists the known ones)."""
    _load_builtin()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r} (known: {', '.join(sorted(_BACKENDS))})") from None


def backend_names() -> list[str]:
    _load_builtin()
    return sorted(_BACKENDS)


def _load_builtin() -> None:
    from . import kernel, sim  # noqa: F401  (registration side effect)
