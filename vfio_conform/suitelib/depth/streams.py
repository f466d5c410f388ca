"""Save streams to the spill directory, write (possibly hostile, possibly edited) streams into a
resuming device and report where it refused them: no stream is ever held whole in memory."""
from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import select
import time

from ...device.streamstats import STATS
from ...base.errors import errno_name
from ...uapi.enums import MigState
from ..spill import InMemory, Mutated, SavedStream
from ..writeplan import BULK, WritePlan, whole


#: After the first refused write, a hostile writer goes on for this many bytes, then stops writing.
AFTER_ERROR = 1 << 20
#: sendfile(2) into a data fd whose driver has no splice_write fails with these: write() instead.
NO_SPLICE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
#: At most this many read ends of a save are kept (record boundaries for a bounded write plan).
MAX_READ_ENDS = 1 << 16
#: An in-process device is written from a read-only mapping of the spill file this many bytes at a
#: time (no copy into a buffer of ours; the mapped window is all the resident memory it adds).
MAP_WINDOW = 4 << 20


@dataclasses.dataclass
class ResumeOutcome:
    """write_errors: (stream offset, errno) of each failed write; stop_errno: RESUMING -> STOP's errno;
    written: bytes offered to write(); abandoned_at: where writing stopped after an error (or None)."""

    length: int
    write_errors: list[tuple[int, int]]
    stop_errno: int
    state_after: int
    written: int = 0
    abandoned_at: int | None = None
    coverage: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.write_errors) or self.stop_errno != 0

    def describe(self) -> str:
        writes = ", ".join(f"{errno_name(c)} at {o}" for o, c in self.write_errors[:3]) or "none"
        rest = f" (writing stopped at {self.abandoned_at})" if self.abandoned_at is not None else ""
        return (f"{self.length}-byte stream: write errors {writes}{rest}; RESUMING->STOP "
                f"{errno_name(self.stop_errno)}; state {MigState.label(self.state_after)}")


def resume(device, sessions, data, chunk: int = 1 << 20, plan: WritePlan | None = None) -> ResumeOutcome:
    """STOP -> RESUMING, write `data` (bytes, a SavedStream or a Mutated one) in `chunk`s or along
    `plan`; past a refused write a hostile user goes on for AFTER_ERROR bytes; then SET STOP.
    Unedited bulk of a spill file goes by sendfile(2) into a kernel data fd, else as views of a
    mapping of the file (the device reads the page cache; the harness copies nothing)."""
    stream = InMemory(data) if isinstance(data, (bytes, bytearray)) else data
    plan = plan or whole(stream.length, chunk)
    fd = sessions.enter(device, MigState.RESUMING, prime=False)
    started = time.perf_counter()
    errors: list[tuple[int, int]] = []
    raw = getattr(device.transport, "raw_data_fds", False)
    window = _Window()
    try:
        abandoned = _write_plan(fd, stream, plan, raw, window, errors)
    finally:
        window.close()
    written = abandoned if abandoned is not None else stream.length
    STATS.add(written, time.perf_counter() - started)
    result = device.try_set_state(MigState.STOP)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    _, state, _ = device.get_state_raw()
    return ResumeOutcome(stream.length, errors, result.errno, state, written, abandoned,
                         plan.coverage.describe())


def _write_plan(fd, stream, plan: WritePlan, raw: bool, window: "_Window", errors) -> int | None:
    """Write `stream` along `plan` (see resume); where writing stopped after an error, or None."""
    abandoned = None
    for start, end, piece in plan.segments:
        if errors and start - errors[0][0] > AFTER_ERROR:
            abandoned = start
            break
        pos = start
        while pos < end and not (errors and pos - errors[0][0] > AFTER_ERROR):
            run = _clean_run(stream, pos, end) if piece >= BULK and not errors else None
            if run is None:                 # small writes, an edited byte, appended bytes, no file
                pos = _write_pieces(fd, stream, pos, min(end, pos + BULK) if piece >= BULK else end,
                                    piece, errors)
                continue
            src, offset, stop = run
            new = _send(fd, (src, offset), pos, stop, errors) if raw else \
                _write_mapped(fd, window, (src, offset), pos, stop, errors)
            pos = new if new > pos else _write_pieces(fd, stream, pos, stop, piece, errors)
        if pos < end:
            abandoned = pos
            break
    return abandoned


def _write_pieces(fd, stream, start: int, end: int, piece: int, errors) -> int:
    """Write [start, end) of `stream` in `piece`-byte writes (read BULK bytes at a time)."""
    pos = start
    while pos < end:
        if errors and pos - errors[0][0] > AFTER_ERROR:
            return pos
        base = pos
        block = stream.read(base, min(end - base, max(piece, BULK)))
        stop = base + len(block)
        if not block:
            return end
        write, at, size = fd.try_write, 0, stop - base     # at: offset in `block`
        while at < size:
            data = block[at:at + piece]
            code, n = write(data)
            if code or n == 0:
                errors.append((base + at, code or errno.EIO))
                at += len(data)
                if base + at - errors[0][0] > AFTER_ERROR:
                    return base + at
                continue
            at += n
        pos = base + at
    return pos


