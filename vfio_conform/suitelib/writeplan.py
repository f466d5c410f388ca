"""How a stream is cut into read() or write() calls: all of it in one size, or small ones where it matters.

A hostile writer that splits the whole stream into 1-, 3- or 7-byte writes costs millions of calls
on a gigabyte state. A bounded plan writes in `piece`-sized writes only the header, a window on each
side of every record boundary and a fixed number of evenly spaced samples of the body; everything
else goes in large writes. A stream no longer than `budget` is written whole in `piece`s, as before.
The plan's Coverage says what was covered, for the test's message and record.
"""
from __future__ import annotations

import dataclasses

BULK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What a plan writes in small pieces (bytes counts; `whole`: every byte)."""

    length: int
    piece: int
    whole: bool
    header: int = 0
    boundaries: int = 0
    window: int = 0
    samples: int = 0
    sample_len: int = 0
    small_bytes: int = 0

    def describe(self) -> str:
        if self.whole:
            return f"every byte of the {self.length}-byte stream in {self.piece}-byte writes"
        return (f"{self.piece}-byte writes over {self.small_bytes} of {self.length} bytes: the first "
                f"{self.header} bytes, +-{self.window} bytes around {self.boundaries} record boundaries, "
                f"{self.samples} body samples of {self.sample_len} bytes; the rest in {BULK}-byte writes")

    def as_record(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class WritePlan:
    """(start, end, write size) segments covering [0, length) in order."""

    segments: tuple[tuple[int, int, int], ...]
    coverage: Coverage


def whole(length: int, piece: int) -> WritePlan:
    return WritePlan(((0, length, piece),) if length else (), Coverage(length, piece, True,
                                                                       small_bytes=length))


def bounded(length: int, piece: int, boundaries=(), header: int = 4096, window: int = 16,
            samples: int = 16, sample_len: int = 4096, budget: int = 1 << 20) -> WritePlan:
    """Small writes on the header, around every boundary and on `samples` body samples (see module doc)."""
    if length <= budget or piece >= BULK:
        return whole(length, piece)
    half = max(window, 2 * piece)
    spans = [(0, min(header, length))]
    marks = sorted({b for b in boundaries if 0 < b < length})
    spans += [(max(0, b - half), min(length, b + half)) for b in marks]
    step = length // (samples + 1)
    spans += [(k * step, min(length, k * step + sample_len)) for k in range(1, samples + 1)]
    spans.sort()
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    segments, pos, small = [], 0, 0
    for lo, hi in merged:
        if lo > pos:
            segments.append((pos, lo, BULK))
        segments.append((lo, hi, piece))
        small += hi - lo
        pos = hi
    if pos < length:
        segments.append((pos, length, BULK))
    return WritePlan(tuple(segments), Coverage(length, piece, False, min(header, length), len(marks), half,
                                               samples, sample_len, small))


def read_along(fd, plan: WritePlan, digest) -> tuple[int, int]:
    """Read a saving data_fd along `plan` (reads of each segment's size, never past its end; after
    the last segment, BULK reads to end of stream), updating `digest`: (bytes, errno or 0)."""
    total = 0
    for _start, end, piece in plan.segments:
        while total < end:
            code, data = fd.try_read(min(piece, end - total))
            if code:
                return total, code
            if not data:
                return total, 0
            digest.update(data)
            total += len(data)
    while True:
        code, data = fd.try_read(BULK)
        if code or not data:
            return total, code
        digest.update(data)
        total += len(data)
