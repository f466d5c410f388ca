"""Hook for mtty: the 16550 scratch register (BAR0 offset 7, 1-byte) of port 0 migrates.

Only BAR0 is touched (BAR2-5 index out of bounds in mtty, vfio-uapi.md section 0 hazard 3a).
"""
from __future__ import annotations

from .base import Verifier

BAR0, SCRATCH = 0, 7


def value(tag: int) -> int:
    return (tag * 37 + 11) & 0xFF


class MttyUart(Verifier):
    """mtty stream: header magic u64 @0, major @8, minor @12, nr_ports @16, flags @20; ports from 24."""

    name = "mtty-uart"
    header_cuts = (0, 1, 8, 12, 16, 20, 24, 60)
    header_flips = (0, 7, 8, 16, 20)          # minor (12) is not checked by 6.12 mtty

    def write(self, device, tag: int) -> None:
        device.region_write(BAR0, SCRATCH, bytes([value(tag)]))

    def check(self, device, tag: int) -> list[str]:
        got = device.region_read(BAR0, SCRATCH, 1)
        if got != bytes([value(tag)]):
            return [f"scratch register reads {got.hex()}, expected {value(tag):02x} (tag {tag})"]
        return []
