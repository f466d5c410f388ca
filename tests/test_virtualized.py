"""Virtualized region ranges: the MSI-X table that vfio-pci's read()/write() skip, found in the
device's own config space, and the comparison of pread with mmap only outside it."""
from types import SimpleNamespace

from vfio_conform.suitelib.virtualized import masked, virtualized_ranges
from vfio_conform.uapi.enums import PciRegion


class FakePci:
    """A config space with a capability list: PM (id 1) at 0x40, then MSI-X (id 0x11) at 0x50."""

    def __init__(self, table: int, qsize: int, status: int = 0x0010):
        cfg = bytearray(256)
        cfg[0x06:0x08] = status.to_bytes(2, "little")
        cfg[0x34] = 0x40
        cfg[0x40:0x42] = bytes([0x01, 0x50])
        cfg[0x50:0x52] = bytes([0x11, 0x00])
        cfg[0x52:0x54] = (qsize - 1).to_bytes(2, "little")
        cfg[0x54:0x58] = table.to_bytes(4, "little")
        self.cfg = bytes(cfg)

    def try_region_info(self, index):
        assert index == PciRegion.CONFIG
        return 0, SimpleNamespace(size=len(self.cfg), readable=True)

    def try_region_read(self, index, offset, size):
        return 0, self.cfg[offset:offset + size]


def test_msix_table_is_found_in_config_space():
    (r,) = virtualized_ranges(FakePci(table=0x2000 | 3, qsize=5))       # BIR 3, offset 0x2000
    assert (r.index, r.offset, r.length) == (3, 0x2000, 5 * 16)
    assert "MSI-X table (5 entries)" in r.why and r.overlaps(3, 0x2040, 0x100)
    assert not r.overlaps(3, 0x2050, 4) and not r.overlaps(0, 0x2000, 4)


def test_no_capability_list_no_ranges():
    assert virtualized_ranges(FakePci(table=0, qsize=1, status=0x0200)) == []      # mtty's Status


def test_masked_compares_only_outside_the_range():
    (r,) = virtualized_ranges(FakePci(table=0x10 | 1, qsize=1))
    pread = b"\x01" * 0x10 + b"\xff" * 0x10 + b"\x02" * 0x10
    mapped = b"\x01" * 0x10 + b"\x5a" * 0x10 + b"\x02" * 0x10
    assert masked(pread, 0, 1, [r]) == masked(mapped, 0, 1, [r])
    assert masked(pread, 0, 0, [r]) != masked(mapped, 0, 0, [r])          # another region: all compared
    assert masked(b"\x01" * 8, 0x18, 1, [r]) == bytes(8)                   # a read inside the table


class DwordOnlyPci(FakePci):
    """A config space that answers only aligned 4-byte reads, and records every access."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sizes = []

    def try_region_read(self, index, offset, size):
        self.sizes.append(size)
        if size != 4 or offset % 4:
            return 22, b""
        return super().try_region_read(index, offset, size)


def test_config_reads_use_only_the_granted_widths():
    from vfio_conform.suitelib.pciconfig import config_read
    dev = DwordOnlyPci(table=0x2000 | 3, qsize=5)
    (r,) = virtualized_ranges(dev, widths=(4,))                 # the profile grants CONFIG widths [4]
    assert (r.index, r.offset, r.length) == (3, 0x2000, 5 * 16) and set(dev.sizes) == {4}
    assert virtualized_ranges(DwordOnlyPci(table=0x2000, qsize=1)) == []   # 1/2-byte reads refused
    assert config_read(dev, 0x06, 2, (4,)) == 0x0010 and config_read(dev, 0x34, 1, (4,)) == 0x40
    assert config_read(FakePci(table=0, qsize=1), 0x54, 4, (1,)) == 0             # four 1-byte reads
    assert config_read(dev, 0x06, 2, ()) is None                                  # nothing granted
