"""A sim device state of any size generated on the fly, and its stream (format version 3).

The internal block is never held in memory: block i (BLOCK bytes) at generation g is the 16-byte
word (tag, i, g) followed by a slice of the device's pattern (BLOCK pseudo-random bytes made once
from the tag), starting at one of ROTATIONS offsets chosen by (i, g). A block is produced with one
copy of that slice, and a received block is checked by its word and by the xxh3_128 digest of the
rest (device/digest.py) against the digest of the pattern slice (one per offset and length, kept):
no Python work per byte, so the sim produces and checks a state faster than the harness copies it.
The device keeps one generation counter per block; a pre-copy round dirties some blocks (their
generation goes up) and the saving session re-sends them.

Stream v3: the common header (payload length, layout fingerprint; digest field unused), then
records (payload offset u64, length u32, data) - one per internal block, re-sent blocks again,
one record with the migrated regions' contents - and the end record (END_OFFSET, 32 bytes: the
sha256 of the final state: tag, size, every block's generation and the region bytes).
"""
from __future__ import annotations

import array
import collections
import functools
import select
import errno
import hashlib
import struct
from typing import Any

from ...device.digest import new_digest
from . import stream
from .faults import ActiveFaults
from .regions import oserror
from .sessions import _SMALL_READ as SMALL_READ, ResumingSession, SavingSession

VERSION_GENERATED = 3
BLOCK = 1 << 20
_WORD = struct.Struct("<QII")       # tag, block index, generation: 16 bytes
_RECORD = struct.Struct("<QI")
#: A read that has this many bytes ends at the next record end (a short read, as drivers do).
FILL = 64 << 10
#: A block's body starts at one of this many offsets of the pattern (a prime; 4111-byte steps).
ROTATIONS = 61
_STEP = 4111


class Pattern:
    """The BLOCK pseudo-random bytes of a content tag (twice over, so every rotation is one slice),
    and the digest of each (rotation, length) slice a checker has needed."""

    def __init__(self, tag: int):
        once = hashlib.shake_128(b"vfio-conform generated state" + tag.to_bytes(8, "little")).digest(BLOCK)
        self.view = memoryview(once + once)
        self._sums: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def offset(index: int, gen: int) -> int:
        return ((index + 7 * gen) % ROTATIONS) * _STEP

    def body(self, index: int, gen: int, length: int) -> memoryview:
        """The `length` bytes after the word of block `index` at generation `gen`."""
        start = self.offset(index, gen)
        return self.view[start:start + length]

    def body_sum(self, index: int, gen: int, length: int) -> bytes:
        key = (self.offset(index, gen), length)
        got = self._sums.get(key)
        if got is None:
            d = new_digest()
            d.update(self.body(index, gen, length))
            got = self._sums[key] = d.digest()
        return got


@functools.lru_cache(maxsize=8)
def pattern(tag: int) -> Pattern:
    return Pattern(tag)


