"""Ranges of a region where the reference driver answers read()/write() itself while mmap maps
the device: there pread and mmap legitimately differ.

vfio-pci (drivers/vfio/pci/vfio_pci_core.c vfio_pci_core_enable; vfio_pci_rdwr.c vfio_pci_bar_rw
and vfio_pci_core_do_io_rw): the BAR named by the MSI-X capability's Table BIR has its MSI-X table,
[Table Offset, Table Offset + 16 * Table Size), excluded from read() and write(): reads return 0xff,
writes are dropped (the table belongs to the host's interrupt set-up). An mmap of that BAR maps the
device, table included, where the region reports VFIO_REGION_INFO_CAP_MSIX_MAPPABLE (or its
sparse-mmap areas leave the table out). The ranges come from the device's own config space
(VFIO_PCI_CONFIG_REGION_INDEX: Status bit 4, the capability list from 0x34, capability id 0x11;
PCI Local Bus 3.0 6.8.2), read through the device, never assumed.
"""
from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Iterable

from .pciconfig import CONFIG, CONFIG_WIDTHS, config_read

STATUS, CAP_PTR, STATUS_CAP_LIST = 0x06, 0x34, 1 << 4
CAP_ID_MSIX = 0x11
MSIX_FLAGS, MSIX_TABLE, MSIX_PBA = 0x02, 0x04, 0x08
MSIX_QSIZE, BIR_MASK = 0x07FF, 0x7
MSIX_ENTRY = 16


@dataclass(frozen=True)
class VirtualizedRange:
    """[offset, offset + length) of region `index` that read()/write() do not reach."""

    index: int
    offset: int
    length: int
    why: str

    def overlaps(self, index: int, offset: int, length: int) -> bool:
        return index == self.index and offset < self.offset + self.length and self.offset < offset + length

    def text(self) -> str:
        return f"[{self.offset:#x}, +{self.length:#x}) {self.why}"


def capabilities(device, widths: Iterable[int] = CONFIG_WIDTHS) -> dict[int, int]:
    """{capability id: offset of the first one} from the device's config space ({} if none), read
    with the config access `widths` the profile grants."""

    code, info = device.try_region_info(CONFIG)
    if code or info is None or not info.size or not info.readable:
        return {}
    status = config_read(device, STATUS, 2, widths)
    if status is None or not status & STATUS_CAP_LIST:
        return {}
    found: dict[int, int] = {}
    pos, seen = config_read(device, CAP_PTR, 1, widths), set()
    while pos and 0x40 <= pos < info.size and pos not in seen and len(seen) < 48:
        seen.add(pos)
        header = config_read(device, pos & ~3, 2, widths)
        if header is None:
            break
        found.setdefault(header & 0xFF, pos & ~3)
        pos = header >> 8
    return found


def virtualized_ranges(device, widths: Iterable[int] = CONFIG_WIDTHS) -> list[VirtualizedRange]:
    """The ranges vfio-pci answers read()/write() for itself (the MSI-X table), from the device's
    config space read with the config access `widths` the profile grants; [] for a device without
    one (or without a readable config region)."""
    widths = tuple(widths)
    cap = capabilities(device, widths).get(CAP_ID_MSIX)
    if cap is None:
        return []
    flags = config_read(device, cap + MSIX_FLAGS, 2, widths)
    table = config_read(device, cap + MSIX_TABLE, 4, widths)
    if flags is None or table is None:
        return []
    entries = (flags & MSIX_QSIZE) + 1
    return [VirtualizedRange(table & BIR_MASK, table & ~BIR_MASK, entries * MSIX_ENTRY,
                             f"MSI-X table ({entries} entries): vfio-pci's read()/write() skip it "
                             "(reads 0xff), mmap maps the device")]


def masked(data: bytes, offset: int, index: int, ranges: list[VirtualizedRange]) -> bytes:
    """`data` read at `offset` of region `index` with the bytes of `ranges` zeroed (for comparing
    two views of the region only where both see the device)."""
    out = bytearray(data)
    for r in ranges:
        if r.overlaps(index, offset, len(data)):
            lo, hi = max(r.offset - offset, 0), min(r.offset + r.length - offset, len(data))
            out[lo:hi] = bytes(hi - lo)
    return bytes(out)
