"""Hook for libvfio-user's sample server: a tag-derived pattern in BAR1 (its migrated state).

The sample server's migration stream is BAR1's 12 KiB followed by BAR0's 8-byte time_t, with no
header of its own. The hook writes windows in each of BAR1's three pages (the two mmap-able sparse
areas and the middle one) and a time_t a day ahead into BAR0: a write in RUNNING arms an alarm for
that time, and the destination re-arms it on RESUMING -> RUNNING (with the zero of a fresh server
that arc fails: setitimer refuses a time in the past). BAR0 reads back `now - time_t`.
"""
from __future__ import annotations

import hashlib
import struct
import time

from .base import Verifier

#: (region index, offset, length) windows the hook writes.
WINDOWS = ((1, 0, 64), (1, 0x1000 + 32, 64), (1, 0x2000 + 256, 64))
#: how far ahead of now the BAR0 alarm time is set (seconds)
AHEAD = 86400


def pattern(tag: int, index: int, offset: int, length: int) -> bytes:
    seed = hashlib.sha256(f"libvfio-user:{tag}:{index}:{offset}".encode()).digest()
    return (seed * (length // len(seed) + 1))[:length]


class LibvfioUserSample(Verifier):
    """BAR1 windows. The stream has no header (samples/server.c migration_read_data: BAR1, then BAR0's
    time_t): cuts stay (a cut stream is incomplete), but no byte is a header byte whose corruption the
    server could detect (any BAR1 content is a valid state), so there are no header flips."""

    name = "libvfio-user-sample"
    header_flips: tuple[int, ...] = ()

    def write(self, device, tag: int) -> None:
        for index, offset, length in WINDOWS:
            device.region_write(index, offset, pattern(tag, index, offset, length))
        device.region_write(0, 0, struct.pack("<q", int(time.time()) + AHEAD + tag % 1000))

    def check(self, device, tag: int) -> list[str]:
        problems = []
        # one read of all of BAR1 from offset 0: the sample's BAR1 read handler copies from the
        # start of the BAR whatever the offset (a finding of the region suites, docs/vfio-user.md)
        bar1 = device.region_read(1, 0, 0x3000)
        for index, offset, length in WINDOWS:
            got = bar1[offset:offset + length]
            if got != pattern(tag, index, offset, length):
                problems.append(f"BAR1 [{offset:#x}, +{length}) does not hold tag {tag}'s pattern")
        (delta,) = struct.unpack("<q", device.region_read(0, 0, 8))
        if not -(AHEAD + tag % 1000) <= delta <= -(AHEAD + tag % 1000) + 3600:
            problems.append(f"BAR0 reads now - {-delta} s: not the alarm time tag {tag} set")
        return problems
