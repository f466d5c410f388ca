"""pread/pwrite on each declared region, inside the profile's fences: last byte, bounds, widths."""
import pytest

from vfio_conform.suitelib.checks import expect, expect_errno
from vfio_conform.base.errors import errno_name

from .fences import need, window

pytestmark = pytest.mark.vc_protocol("any")
WIDTHS = (1, 2, 4, 8)


@pytest.mark.vc_spec("region.last-byte-accessible")
def test_region_last_byte_accessible(any_device, profile, region):
    """A read (and write-back, where writable) that ends at the last byte succeeds: the smallest
    access width the profile lists (`widths`) whose aligned access ends there and that it allows."""
    info = any_device.region_info(region.index)
    size = info.size
    need(size > 0, region, "the region is empty")
    fits = [w for w in sorted(region.widths) if size >= w and (size - w) % w == 0
            and region.allows(size - w, w, size)]
    need(bool(fits), region, f"no access of the listed widths {list(region.widths)} ending at the last byte "
         "is allowed by the profile")
    width = fits[0]
    off = size - width
    code, data = any_device.try_region_read(region.index, off, width, info)
    expect_errno(code, 0, "region.last-byte-accessible", f"pread(region {region.name}, {off:#x}, {width})",
                 any_device)
    expect(len(data) == width, "region.last-byte-accessible",
           f"{width}-byte pread ending at the last byte returned {len(data)} bytes", any_device)
    if region.allows(off, width, size, write=True):
        code, n = any_device.try_region_write(region.index, off, data, info)
        expect(code == 0 and n == width, "region.last-byte-accessible",
               f"pwrite(region {region.name}, {off:#x}, {width}): {errno_name(code)}, {n} bytes", any_device)


@pytest.mark.vc_spec("region.out-of-bounds-contained")
def test_region_out_of_bounds_contained(any_device, profile, region):
    """Accesses crossing the end fail or move exactly the bytes inside; ones past the end fail or return 0.

    The harness cannot see past the end of a region, so it checks what it can: the returned count,
    that the bytes returned are the region's own, and that a crossing write changes nothing but the
    bytes inside (its first bytes, where the profile lets the harness read them, are a sentinel for
    a write that wraps around).
    """
    info = any_device.region_info(region.index)
    need(region.probe_bounds and info.size > 1, region, "probe_bounds is not set in the profile")
    need(region.allows(info.size - 1, 1, info.size), region, "the profile fences off the end")
    rule, size = "region.out-of-bounds-contained", info.size
    for off, length in ((size - 1, 2), (size - 2, 8)):
        _crossing_read(any_device, region, info, off, length)
    for off, length in ((size, 1), (size + 4096, 4)):
        code, data = any_device.try_region_read(region.index, off, length, info)
        expect(code != 0 or not data, rule,
               f"pread(region {region.name} of {size:#x} bytes, {off:#x}, {length}) starting past the end "
               f"returned {len(data)} bytes", any_device)
    if region.allows(size - 1, 1, size, write=True):
        _crossing_write(any_device, region, info)


def _crossing_read(device, region, info, off: int, length: int) -> None:
    """A pread over the end: an error, or exactly the in-region bytes (the same as an in-bounds read)."""
    if off < 0 or not region.allows(off, info.size - off, info.size):
        return
    inside = info.size - off
    code, data = device.try_region_read(region.index, off, length, info)
    what = f"pread(region {region.name} of {info.size:#x} bytes, {off:#x}, {length})"
    if code:
        expect(not data, "region.out-of-bounds-contained", f"{what} failed but returned data", device)
        return
    expect(len(data) == inside, "region.out-of-bounds-contained",
           f"{what} returned {len(data)} bytes; only {inside} lie inside the region", device)
    _, own = device.try_region_read(region.index, off, inside, info)
    expect(data == own, "region.out-of-bounds-contained",
           f"{what} returned {data.hex()}, but the region holds {own.hex()} there", device)