def _clean_run(stream, start: int, end: int) -> tuple[int, int, int] | None:
    """(fd, file offset of `start`, stop): [start, stop) of `stream` (stop <= end) is plain bytes of its
    spill file, up to the next edit; None when `start` is an edited or appended byte or not in a file."""
    if isinstance(stream, SavedStream):
        return stream.fd, start, end
    if isinstance(stream, Mutated):
        stop = min(end, stream.kept)
        for at, _ in stream.flips:
            if start <= at < stop:
                stop = at
        return _clean_run(stream.base, start, stop) if stop > start else None
    return None


class _Window:
    """The read-only mapping of a spill file that the writes of one resume are views of: MAP_WINDOW
    bytes at a multiple of MAP_WINDOW, kept while the writes stay in it (a bounded plan's bulk spans
    between its small writes share one mapping rather than each mapping its own)."""

    def __init__(self) -> None:
        self.src, self.base, self.size = -1, 0, 0
        self.map: mmap.mmap | None = None
        self.view: memoryview | None = None

    def at(self, src: int, offset: int) -> tuple[memoryview, int, int]:
        """(view of the window, index of file offset `offset` in it, bytes from there to its end)."""
        if self.view is None or src != self.src or not self.base <= offset < self.base + self.size:
            self.close()
            base = offset - offset % MAP_WINDOW
            size = min(MAP_WINDOW, os.fstat(src).st_size - base)
            self.map = mmap.mmap(src, size, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)
            self.src, self.base, self.size, self.view = src, base, size, memoryview(self.map)
        return self.view, offset - self.base, self.base + self.size - offset

    def close(self) -> None:
        if self.view is not None:
            self.view.release()
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:        # a view still held somewhere: unmapped when it is dropped
                pass
        self.map = self.view = None


def _write_mapped(fd, window: _Window, span, start: int, end: int, errors) -> int:
    """Write [start, end) of the spill file in writes of views of `window` (BULK bytes at most, none
    across the window's end)."""
    src, offset = span
    pos = start
    while pos < end:
        view, lo, left = window.at(src, offset + pos - start)
        n = min(BULK, left, end - pos)
        code, done = fd.try_write(view[lo:lo + n])
        if code or done == 0:
            errors.append((pos, code or errno.EIO))
            return pos + n                   # the rest as refused writes (AFTER_ERROR)
        pos += done
    return pos


def _send(fd, span, start: int, end: int, errors) -> int:
    """sendfile(2) [start, end) from the spill file into a kernel data fd: no byte passes user space."""
    src, offset = span
    pos = start
    while pos < end:
        try:
            n = os.sendfile(fd.fd, src, offset + pos - start, min(BULK, end - pos))
        except (BlockingIOError, InterruptedError):
            fd.poll(select.POLLOUT, timeout=fd.device.io_timeout)
            continue
        except OSError as exc:
            if exc.errno in NO_SPLICE and pos == start:  # the driver's fd has no splice_write
                return pos
            errors.append((pos, exc.errno or errno.EIO))
            return pos + min(BULK, end - pos)          # skipped, as a refused write() of that size
        if n == 0:
            errors.append((pos, errno.EIO))
            return pos + min(BULK, end - pos)
        pos += n
    return pos


def save_stream(device, sessions, chunk: int = 1 << 20, keep: bool = True) -> SavedStream:
    """A full STOP_COPY save of `device` spilled to the run's spill directory (closed with
    `sessions` if `keep`, else by the caller)."""
    path, f = sessions.spill.new_file("saved-")
    ends: list[int] = []
    total = [0]

    def note(piece) -> None:
        total[0] += len(piece)
        if len(ends) < MAX_READ_ENDS:
            ends.append(total[0])
    try:
        digest = sessions.save(device, f, chunk, on_chunk=note)
    except BaseException:
        f.close()
        os.unlink(path)
        raise
    saved = SavedStream(path, digest.length, digest.digest, tuple(ends), f)
    if keep:
        sessions.keep(saved)
    return saved


def flip(data: bytes, offset: int, mask: int = 0xFF) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def stop_copy_bytes(dev) -> bytes:
    """STOP -> STOP_COPY, the whole stream read as bytes, back to STOP (small device states only)."""
    dev.set_state(MigState.STOP)
    fd = dev.set_state(MigState.STOP_COPY)
    data = b"".join(fd.chunks())
    fd.close()
    dev.set_state(MigState.STOP)
    return data


def foreign_stream() -> bytes:
    """A stream of another device type: an in-process reference device with a different layout."""
    from ...backends.sim.backend import open_sim
    from ...device import Device
    with Device(open_sim({"flags": 1, "state_size": 1000}, "foreign0"), io_timeout=5.0) as dev:
        return stop_copy_bytes(dev)
