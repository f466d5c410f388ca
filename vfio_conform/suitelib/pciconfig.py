"""Reading PCI config registers through the config region with the access widths a profile grants.

A register of 1, 2 or 4 bytes is read with one access of its own size where that width is granted
and the register is aligned to it, else with one aligned access of a wider granted width that holds
it, else in aligned pieces of a narrower granted width; never with a width the profile leaves out
(`regions.CONFIG.widths`; PCI config registers are little-endian, PCI Local Bus 3.0 6.1).
"""
from __future__ import annotations

from collections.abc import Iterable

from ..uapi.enums import PciRegion

CONFIG = int(PciRegion.CONFIG)
#: The widths used when the caller names none (what vfio-pci's config space answers).
CONFIG_WIDTHS = (1, 2, 4)


def _plan(offset: int, size: int, widths: Iterable[int]) -> tuple[int, int, int] | None:
    """(start, width, count) of the accesses that read [offset, offset + size), or None."""
    granted = sorted({w for w in widths if w in (1, 2, 4, 8)})
    if size in granted and offset % size == 0:
        return offset, size, 1
    for w in granted:
        lo = offset // w * w
        if w > size and offset + size <= lo + w:
            return lo, w, 1
    for w in reversed(granted):
        if w < size and size % w == 0 and offset % w == 0:
            return offset, w, size // w
    return None


def config_read(device, offset: int, size: int, widths: Iterable[int] = CONFIG_WIDTHS) -> int | None:
    """The little-endian config register [offset, offset + size), read with granted widths only;
    None when it cannot be read (an access failed or no granted width reaches it)."""
    plan = _plan(offset, size, widths)
    if plan is None:
        return None
    start, width, count = plan
    data = b""
    for i in range(count):
        code, got = device.try_region_read(CONFIG, start + i * width, width)
        if code or len(got) != width:
            return None
        data += got
    return int.from_bytes(data[offset - start:offset - start + size], "little")