def _crossing_write(device, region, info) -> None:
    """A 2-byte pwrite over the last byte: an error and no change, or 1 byte stored and 1 returned."""
    last, rule = info.size - 1, "region.out-of-bounds-contained"
    head = 8 if region.allows(0, 8, info.size) and info.size > 8 else 0
    _, before = device.try_region_read(region.index, last, 1, info)
    _, first = device.try_region_read(region.index, 0, head, info) if head else (0, b"")
    want = bytes([before[0] ^ 0xFF]) if before else b"\x5a"
    try:
        code, n = device.try_region_write(region.index, last, want + b"\xa5", info)
        _, after = device.try_region_read(region.index, last, 1, info)
        what = f"pwrite(region {region.name} of {info.size:#x} bytes, {last:#x}, 2)"
        if code:
            expect(n == 0 and after == before, rule,
                   f"{what} failed ({errno_name(code)}) but changed the last byte {before.hex()} -> "
                   f"{after.hex()}", device)
        else:
            expect(n == 1, rule, f"{what} returned {n}; only 1 byte lies inside the region", device)
            expect(after == want, rule,
                   f"{what} returned 1 but the last byte reads {after.hex()}, not {want.hex()}", device)
        if head:
            _, now = device.try_region_read(region.index, 0, head, info)
            expect(now == first, rule, f"{what} changed the region's first bytes {first.hex()} -> "
                                       f"{now.hex()} (a write past the end wrapped around)", device)
    finally:
        device.try_region_write(region.index, last, before, info)


@pytest.mark.vc_spec("region.access-widths")
@pytest.mark.parametrize("width", WIDTHS, ids=[f"w{w}" for w in WIDTHS])
def test_region_access_width(any_device, profile, region, width):
    """An aligned access of each width the profile lists works (write round-trips where allowed)."""
    need(width in region.widths, region, f"{width}-byte access not listed in widths {list(region.widths)}")
    info = any_device.region_info(region.index)
    off = window(region, info, width, align=width)
    need(off is not None, region, f"no allowed aligned {width}-byte window")
    code, data = any_device.try_region_read(region.index, off, width, info)
    expect(code == 0 and len(data) == width, "region.access-widths",
           f"{width}-byte pread at {off:#x}: {errno_name(code)}, {len(data)} bytes", any_device)
    if window(region, info, width, write=True, align=width) == off:
        _round_trip(any_device, region, info, off, data)


@pytest.mark.vc_spec("region.access-widths")
def test_region_unaligned_access(any_device, profile, region):
    """A 4-byte access at offset 1 mod 4 works if the profile says unaligned: true, fails if false."""
    need(region.unaligned is not None, region, "the profile does not declare unaligned")
    info = any_device.region_info(region.index)
    base = window(region, info, 8, align=4)
    need(base is not None, region, "no allowed 8-byte window for an unaligned 4-byte access")
    code, data = any_device.try_region_read(region.index, base + 1, 4, info)
    ok = code == 0 and len(data) == 4
    expect(ok == region.unaligned, "region.access-widths",
           f"unaligned 4-byte pread at {base + 1:#x}: {errno_name(code)}, {len(data)} bytes; profile says "
           f"unaligned: {region.unaligned}", any_device)
    if ok and region.allows(base, 8, info.size, write=True):
        _round_trip(any_device, region, info, base + 1, data)


def _round_trip(device, region, info, off: int, original: bytes) -> None:
    """Write a pattern, read it back, restore the original bytes."""
    pattern = bytes((0xA5 ^ i) for i in range(len(original)))
    code, n = device.try_region_write(region.index, off, pattern, info)
    try:
        expect(code == 0 and n == len(pattern), "region.access-widths",
               f"{len(pattern)}-byte pwrite at {off:#x}: {errno_name(code)}, {n} bytes", device)
        code, back = device.try_region_read(region.index, off, len(pattern), info)
        expect(back == pattern, "region.access-widths",
               f"{len(pattern)}-byte write of {pattern.hex()} at {off:#x} reads back {back.hex()}", device)
    finally:
        device.try_region_write(region.index, off, original, info)
