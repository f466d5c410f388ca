"""Migration sessions behind the data fds: a saving stream reader and a resuming stream writer."""
from __future__ import annotations

import errno
import select
from typing import Callable

from . import stream
from .faults import ActiveFaults
from .regions import oserror

#: Reads shorter than this are shifted by one byte under the corrupt_stream knob.
_SMALL_READ = 4096
#: Dirty tracking granule of a pre-copy session (bytes of payload per record).
DIRTY_BLOCK = 256


class Session:
    """Base: one data fd's session; `active` goes False when the session ends (then ENODEV)."""

    kind = "session"

    def __init__(self, faults: ActiveFaults):
        self.faults = faults
        self.active = True
        self.fd = -1

    def end(self) -> None:
        self.active = False

    def _live(self, what: str) -> None:
        """ENODEV on an ended session (unless the stale_fd_readable knob keeps it alive)."""
        if not self.active and not self.faults.fire("stale_fd_readable"):
            raise oserror(errno.ENODEV, f"{what} on the data fd of an ended {self.kind} session")

    def read(self, size: int) -> bytes:
        if self.faults.fire("resuming_fd_readable"):
            return b""
        raise oserror(errno.EBADF, f"read() on the write-only {self.kind} data fd")

    def write(self, data: bytes) -> int:
        if self.faults.fire("saving_fd_writable"):
            return len(data)
        raise oserror(errno.EBADF, f"write() on the read-only {self.kind} data fd")

    def pread(self, size: int, offset: int) -> bytes:
        if self.faults.fire("seekable_fd"):
            return b""
        raise oserror(errno.ESPIPE, "pread() on a data fd (a stream)")

    def poll(self, events: int) -> int:
        """poll() revents: a write-only session is always writable, an ended one always ready."""
        if not self.active:
            return events & (select.POLLIN | select.POLLOUT) | select.POLLERR
        return events & select.POLLOUT

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fd={self.fd}, {'active' if self.active else 'ended'})"


class SavingSession(Session):
    """Read side of a snapshot stream; in pre-copy only header + initial bytes are visible."""

    kind = "saving"

    def __init__(self, faults: ActiveFaults, data: bytes, precopy_len: int | None,
                 precopy_end: str = "enomsg"):
        super().__init__(faults)
        self.data = data
        self.pos = 0
        self.precopy_len = min(precopy_len, len(data)) if precopy_len is not None else 0
        self.in_precopy = precopy_len is not None
        self.precopy_end = precopy_end
        self.end_of_stream = len(data)
        if faults.fire("truncated_stream"):
            self.end_of_stream = max(0, len(data) - int(faults.param("truncated_stream", "bytes")))

    @property
    def limit(self) -> int:
        return self.precopy_len if self.in_precopy else self.end_of_stream

    def enter_stop_copy(self) -> None:
        """PRE_COPY(_P2P) -> STOP_COPY: the rest of the stream becomes readable on the same fd."""
        self.in_precopy = False

    def dirty_bytes(self) -> int:
        """Pre-copy dirty data pending (a snapshot session never has any)."""
        return 0

    def initial_bytes(self) -> int:
        """Pre-copy initial data not read yet (grows under the precopy_initial_grows knob)."""
        left = max(0, self.precopy_len - self.pos)
        if self.faults.fire("precopy_initial_grows"):
            return left + 2 * self.pos
        return left

    def read(self, size: int) -> bytes:
        self._live("read()")
        if size % 2 and self.faults.fire("live_read_eio"):
            raise oserror(errno.EIO, f"read({size}) of an odd size")
        if size <= 0:
            return b""
        self._refill()
        if self.pos >= self.limit:
            if self.in_precopy:
                if self.precopy_end == "zero" or self.faults.fire("precopy_end_eof"):
                    return b""
                raise oserror(errno.ENOMSG, "no more pre-copy data for now")
            if self.faults.fire("enomsg_in_stop_copy"):
                raise oserror(errno.ENOMSG, "end of the STOP_COPY stream")
            return b""
        start = self.pos
        if size < _SMALL_READ and self.faults.fire("corrupt_stream"):
            start = min(start + 1, self.limit)
        chunk = bytes(self.data[start:min(start + size, self.limit)])
        self.pos = start + len(chunk)
        return chunk

    def _refill(self) -> None:
        """Hook for sessions that generate stream bytes on demand."""

    def poll(self, events: int) -> int:
        """Readable while data is pending, and for good at the end of the STOP_COPY data."""
        if not self.active:
            return super().poll(events)
        self._refill()
        if self.pos < self.limit:
            return events & select.POLLIN
        if self.in_precopy:
            return 0                      # temporary end: read() gives ENOMSG, poll waits for more
        if self.faults.fire("stop_copy_eof_not_readable"):
            return 0
        return events & select.POLLIN

    def pread(self, size: int, offset: int) -> bytes:
        if self.faults.fire("seekable_fd"):
            return self.data[offset:offset + size]
        return super().pread(size, offset)


