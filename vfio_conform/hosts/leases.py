"""Device leases: an exclusive `flock` on one lock file per device, held for as long as it is used.

The kernel drops an flock when the last descriptor of the lock file closes, so a worker that
crashes, is killed or exits releases its devices with nothing left to clean up. Two processes
(two xdist workers, or two runs on the same host) never hold the same device. The lock file
holds a line naming the holder (pid, host, run) for the messages of those who wait.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from ..base.errors import InfraError

#: Overrides the inventory's lease_dir (e.g. for a user without write access to /run).
LEASE_DIR_ENV = "VFIO_CONFORM_LEASE_DIR"


class LeaseBusy(InfraError):
    """Every candidate is held by someone else (the message names the holders)."""


@dataclasses.dataclass
class Lease:
    """Held locks of one unit (a device or a pair); `release()` or process exit frees them."""

    keys: tuple[str, ...]
    fds: list[int]
    directory: Path

    def release(self) -> None:
        while self.fds:
            fd = self.fds.pop()
            try:
                os.close(fd)           # closing the only descriptor drops the flock
            except OSError:
                pass

    @property
    def held(self) -> bool:
        return bool(self.fds)


def lease_dir(configured: str) -> Path:
    return Path(os.environ.get(LEASE_DIR_ENV) or configured)


def lock_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.lock"


def _open_lock(directory: Path, key: str) -> int:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return os.open(lock_path(directory, key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InfraError(f"cannot create lease file {lock_path(directory, key)}: {exc.strerror} "
                         f"(set lease_dir in the inventory or ${LEASE_DIR_ENV})") from None


def try_lock(directory: Path, key: str, holder: str) -> int | None:
    """The locked descriptor of `key`'s lease, or None if another process holds it."""
    fd = _open_lock(directory, key)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise InfraError(f"flock on {lock_path(directory, key)} failed: {exc.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, (holder + "\n").encode(), 0)
    return fd


def holder_of(directory: Path, key: str) -> str | None:
    """Who holds `key` ('pid 123 on host, run abc'), or None when nobody does."""
    path = lock_path(directory, key)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return (os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process")
        return None
    finally:
        os.close(fd)


def holder_text(session: str) -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}, run {session}"


def try_lease(directory: Path, keys: tuple[str, ...], holder: str) -> Lease | None:
    """All of `keys` at once, or none (a pair is never half taken)."""
    fds = []
    for key in keys:
        fd = try_lock(directory, key, holder)
        if fd is None:
            for held in fds:
                os.close(held)
            return None
        fds.append(fd)
    return Lease(tuple(keys), fds, directory)


def lease_one(directory: Path, candidates: list[tuple[str, ...]], holder: str, wait: float = 0.0,
              poll: float = 0.2) -> tuple[int, Lease]:
    """The first free candidate (index, lease); waits up to `wait` seconds, then LeaseBusy."""
    deadline = time.monotonic() + wait
    while True:
        for index, keys in enumerate(candidates):
            lease = try_lease(directory, keys, holder)
            if lease is not None:
                return index, lease
        if time.monotonic() >= deadline:
            held = sorted({f"{k} ({holder_of(directory, k) or 'free now'})"
                           for keys in candidates for k in keys})
            raise LeaseBusy(f"no free device: every candidate is leased: {'; '.join(held)}")
        time.sleep(poll)
