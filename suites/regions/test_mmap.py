"""mmap vs the slow path on each declared region, and the mmaps a driver must refuse."""
import mmap
import sys

import pytest

from vfio_conform.api import (config_widths, exact_width, expect, masked, need, read_by,
                              virtualized_ranges, write_by)


pytestmark = pytest.mark.vc_protocol("any")
PAGE = mmap.PAGESIZE
#: Bytes compared per area (enough to catch a wrong mapping, small enough for big BARs).
_SPAN = 64 << 10


def _area(device, region, info):
    """The first mmappable (offset, length) range the profile lets the harness read, or None.

    An advertised area that cannot be mapped (not page-aligned, outside the region) is the device's
    failure of region.sparse-areas-valid, not a reason to try an mmap that must fail.
    """
    for off, size in info.sparse_areas if info.sparse_areas is not None else ((0, info.size),):
        length = min(size, _SPAN)
        if region.allows(off, length, info.size):
            expect(off % PAGE == 0 and size > 0 and off + size <= info.size, "region.sparse-areas-valid",
                   f"region {region.name}: the mmappable area ({off:#x}, {size:#x}) is not page-aligned "
                   f"inside {info.size:#x} bytes", device)
            return off, length
    return None


def _map(device, region, info, off: int, length: int, writable: bool = False) -> mmap.mmap:
    """mmap of a range the device advertises as mmappable; a refusal is the device's failure."""
    try:
        return device.region_mmap(region.index, off, length, writable=writable, info=info)
    except OSError as exc:
        expect(False, "region.mmap-coherent",
               f"mmap of the advertised area {region.name} [{off:#x}, +{length:#x}) failed: {exc}", device)


@pytest.mark.vc_spec("region.mmap-coherent")
def test_region_pread_and_mmap_agree(any_device, profile, region):
    """The same bytes through pread and through an mmap of the same range.

    The mapping is read with the profile's widest access width (a device may answer a register by
    the width of the access), between two preads; a byte the two preads disagree on changed on the
    device (a counter, a read-to-clear register) and is not compared, nor is a range the reference
    driver answers read() for itself (vfio-pci: the MSI-X table)."""
    info = any_device.region_info(region.index)
    need(info.mmappable, region, "no MMAP flag")
    span = _area(any_device, region, info)
    need(span is not None, region, "the profile fences off every mmappable area")
    off, length = span
    skip = [r for r in virtualized_ranges(any_device, config_widths(profile)) if r.overlaps(region.index, off, length)]
    need(not any(r.offset <= off and off + length <= r.offset + r.length for r in skip), region,
         "the mmappable area lies inside a range read() does not reach: "
         + "; ".join(r.text() for r in skip))
    width = exact_width(region, off, length)
    need(width is not None, region, f"no granted width (widths {list(region.widths)}) tiles "
         f"[{off:#x}, +{length:#x})")
    code, before = read_by(any_device, region.index, off, length, width, info)
    with _map(any_device, region, info, off, length) as m:
        mapped = _load(m, length, width)
    code2, after = read_by(any_device, region.index, off, length, width, info)
    expect(code == 0 and code2 == 0 and len(before) == len(after) == length, "region.mmap-coherent",
           f"region {region.name} [{off:#x}, +{length:#x}): pread failed or came back short", any_device)
    before, after, mapped = (masked(b, off, region.index, skip) for b in (before, after, mapped))
    differ = [i for i in range(length) if before[i] == after[i] != mapped[i]]
    expect(not differ, "region.mmap-coherent",
           f"region {region.name} [{off:#x}, +{length:#x}): pread and mmap differ at {len(differ)} "
           f"byte(s) that two preads agree on (first at offset +{differ[0]:#x}: "
           f"{before[differ[0]]:#04x} vs {mapped[differ[0]]:#04x})" if differ else "",
           any_device)


def _load(m: mmap.mmap, length: int, width: int, start: int = 0) -> bytes:
    """The mapping's bytes [start, start + length) read with loads of `width` bytes
    (memoryview.cast: one load of that size per element)."""
    with memoryview(m) as whole, whole[start:start + length] as part, \
            part.cast("BHIQ"[(1, 2, 4, 8).index(width)]) as view:
        return b"".join(v.to_bytes(width, sys.byteorder) for v in view)