class PrecopySession(SavingSession):
    """A v2 pre-copy stream: header + payload[:split] as initial data, then dirty records on demand.

    `source()` returns the device's payload now. Bytes changed since they were captured (at open, or
    when last sent in a record) are dirty; PRE_COPY reads send them as records, and STOP_COPY appends
    the remainder from the current contents, any still-dirty prefix bytes and the end record.
    """

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout, source: Callable[[], bytes],
                 split: int, precopy_end: str = "enomsg"):
        self.layout, self.source, self.split = layout, source, min(split, layout.payload_len)
        self.base = bytearray(source())
        initial = stream.precopy_header(layout, self.split) + bytes(self.base[:self.split])
        super().__init__(faults, initial, len(initial), precopy_end)
        self.data = bytearray(initial)
        self.stale = faults.fire("precopy_stale_snapshot")
        self.reinit_pending = False

    def reinit(self) -> None:
        """New initial data (e.g. a reconfiguration): the whole current payload is re-sent as one
        record, counted as initial bytes; dirty tracking restarts from it (dirty_bytes resets)."""
        if not self.in_precopy or not self.active:
            return
        current = self.source()
        self.data += stream.record(0, current)
        self.base[:] = current
        self.precopy_len = len(self.data)
        self.reinit_pending = True

    @property
    def limit(self) -> int:
        return len(self.data)

    def _dirty_blocks(self, current: bytes) -> list[int]:
        if self.stale:
            return []
        base = self.base
        return [i for i in range(0, len(current), DIRTY_BLOCK)
                if current[i:i + DIRTY_BLOCK] != base[i:i + DIRTY_BLOCK]]

    def _records(self, current: bytes, blocks: list[int]) -> bytes:
        out = bytearray()
        for i in blocks:
            chunk = current[i:i + DIRTY_BLOCK]
            self.base[i:i + len(chunk)] = chunk
            out += stream.record(i, chunk)
        return bytes(out)

    def dirty_bytes(self) -> int:
        """Unread records plus records still to be generated for dirtied blocks."""
        if not self.in_precopy:
            return 0
        pending = max(0, len(self.data) - max(self.pos, self.precopy_len))
        blocks = self._dirty_blocks(self.source())
        dirty = pending + sum(stream.RECORD_LEN + min(DIRTY_BLOCK, len(self.base) - i) for i in blocks)
        if self.faults.fire("precopy_dirty_stuck"):
            dirty += 4096
        return dirty

    def _refill(self) -> None:
        """PRE_COPY: at the end of what was generated, turn dirtied blocks into records."""
        if self.in_precopy and self.pos >= len(self.data) and self.active:
            current = self.source()
            self.data += self._records(current, self._dirty_blocks(current))

    def enter_stop_copy(self) -> None:
        """STOP_COPY: remainder from the current contents (stale knob: the open-time snapshot)."""
        super().enter_stop_copy()
        final = bytes(self.base) if self.stale else self.source()
        blocks = [i for i in self._dirty_blocks(final) if i < self.split]
        self.data += self._records(final, blocks)
        if self.split < len(final):
            self.data += stream.record(self.split, final[self.split:])
        self.base[self.split:] = final[self.split:]
        self.data += stream.end_record(self.base)


class ResumingSession(Session):
    """Write side: appends up to the expected length; the header is checked when it completes."""

    kind = "resuming"

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout):
        super().__init__(faults)
        self.layout = layout
        self.buf = bytearray()
        self._cap: int | None = None      # longest stream accepted, once the header is complete

    def write(self, data: bytes) -> int:
        self._live("write()")
        if len(data) < 8 and self.faults.fire("resume_small_writes_lost"):
            return len(data)
        cap = self._cap
        if cap is None or len(self.buf) < stream.HEADER_LEN:   # judged from the header, once complete
            head = bytes(self.buf[:stream.HEADER_LEN])
            if len(head) < stream.HEADER_LEN:
                head += bytes(data[:stream.HEADER_LEN - len(head)])
            cap = stream.max_len(self.layout, head) if not stream.header_problem(self.layout, head) \
                else self.layout.stream_len
            if len(head) >= stream.HEADER_LEN:
                self._cap = cap
        if len(self.buf) + len(data) > cap:
            if self.faults.fire("accept_extra_bytes"):
                self.buf += data[:max(0, cap - len(self.buf))]
                return len(data)
            raise oserror(errno.ENOMEM, f"{len(self.buf)} + {len(data)} bytes exceed the "
                                        f"{cap}-byte limit")
        before = len(self.buf)
        self.buf += data
        if before < stream.HEADER_LEN <= len(self.buf):
            problem = stream.header_problem(self.layout, self.buf)
            if problem:          # like mtty/hisi: EFAULT, but the bytes stay counted
                raise oserror(errno.EFAULT, f"stream header rejected: {problem}")
        return len(data)

    def payload(self) -> bytes:
        """The complete, valid payload written so far (StreamError otherwise)."""
        if len(self.buf) == self.layout.stream_len and self.faults.fire("header_checked_only_on_write"):
            return bytes(self.buf[stream.HEADER_LEN:])          # like mtty: no check at RESUMING->STOP
        return stream.decode(self.layout, self.buf)


class StraySession(Session):
    """A disabled session behind an fd handed out where none should be (fd_on_non_opening_arc)."""

    kind = "stray"

    def __init__(self, faults: ActiveFaults):
        super().__init__(faults)
        self.active = False
