"""Saved migration streams kept on disk, and mutations of them as edits applied while streaming.

A device state may be gigabytes: a suite never holds one as a bytes object. A saved stream is a file
in the run's spill directory (`--vc-spill-dir`, else $VFIO_CONFORM_SPILL_DIR, else a fresh directory
under the system temp dir; removed at the end of the session) with its length, running digest and
the offsets where the device's reads ended. A mutated stream is the saved one plus a list of edits
(flip bytes, cut, append) that `read()` applies to the piece being written: any slice of it costs
one pread of that slice.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Protocol

SPILL_ENV = "VFIO_CONFORM_SPILL_DIR"
#: A slice of a stream asked for as bytes is at most this long (a bytes object of a whole state never exists).
MAX_SLICE = 64 << 20


class SpillDir:
    """A private directory for the run's saved streams, made when the first stream is spilled (a run
    that spills nothing, or is killed before it does, leaves no directory); `cleanup()` removes it
    and everything in it."""

    def __init__(self, parent: str | None = None):
        parent = parent or os.environ.get(SPILL_ENV) or None
        if parent is not None and not os.path.isdir(parent):
            raise NotADirectoryError(f"spill directory parent {parent!r} is not a directory")
        self.parent = parent
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="vfio-conform-spill-", dir=self.parent)
        return self._path

    def new_file(self, prefix: str = "stream-"):
        """An unbuffered binary file in the directory, unlinked by its owner (SavedStream.close)."""
        fd, path = tempfile.mkstemp(prefix=prefix, dir=self.path)
        return path, os.fdopen(fd, "w+b", buffering=0)

    def temporary_file(self, prefix: str = "stream-"):
        """An anonymous unbuffered temporary file in the directory (gone when closed)."""
        return tempfile.TemporaryFile(prefix=prefix, dir=self.path, buffering=0)

    def cleanup(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None


_DEFAULT: SpillDir | None = None


def use_spill_dir(d: SpillDir | None) -> None:
    """Make `d` the directory `default_spill_dir()` hands out (the run's fixture sets it)."""
    global _DEFAULT
    _DEFAULT = d


def default_spill_dir() -> SpillDir:
    """The run's spill directory, or a private one removed when the process exits."""
    global _DEFAULT
    if _DEFAULT is None:
        import atexit
        _DEFAULT = SpillDir()
        atexit.register(_DEFAULT.cleanup)
    return _DEFAULT


class Stream(Protocol):
    """What `resume()` writes: `length` bytes, any slice readable by offset."""

    length: int

    def read(self, offset: int, size: int) -> bytes: ...


@dataclasses.dataclass
class InMemory:
    """A small stream held as bytes (an empty stream, a 1000-byte foreign device's stream)."""

    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset:offset + size]

    def __len__(self) -> int:
        return len(self.data)


@dataclasses.dataclass
class SavedStream:
    """A stream saved to disk: `path`, `length`, `digest` (device/digest.py), read boundaries."""

    path: str | None
    length: int
    digest: str
    read_ends: tuple[int, ...] = ()
    file: object = None          # the open file (unbuffered), owned here when `path` is set

    @classmethod
    def over(cls, f, length: int) -> "SavedStream":
        """The first `length` bytes of an open file someone else owns (close() leaves it alone)."""
        f.flush()
        return cls(None, length, "", (), f)

    @property
    def fd(self) -> int:
        if self.file is None:
            raise ValueError(f"saved stream {self.path or '(borrowed file)'} is closed")
        return self.file.fileno()

    def read(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.length - offset))
        if size > MAX_SLICE:
            raise ValueError(f"a {size}-byte slice of a saved stream (at most {MAX_SLICE} at once)")
        return os.pread(self.fd, size, offset) if size else b""

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> bytes:
        """stream[a:b] as bytes (a bounded slice: the random walks write a valid stream piecewise)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a saved stream is sliced with [start:stop]")
        start, stop, _ = key.indices(self.length)
        return self.read(start, stop - start)

    def same_content(self, other: "SavedStream") -> bool:
        return (self.length, self.digest) == (other.length, other.digest)

    def close(self) -> None:
        if self.path is None:
            self.file = None
        if self.file is not None:
            self.file.close()
            self.file = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "SavedStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class Mutated:
    """`base` with edits: bytes XORed at `flips` (offset, mask), then cut to `cut` bytes, then
    `append` added. Nothing is copied: `read()` builds only the slice asked for."""

    base: Stream
    flips: tuple[tuple[int, int], ...] = ()
    cut: int | None = None
    append: bytes = b""

    @property
    def kept(self) -> int:
        return self.base.length if self.cut is None else min(self.cut, self.base.length)

    @property
    def length(self) -> int:
        return self.kept + len(self.append)

    def __len__(self) -> int:
        return self.length

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self.length)
        if end <= offset:
            return b""
        kept = self.kept
        if end <= kept and not any(offset <= at < end for at, _ in self.flips):
            return self.base.read(offset, end - offset)          # no edit in this slice: no copy
        out = bytearray(self.base.read(offset, min(end, kept) - offset) if offset < kept else b"")
        for at, mask in self.flips:
            if offset <= at < min(end, kept):
                out[at - offset] ^= mask
        if end > kept:
            lo = max(offset, kept) - kept
            out += self.append[lo:end - kept]
        return bytes(out)

    def describe(self) -> str:
        parts = [f"byte {at} ^= {mask:#x}" for at, mask in self.flips]
        if self.cut is not None:
            parts.append(f"cut to {self.cut} of {self.base.length} bytes")
        if self.append:
            parts.append(f"+{len(self.append)} bytes")
        return ", ".join(parts) or "unchanged"


def flipped(base: Stream, offset: int, mask: int = 0xFF) -> Mutated:
    return Mutated(base, flips=((offset, mask),))


def cut(base: Stream, length: int) -> Mutated:
    return Mutated(base, cut=length)


def extended(base: Stream, extra: bytes) -> Mutated:
    return Mutated(base, append=extra)