def _store(m: mmap.mmap, start: int, data: bytes, width: int) -> None:
    """`data` stored into the mapping at `start` with stores of `width` bytes."""
    with memoryview(m) as whole, whole[start:start + len(data)] as part, \
            part.cast("BHIQ"[(1, 2, 4, 8).index(width)]) as view:
        for i in range(len(data) // width):
            view[i] = int.from_bytes(data[i * width:(i + 1) * width], sys.byteorder)


@pytest.mark.vc_spec("region.mmap-coherent")
def test_region_write_seen_through_other_path(any_device, profile, region):
    """A pwrite shows in the mapping, and a store into the mapping shows in pread (pwrite, pread,
    loads and stores all of the widest width the profile grants for the region up to 8 bytes)."""
    info = any_device.region_info(region.index)
    need(info.mmappable, region, "no MMAP flag")
    span = _area(any_device, region, info)
    need(span is not None and region.allows(span[0], 16, info.size, write=True), region,
         "the profile allows no write to an mmappable area")
    off = span[0]
    width = exact_width(region, off, 8)
    need(width is not None, region, f"no granted width (widths {list(region.widths)}) tiles 8 bytes")
    skip = [r for r in virtualized_ranges(any_device, config_widths(profile)) if r.overlaps(region.index, off, 16)]
    need(not skip, region, "the first writable mmappable bytes lie in a range read()/write() do not "
         "reach: " + "; ".join(r.text() for r in skip))
    code, original = read_by(any_device, region.index, off, 16, width, info)
    expect(code == 0 and len(original) == 16, "region.mmap-coherent",
           f"{width}-byte preads of {region.name} [{off:#x}, +16) failed: {code}", any_device)
    try:
        with _map(any_device, region, info, off, PAGE, writable=True) as m:
            code, _ = write_by(any_device, region.index, off, b"\xc3" * 8, width, info)
            seen = _load(m, 8, width)
            expect(code == 0 and seen == b"\xc3" * 8, "region.mmap-coherent",
                   f"{width}-byte pwrites at {region.name}+{off:#x} ({code}) not seen through the mapping "
                   f"({seen.hex()})", any_device)
            _store(m, 8, b"\x3c" * 8, width)
            code, back = read_by(any_device, region.index, off + 8, 8, width, info)
            expect(back == b"\x3c" * 8, "region.mmap-coherent",
                   f"{width}-byte stores into the mapping at {region.name}+{off + 8:#x} not seen by "
                   f"{width}-byte preads ({back.hex()})", any_device)
    finally:
        write_by(any_device, region.index, off, original, width, info)


@pytest.mark.vc_spec("region.mmap-invalid-fails")
def test_region_invalid_mmaps_fail(any_device, profile, region):
    """Too large, unaligned, outside the sparse areas, or without MMAP: each mmap fails."""
    info = any_device.region_info(region.index)
    need(region.access != "none" and info.size > 0, region, "access: none")
    cases = []
    if not info.mmappable:
        cases.append(("of a region without MMAP", 0, PAGE))
    else:
        cases.append(("larger than the region", 0, _round_up(info.size) + PAGE))
        areas = info.sparse_areas if info.sparse_areas is not None else ((0, info.size),)
        cases.append(("at an unaligned offset", areas[0][0] + 1, PAGE))
        hole = _hole(areas, info.size)
        if hole is not None:
            cases.append(("outside the sparse areas", hole, PAGE))
    for what, off, length in cases:
        try:
            m = any_device.region_mmap(region.index, off, length, info=info)
        except (OSError, ValueError):
            continue
        m.close()
        expect(False, "region.mmap-invalid-fails",
               f"mmap {what} succeeded: region {region.name} ({info.size:#x} bytes), "
               f"offset {off:#x}, length {length:#x}", any_device)


def _round_up(n: int) -> int:
    return -(-n // PAGE) * PAGE


def _hole(areas, size: int):
    """A page-aligned offset inside the region that no sparse area covers, or None."""
    for pos in range(0, size - PAGE + 1, PAGE):
        if not any(o <= pos < o + s for o, s in areas):
            return pos
    return None


def _first_diff(a: bytes, b: bytes) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"offset +{i:#x}: {x:#04x} vs {y:#04x}"
    return f"lengths {len(a)} vs {len(b)}"
