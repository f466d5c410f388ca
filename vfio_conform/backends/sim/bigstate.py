"""A sim device state of any size generated on the fly, and its stream (format version 3).

The internal block is never held in memory: block i (BLOCK bytes) at generation g is the 16-byte
word (tag, i, g) repeated, so a block can be produced, and a received block checked byte for byte,
from three integers. The device keeps one generation counter per block; a pre-copy round dirties
some blocks (their generation goes up) and the saving session re-sends them.

Stream v3: the common header (payload length, layout fingerprint; digest field unused), then
records (payload offset u64, length u32, data) - one per internal block, re-sent blocks again,
one record with the migrated regions' contents - and the end record (END_OFFSET, 32 bytes: the
sha256 of the final state: tag, size, every block's generation and the region bytes).
"""
from __future__ import annotations

import array
import collections
import errno
import hashlib
import struct

from . import stream
from .faults import ActiveFaults
from .regions import oserror
from .sessions import ResumingSession, SavingSession

VERSION_GENERATED = 3
BLOCK = 1 << 20
_WORD = struct.Struct("<QII")       # tag, block index, generation: 16 bytes
_RECORD = struct.Struct("<QI")


class GeneratedState:
    """`size` bytes of internal state as one generation counter per BLOCK-byte block."""

    def __init__(self, size: int, tag: int):
        self.size, self.tag = size, tag & (2 ** 64 - 1)
        self.nblocks = -(-size // BLOCK)
        self.gen = array.array("I", bytes(4 * self.nblocks))
        self.rounds = 0

    def block_len(self, index: int) -> int:
        return min(BLOCK, self.size - index * BLOCK)

    def block(self, index: int, gen: int | None = None) -> bytes:
        """Block `index` as of generation `gen` (default: now)."""
        n = self.block_len(index)
        word = _WORD.pack(self.tag, index, self.gen[index] if gen is None else gen)
        return (word * (-(-n // 16)))[:n]

    def run_round(self, count: int) -> list[int]:
        """The device runs a little: `count` blocks (spread over the state) get new contents."""
        self.rounds += 1
        if not self.nblocks or not count:
            return []
        step = max(1, self.nblocks // max(1, count))
        start = (self.rounds * 7919) % self.nblocks
        dirtied = sorted({(start + k * step) % self.nblocks for k in range(min(count, self.nblocks))})
        for i in dirtied:
            self.gen[i] += 1
        return dirtied

    def digest(self, regions: bytes) -> bytes:
        return hashlib.sha256(_WORD.pack(self.tag, self.nblocks, 0) + self.size.to_bytes(8, "little")
                              + self.gen.tobytes() + regions).digest()


def header(layout: stream.StreamLayout) -> bytes:
    return stream._HEADER.pack(stream.MAGIC, VERSION_GENERATED, stream.HEADER_LEN, layout.fingerprint,
                               layout.payload_len, bytes(32))


def stop_copy_len(state: GeneratedState, regions_len: int) -> int:
    """Exact length of a STOP_COPY stream (no pre-copy): MIG_DATA_SIZE."""
    return (stream.HEADER_LEN + state.nblocks * _RECORD.size + state.size
            + (_RECORD.size + regions_len if regions_len else 0) + _RECORD.size + 32)


class GeneratedSavingSession(SavingSession):
    """Saving side of a generated state: records are produced as the reader gets to them.

    In pre-copy the initial data is the header and every block; reaching the end of what is queued
    ends a round (ENOMSG, or 0 under precopy_end 'zero'), after which the device has dirtied
    `dirty_blocks` more blocks. STOP_COPY appends every still-queued block, the regions and the end record.
    """

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout, state: GeneratedState,
                 regions, precopy: bool, dirty_blocks: int, precopy_end: str = "enomsg"):
        super().__init__(faults, b"", 0 if precopy else None, precopy_end)
        self.layout, self.state, self.regions, self.dirty_blocks = layout, state, regions, dirty_blocks
        self.queue: collections.deque = collections.deque([("header",)])
        self.queued: set[int] = set()
        self._enqueue(range(state.nblocks))
        self.cur, self.cur_pos = b"", 0
        self.initial_left = stream.HEADER_LEN + state.nblocks * _RECORD.size + state.size
        self.sent = 0
        self.round_ended = False
        if not precopy:
            self._finish()

    def _enqueue(self, blocks) -> None:
        for i in blocks:
            if i not in self.queued:
                self.queued.add(i)
                self.queue.append(("block", i))

    def _finish(self) -> None:
        self.queue.append(("regions",))
        self.queue.append(("end",))

    def _render(self, item) -> bytes:
        kind = item[0]
        if kind == "header":
            return header(self.layout)
        if kind == "block":
            i = item[1]
            self.queued.discard(i)
            return _RECORD.pack(i * BLOCK, self.state.block_len(i)) + self.state.block(i)
        if kind == "regions":
            data = self.regions()
            return _RECORD.pack(self.layout.state_size, len(data)) + data if data else b""
        return _RECORD.pack(stream.END_OFFSET, 32) + self.state.digest(self.regions())

    def _pending(self) -> bool:
        return self.cur_pos < len(self.cur) or bool(self.queue)

    def enter_stop_copy(self) -> None:
        super().enter_stop_copy()
        self._finish()

    def initial_bytes(self) -> int:
        return max(0, self.initial_left)

    def dirty_bytes(self) -> int:
        if not self.in_precopy:
            return 0
        queued = sum(_RECORD.size + self.state.block_len(i) for i in self.queued)
        left = len(self.cur) - self.cur_pos
        return max(0, queued + left - max(0, self.initial_left))

    def _next_round(self) -> None:
        if self.round_ended:
            self.round_ended = False
            self._enqueue(self.state.run_round(self.dirty_blocks))

    def read(self, size: int) -> bytes:
        self._live("read()")
        if size <= 0:
            return b""
        if self.in_precopy:
            self._next_round()
        if not self._pending():
            if self.in_precopy:
                self.round_ended = True
                if self.precopy_end == "zero":
                    return b""
                raise oserror(errno.ENOMSG, "no more pre-copy data for now")
            return b""
        out = []
        while size > 0 and self._pending():
            if self.cur_pos >= len(self.cur):
                self.cur, self.cur_pos = self._render(self.queue.popleft()), 0
                continue
            piece = self.cur[self.cur_pos:self.cur_pos + size] if self.cur_pos or size < len(self.cur) \
                else self.cur
            self.cur_pos += len(piece)
            size -= len(piece)
            out.append(piece)
        data = out[0] if len(out) == 1 else b"".join(out)
        self.sent += len(data)
        self.initial_left -= len(data)
        return data

    def poll(self, events: int) -> int:
        import select
        if not self.active:
            return super().poll(events)
        if self.in_precopy and not self._pending() and not self.round_ended:
            return 0
        return events & select.POLLIN

    def pread(self, size: int, offset: int) -> bytes:
        return super(SavingSession, self).pread(size, offset)


class GeneratedResumingSession(ResumingSession):
    """Resuming side: parses records as they are written, checks every block against its pattern
    and keeps only the generations and the region bytes (memory does not grow with the state)."""

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout, regions_len: int):
        super().__init__(faults, layout)
        self.state = GeneratedState(layout.state_size, 0)
        self.tag_known = False
        self.regions = bytearray(regions_len)
        self.regions_seen = False
        self.seen = bytearray(self.state.nblocks)
        self.pending = bytearray()        # a record header or body not complete yet (<= one block)
        self.need: tuple[int, int] | None = None
        self.header_ok = False
        self.written = 0
        self.error: str | None = None
        self.done: bytes | None = None

    def write(self, data: bytes) -> int:
        self._live("write()")
        self.written += len(data)
        if self.error or self.done is not None:
            if self.done is not None and not self.error:
                self.error = f"{len(data)} bytes after the end record"
            return len(data)
        self.pending += data
        if not self.header_ok:
            if len(self.pending) < stream.HEADER_LEN:
                return len(data)
            problem = self._header_problem(bytes(self.pending[:stream.HEADER_LEN]))
            if problem:
                self.error = problem
                raise oserror(errno.EFAULT, f"stream header rejected: {problem}")
            self.header_ok = True
            del self.pending[:stream.HEADER_LEN]
        self._parse()
        return len(data)

    def _header_problem(self, head: bytes) -> str | None:
        hdr = stream.parse_header(head)
        if hdr.magic != stream.MAGIC:
            return f"bad magic {hdr.magic:#x}"
        if hdr.version != VERSION_GENERATED or hdr.header_len != stream.HEADER_LEN:
            return f"unsupported version {hdr.version} / header length {hdr.header_len}"
        if hdr.fingerprint != self.layout.fingerprint:
            return "layout fingerprint is not this device's"
        if hdr.payload_len != self.layout.payload_len:
            return f"payload length {hdr.payload_len}, this device needs {self.layout.payload_len}"
        return None

    def _parse(self) -> None:
        pos, buf = 0, self.pending
        while not self.error and self.done is None:
            if self.need is None:
                if len(buf) - pos < _RECORD.size:
                    break
                self.need = _RECORD.unpack_from(buf, pos)
                pos += _RECORD.size
                if self.need[1] > max(BLOCK, len(self.regions), 32):
                    self.error = f"record of {self.need[1]} bytes is longer than any part of the state"
                    break
            offset, length = self.need
            if len(buf) - pos < length:
                break
            body = bytes(buf[pos:pos + length])
            pos += length
            self.need = None
            self._record(offset, body)
        del buf[:pos]

    def _record(self, offset: int, body: bytes) -> None:
        state = self.state
        if offset == stream.END_OFFSET:
            self.done = body
            return
        if offset == self.layout.state_size and len(body) == len(self.regions):
            self.regions[:] = body
            self.regions_seen = True
            return
        index, rem = divmod(offset, BLOCK)
        if rem or index >= state.nblocks or len(body) != state.block_len(index) or len(body) < 16:
            self.error = f"record [{offset}, +{len(body)}) is not a block of this state"
            return
        tag, idx, gen = _WORD.unpack_from(body)
        if not self.tag_known:          # the source's content tag (its seed): every block must carry it
            state.tag, self.tag_known = tag, True
        if tag != state.tag or idx != index or body != state.block(index, gen):
            self.error = f"block {index} does not hold the device's data"
            return
        state.gen[index] = gen
        self.seen[index] = 1

    def result(self) -> tuple[GeneratedState, bytes]:
        """The complete, verified state (StreamError otherwise)."""
        if self.error:
            raise stream.StreamError(self.error)
        if not self.header_ok:
            raise stream.StreamError(f"stream is {self.written} bytes, shorter than its header")
        if self.done is None:
            raise stream.StreamError("the stream has no end record")
        if self.seen.count(0) or (self.regions and not self.regions_seen):
            raise stream.StreamError(f"{self.seen.count(0)} blocks were never sent")
        if self.state.digest(bytes(self.regions)) != self.done:
            raise stream.StreamError("state checksum mismatch")
        return self.state, bytes(self.regions)
