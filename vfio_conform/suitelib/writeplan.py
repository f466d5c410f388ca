"""How a stream is cut into read() or write() calls: all of it in one size, or small ones where it matters.

A hostile writer that splits the whole stream into 1-, 3- or 7-byte writes costs millions of calls
on a gigabyte state. A bounded plan writes in `piece`-sized writes only the header, a window on each
side of every record boundary and a fixed number of evenly spaced samples of the body; everything
else goes in large writes. A stream no longer than `budget` is written whole in `piece`s, as before.
The plan's Coverage says what was covered, for the test's message and record.

Several write sizes can share one resume (`combined`): the same spans, each written in one of the
sizes in turn (the header in the smallest), so a big stream is written once for all of them and each
size's Coverage names the boundaries and samples it had; a test that sees the shared resume refused
writes its own size's bounded plan to say which size the device refused.
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
    #: a combined plan: the other write sizes of the same resume, and all record boundaries / samples
    shared_with: tuple[int, ...] = ()
    boundaries_total: int = 0
    samples_total: int = 0

    def describe(self) -> str:
        if self.whole:
            return f"every byte of the {self.length}-byte stream in {self.piece}-byte writes"
        if self.shared_with:
            head = f"the first {self.header} bytes, " if self.header else ""
            others = ", ".join(str(p) for p in self.shared_with)
            return (f"{self.piece}-byte writes over {self.small_bytes} of {self.length} bytes: {head}+-{self.window} "
                    f"bytes around {self.boundaries} of the {self.boundaries_total} record boundaries, "
                    f"{self.samples} of {self.samples_total} body samples of {self.sample_len} bytes, in one "
                    f"resume shared with the {others}-byte writes (the other boundaries and samples); the "
                    f"rest in {BULK}-byte writes")
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


def sample_bytes(piece: int) -> int:
    """How long a body sample of a combined plan is in `piece`-byte writes: 64 writes, 256 bytes to 256 KiB."""
    return min(max(256, 64 * piece), 1 << 18)


def combined(length: int, pieces: tuple[int, ...], boundaries=(), header: int = 4096, window: int = 16,
             samples: int = 16, budget: int = 1 << 20) -> tuple[WritePlan, dict[int, Coverage]] | None:
    """One plan for all of `pieces` (None for a stream no longer than `budget`: each size then writes
    it whole). The spans of `bounded` in stream order - the header, +-max(window, 2 * piece) around
    each record boundary, `samples` evenly spaced body samples (sample_bytes(piece) long) - go to the
    sizes in turn (the header to the first); a span that would overlap the one before starts where
    that one ends."""
    if length <= budget or not pieces:
        return None
    marks = sorted({b for b in boundaries if 0 < b < length})
    step = length // (samples + 1)
    kinds = sorted([(0, "header")] + [(b, "boundary") for b in marks]
                   + [(k * step, "sample") for k in range(1, samples + 1)])
    spans: list[tuple[int, int, int, str]] = []
    turn = 0
    for at, kind in kinds:
        piece = pieces[0] if kind == "header" else pieces[turn % len(pieces)]
        if kind != "header":
            turn += 1
        if kind == "header":
            lo, hi = 0, min(header, length)
        elif kind == "boundary":
            half = max(window, 2 * piece)
            lo, hi = max(0, at - half), min(length, at + half)
        else:
            lo, hi = at, min(length, at + sample_bytes(piece))
        if spans:
            lo = max(lo, spans[-1][1])
        if lo < hi:
            spans.append((lo, hi, piece, kind))
    segments, pos = [], 0
    small = dict.fromkeys(pieces, 0)
    counts = {p: {"boundary": 0, "sample": 0, "header": 0} for p in pieces}
    for lo, hi, piece, kind in spans:
        if lo > pos:
            segments.append((pos, lo, BULK))
        segments.append((lo, hi, piece))
        small[piece] += hi - lo
        counts[piece][kind] += 1 if kind != "header" else hi - lo
        pos = hi
    if pos < length:
        segments.append((pos, length, BULK))
    coverage = {p: Coverage(length, p, False, counts[p]["header"], counts[p]["boundary"], max(window, 2 * p),
                            counts[p]["sample"], sample_bytes(p), small[p],
                            tuple(q for q in pieces if q != p), len(marks), samples)
                for p in pieces}
    return WritePlan(tuple(segments), coverage[pieces[0]]), coverage


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
