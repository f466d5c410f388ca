"""How every output file of the harness is written and how its path is checked before a run.

One writer for all of them (JSON summary, KTAP, JUnit, Allure results, HTML reports and diffs):

- a target that exists and is not a regular file (a character device such as /dev/null or
  /dev/full, a FIFO, or a symlink to one of those) is opened and written **in place**; it is never
  replaced, truncated by a rename, or turned into a regular file. A FIFO is opened without
  blocking: no reader is an error, not a hang.
- a regular file (or a path that does not exist yet) is written **atomically**: a temporary file in
  the same directory, renamed over the target once it is whole. A symlink to a regular file keeps
  the link: its target is the file replaced.
- any other kind of target (a directory, a block device, a socket) is refused.

`check_file` / `check_dir` make the same decisions up front, without writing anything, so
`vfio-conform run` refuses an output path before the first test (exit 2). A write that fails
later (a full disk, /dev/full) raises OutputError: one line naming the output and the reason.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Iterator

from .errors import ConfigError


class OutputError(OSError):
    """An output file could not be written; str() is one line naming what and why."""

    def __init__(self, what: str, path: str | os.PathLike, reason: str):
        self.what, self.path, self.reason = what, str(path), reason
        super().__init__(f"cannot write the {what} to {path}: {reason}")

    def __str__(self) -> str:
        return self.args[0]


class OutputPathError(ConfigError):
    """An output path refused before the run (a usage error: exit 2)."""


def _reason(exc: OSError) -> str:
    return exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISFIFO, "a FIFO")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _in_place(mode: int) -> bool:
    """Targets written where they are: character devices and FIFOs."""
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _target_mode(path: Path) -> int | None:
    """st_mode of what `path` names, symlinks followed; None when nothing is there (a dangling
    symlink counts as nothing there: its target is created)."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):     # the latter: a file on the way
        return None


def check_file(path: str | os.PathLike, what: str, *, create_parents: bool = False) -> None:
    """Refuse (OutputPathError, one line) an output file path that could not be written.

    Accepted: a writable regular file in a writable directory, a writable character device or
    FIFO (written in place), a path that does not exist yet in a writable directory. With
    `create_parents`, missing parent directories are fine if they can be created."""
    path = Path(path)
    mode = _target_mode(path)
    if mode is not None:
        if _in_place(mode):
            if not os.access(path, os.W_OK):
                raise OutputPathError(f"{what} {path}: {_kind(mode)} that cannot be written")
            return
        if not stat.S_ISREG(mode):
            raise OutputPathError(f"{what} {path}: is {_kind(mode)}, not a file")
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{what} {path}: the file cannot be written")
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    parent = real.parent if str(real.parent) else Path(".")
    if create_parents:
        check_dir(parent, f"{what}'s directory")
        return
    parent_mode = _target_mode(parent)
    if parent_mode is None:
        raise OutputPathError(f"{what} {path}: the directory {parent} does not exist")
    if not stat.S_ISDIR(parent_mode):
        raise OutputPathError(f"{what} {path}: {parent} is {_kind(parent_mode)}, not a directory")
    _writable_dir(parent, what, path)


def check_dir(path: str | os.PathLike, what: str) -> None:
    """Refuse an output directory that is not one, or that cannot be created or written: the
    nearest existing ancestor must be a writable directory."""
    path = Path(path)
    probe = path
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    mode = _target_mode(probe)
    if mode is None:                        # a dangling symlink on the way
        raise OutputPathError(f"{what} {path}: {probe} is a dangling symlink")
    if not stat.S_ISDIR(mode):
        where = "" if probe == path else f" ({probe} is {_kind(mode)})"
        raise OutputPathError(f"{what} {path}: is not a directory{where}" if probe == path
                              else f"{what} {path}: cannot be created{where}")
    _writable_dir(probe, what, path)


def _writable_dir(directory: Path, what: str, path: Path) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        why = "is on read-only media" if _read_only_fs(directory) else "cannot be written"
        raise OutputPathError(f"{what} {path}: the directory {directory} {why}")


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@contextlib.contextmanager
def open_output(path: str | os.PathLike, what: str) -> Iterator:
    """A binary file to write `path` through (see the module docstring); OutputError on failure.

    Parent directories of a regular file are created. On an error a temporary file is removed and
    the target is left as it was."""
    path = Path(path)
    mode = _target_mode(path)
    try:
        if mode is not None and _in_place(mode):
            with _open_in_place(path, mode) as f:
                yield f
            return
        if mode is not None and not stat.S_ISREG(mode):
            raise OutputError(what, path, f"is {_kind(mode)}, not a file")
        real = Path(os.path.realpath(path)) if path.is_symlink() else path
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = real.with_name(f".{real.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            if mode is not None:
                with contextlib.suppress(OSError):
                    os.chmod(tmp, stat.S_IMODE(mode))
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(what, path, _reason(exc)) from None


@contextlib.contextmanager
def _open_in_place(path: Path, mode: int) -> Iterator:
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    if stat.S_ISFIFO(mode):
        flags |= os.O_NONBLOCK          # no reader: ENXIO at once, not a hang
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISFIFO(mode):
            raise OSError(errno.ENXIO, "a FIFO with no reader") from None
        raise
    if stat.S_ISFIFO(mode):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()


def save_traceback(text: str, directory: str | os.PathLike | None = None) -> str | None:
    """Keep a crash's traceback in `directory` (else the temporary directory, e.g. when the reports
    disk is full) as vfio-conform-crash-*.txt; its path, or None when nowhere could take it."""
    import tempfile
    places = ([Path(directory)] if directory else []) + [Path(tempfile.gettempdir())]
    for where in places:
        try:
            where.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="vfio-conform-crash-", suffix=".txt", dir=where)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return name
        except OSError:
            continue
    return None


def write_bytes(path: str | os.PathLike, data: bytes, what: str) -> Path:
    with open_output(path, what) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, what: str) -> Path:
    return write_bytes(path, text.encode("utf-8"), what)