class GeneratedState:
    """`size` bytes of internal state as one generation counter per BLOCK-byte block."""

    def __init__(self, size: int, tag: int):
        self.size, self.tag = size, tag & (2 ** 64 - 1)
        self.nblocks = -(-size // BLOCK)
        self.gen = array.array("I", bytes(4 * self.nblocks))
        self.rounds = 0

    def block_len(self, index: int) -> int:
        return min(BLOCK, self.size - index * BLOCK)

    def block(self, index: int, gen: int | None = None, prefix: bytes = b"") -> bytes:
        """`prefix` and block `index` as of generation `gen` (default: now), made with one copy."""
        n = self.block_len(index)
        gen = self.gen[index] if gen is None else gen
        word = _WORD.pack(self.tag, index, gen)
        if n <= _WORD.size:
            return prefix + word[:n]
        return b"".join((prefix, word, pattern(self.tag).body(index, gen, n - _WORD.size)))

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
    ends a round (ENOMSG, or 0 under precopy_end 'zero'; PRECOPY_INFO then reports 0 and 0); the
    next read finds `dirty_blocks` more blocks the device has dirtied since. STOP_COPY appends every still-queued block, the regions and the end record.
    """

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout, state: GeneratedState,
                 regions, precopy: bool, dirty_blocks: int, precopy_end: str = "enomsg"):
        super().__init__(faults, b"", 0 if precopy else None, precopy_end)
        self.layout, self.state, self.regions, self.dirty_blocks = layout, state, regions, dirty_blocks
        self.queue: collections.deque = collections.deque([("header",)])
        self.queued: set[int] = set()
        self.queued_bytes = 0             # records of the queued blocks (dirty_bytes in O(1))
        self._enqueue(range(state.nblocks))
        self.cur, self.cur_pos = b"", 0
        self.initial_left = stream.HEADER_LEN + state.nblocks * _RECORD.size + state.size
        self.sent = 0
        self.round_ended = False
        self.reinit_pending = False
        if not precopy:
            self._finish()

    def _enqueue(self, blocks) -> None:
        for i in blocks:
            if i not in self.queued:
                self.queued.add(i)
                self.queued_bytes += _RECORD.size + self.state.block_len(i)
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
            self.queued_bytes -= _RECORD.size + self.state.block_len(i)
            return self.state.block(i, prefix=_RECORD.pack(i * BLOCK, self.state.block_len(i)))
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
        queued = self.queued_bytes
        left = len(self.cur) - self.cur_pos
        return max(0, queued + left - max(0, self.initial_left))

    def reinit(self) -> None:
        """New initial data (a reconfiguration): every block is queued again and counted as initial
        bytes; dirty_bytes restarts from 0 (PRECOPY_INFO reports REINIT once)."""
        if not self.in_precopy or not self.active:
            return
        self._enqueue(range(self.state.nblocks))
        self.initial_left = self.queued_bytes + len(self.cur) - self.cur_pos
        self.round_ended = False
        self.reinit_pending = True

    def _next_round(self) -> None:
        """A read after the temporary end: the running device has dirtied more blocks since."""
        if self.round_ended:
            self.round_ended = False
            self._enqueue(self.state.run_round(self.dirty_blocks))

    def read(self, size: int) -> bytes:
        self._live("read()")
        if size <= 0:
            return b""
        if self.in_precopy:
            self._next_round()
        if size < SMALL_READ and self._pending() and self.faults.fire("corrupt_stream"):
            self._skip_one()
        if not self._pending():
            if self.in_precopy:
                self.round_ended = True
                if self.precopy_end == "zero":
                    return b""
                raise oserror(errno.ENOMSG, "no more pre-copy data for now")
            return b""
        out = []            # a read fills `size` across records, but stops at a record's end once it
        got = 0             # holds FILL bytes: a whole record is returned as is, never copied
        while size > 0 and self._pending():
            if self.cur_pos >= len(self.cur):
                if got >= FILL:
                    break
                self.cur, self.cur_pos = self._render(self.queue.popleft()), 0
                continue
            cur, pos = self.cur, self.cur_pos
            piece = cur if not pos and size >= len(cur) else cur[pos:pos + size]
            self.cur_pos = pos + len(piece)
            size -= len(piece)
            got += len(piece)
            out.append(piece)
        data = out[0] if len(out) == 1 else b"".join(out)
        self.sent += len(data)
        self.initial_left -= len(data)
        return data

    def _skip_one(self) -> None:
        """The corrupt_stream knob: a small read loses the byte it should start with."""
        if self.cur_pos >= len(self.cur) and self.queue:
            self.cur, self.cur_pos = self._render(self.queue.popleft()), 0
        if self.cur_pos < len(self.cur):
            self.cur_pos += 1

    def poll(self, events: int) -> int:
        if not self.active:
            return super().poll(events)
        if self.in_precopy and not self._pending():
            return 0                      # temporary end: the device's next round comes with a read
        return events & select.POLLIN

    def pread(self, size: int, offset: int) -> bytes:
        return super(SavingSession, self).pread(size, offset)


class GeneratedResumingSession(ResumingSession):
    """Resuming side: parses records as they are written and checks every block: its word (tag,
    index, generation) and the running digest of the rest against its pattern slice's; keeps only
    the generations and the region bytes (memory does not grow with the state)."""

    #: write() consumes its bytes before it returns (hashes them, copies the few it keeps): the
    #: transport hands it the caller's buffer (a view of a mapped spill file) without a copy.
    takes_views = True

    def __init__(self, faults: ActiveFaults, layout: stream.StreamLayout, regions_len: int):
        super().__init__(faults, layout)
        self.state = GeneratedState(layout.state_size, 0)
        self.tag_known = False
        self.regions = bytearray(regions_len)
        self.regions_seen = False
        self.seen = bytearray(self.state.nblocks)
        self.head = bytearray()           # stream header, then each record header, until complete
        self.need: tuple[int, int] | None = None
        self.got = 0
        self.small = bytearray()          # body of a region or end record, or a block's word
        self.expected: bytes | None = None    # digest the body of the block being written must have
        self.body_digest: Any = None
        self.header_ok = False
        self.written = 0
        self.error: str | None = None
        self.done: bytes | None = None

    def write(self, data: bytes) -> int:
        self._live("write()")
        n = len(data)
        if n < 8 and self.faults.fire("resume_small_writes_lost"):
            return n
        self.written += n
        need, body = self.need, self.body_digest
        if body is not None and need is not None and self.got + n < need[1] and not self.error:
            body.update(data)           # inside a block's body, short of its end: hashed, nothing more
            self.got += n
            return n
        if self.error or self.done is not None:
            if self.done is not None and not self.error and not self.faults.fire("accept_extra_bytes"):
                self.error = f"{n} bytes after the end record"
            return n
        mv = memoryview(data)
        if not self.header_ok:
            take = stream.HEADER_LEN - len(self.head)
            self.head += mv[:take]
            mv = mv[take:]
            if len(self.head) < stream.HEADER_LEN:
                return n
            problem = self._header_problem(bytes(self.head))
            self.head = bytearray()
            if problem:
                self.error = problem
                raise oserror(errno.EFAULT, f"stream header rejected: {problem}")
            self.header_ok = True
        while len(mv) and not self.error and self.done is None:
            if self.need is None:
                take = _RECORD.size - len(self.head)
                self.head += mv[:take]
                mv = mv[take:]
                if len(self.head) < _RECORD.size:
                    break
                self._start(*_RECORD.unpack(self.head))
                self.head = bytearray()
                continue
            take = min(self.need[1] - self.got, len(mv))
            self._body(mv[:take])
            mv = mv[take:]
            if self.need is not None and self.got == self.need[1]:
                self._finish_record()
        if len(mv) and self.done is not None and not self.error and not self.faults.fire("accept_extra_bytes"):
            self.error = f"{len(mv)} bytes after the end record"
        return n

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
        if hdr.sha256 != bytes(32):
            return "the digest field of a generated-state header is not zero"
        return None

    def _start(self, offset: int, length: int) -> None:
        self.need, self.got, self.expected, self.small = (offset, length), 0, None, bytearray()
        if offset == stream.END_OFFSET:
            if length != 32:
                self.error = f"end record of {length} bytes"
        elif offset == self.layout.state_size:
            if length != len(self.regions):
                self.error = f"region record of {length} bytes, the regions hold {len(self.regions)}"
        else:
            index, rem = divmod(offset, BLOCK)
            if rem or index >= self.state.nblocks or length != self.state.block_len(index) or length < 16:
                self.error = f"record [{offset}, +{length}) is not a block of this state"
        if length == 0 and not self.error:
            self._finish_record()

    def _body(self, piece: memoryview) -> None:
        offset, length = self.need
        if offset == stream.END_OFFSET or offset == self.layout.state_size:
            self.small += piece
        else:
            if self.expected is None:                    # the first 16 bytes name the block's version
                take = _WORD.size - len(self.small)
                self.small += piece[:take]
                if len(self.small) < _WORD.size:
                    self.got += len(piece)
                    return
                tag, idx, gen = _WORD.unpack(self.small)
                if not self.tag_known:          # the source's content tag (its seed): every block has it
                    self.state.tag, self.tag_known = tag, True
                if tag != self.state.tag or idx != offset // BLOCK:
                    self.error = f"block {offset // BLOCK} does not hold the device's data"
                    return
                self.state.gen[idx] = gen
                self.expected = pattern(tag).body_sum(idx, gen, length - _WORD.size)
                self.body_digest = new_digest()
                self.got += take
                piece = piece[take:]
            self.body_digest.update(piece)
        self.got += len(piece)

    def _finish_record(self) -> None:
        offset, _ = self.need
        if offset == stream.END_OFFSET:
            self.done = bytes(self.small)
        elif offset == self.layout.state_size:
            self.regions[:] = self.small
            self.regions_seen = True
        elif self.expected is not None:
            if self.body_digest.digest() != self.expected:
                self.error = f"block {offset // BLOCK} does not hold the device's data"
            else:
                self.seen[offset // BLOCK] = 1
        self.need, self.expected, self.small, self.body_digest = None, None, bytearray(), None

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
