"""Hook for the sim: a tag-derived pattern in BAR0 (both sparse areas) and BAR2, via the Device."""
from __future__ import annotations

import hashlib

from .base import Verifier

_HEADER, _REC = 72, 12          # the sim stream's header and record-header lengths

#: (region index, offset, length) windows the hook writes.
WINDOWS = ((0, 0, 64), (0, 0x8000 + 128, 64), (2, 16, 32))


def pattern(tag: int, index: int, offset: int, length: int) -> bytes:
    seed = hashlib.sha256(f"{tag}:{index}:{offset}".encode()).digest()
    return (seed * (length // len(seed) + 1))[:length]


class SimRegions(Verifier):
    """The sim stream: 72-byte header (magic, version, header length, fingerprint, length, sha256)."""

    name = "sim-regions"
    header_cuts = (0, 1, 8, 12, 16, 32, 40, 72, 73)
    header_flips = (0, 8, 12, 16, 31, 32, 40, 71, 72)

    def write(self, device, tag: int) -> None:
        for index, offset, length in WINDOWS:
            device.region_write(index, offset, pattern(tag, index, offset, length))

    def check(self, device, tag: int) -> list[str]:
        problems = []
        for index, offset, length in WINDOWS:
            got = device.region_read(index, offset, length)
            if got != pattern(tag, index, offset, length):
                problems.append(f"region {index} [{offset:#x}, +{length}) does not hold tag {tag}'s pattern")
        return problems

    def flips(self, length: int) -> list[int]:
        return sorted({*super().flips(length), length - 1})

    def record_offsets(self, read, length: int, limit: int = 1 << 16) -> list[int]:
        """The sim stream (backends/sim/stream.py, bigstate.py): v1 is the header and the payload;
        v2 the header, payload[:split], then records; v3 the header, then records. A record is
        (payload offset u64, length u32, data); the walk stops at the end record or a bad length."""
        head = read(0, _HEADER)
        if len(head) < _HEADER:
            return []
        version = int.from_bytes(head[8:12], "little")
        pos = _HEADER
        if version == 2:
            pos += int.from_bytes(head[40:48], "little")
        elif version != 3:
            return [pos]
        out = [_HEADER]
        while pos + _REC <= length and len(out) < limit:
            out.append(pos)
            rec = read(pos, _REC)
            offset, size = int.from_bytes(rec[:8], "little"), int.from_bytes(rec[8:12], "little")
            pos += _REC + size
            if offset == (1 << 64) - 1:
                break
        if pos <= length:
            out.append(pos)
        return sorted(set(out))
