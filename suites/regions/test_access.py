"""pread/pwrite on each declared region, inside the profile's fences: last byte, bounds, widths."""
import pytest

from vfio_conform.api import (ACCESS_WIDTHS, errno_name, expect, expect_errno, granted, need, read_span,
                              window)


pytestmark = pytest.mark.vc_protocol("any")
WIDTHS = ACCESS_WIDTHS


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
    a write that wraps around). Every access has a width the profile grants for the region: a
    crossing one needs a granted width above 1 byte.
    """
    info = any_device.region_info(region.index)
    need(region.probe_bounds and info.size > 1, region, "probe_bounds is not set in the profile")
    need(region.allows(info.size - 1, 1, info.size), region, "the profile fences off the end")
    rule, size = "region.out-of-bounds-contained", info.size
    widths = granted(region)
    need(bool(widths), region, f"no access width granted (widths {list(region.widths)})")
    multi = [w for w in widths if w > 1]
    crossing = [(size - 1, multi[0])] if multi else []            # one byte inside
    if multi and multi[-1] > 2 and size > multi[-1] // 2:
        crossing.append((size - multi[-1] // 2, multi[-1]))       # half of the widest inside
    for off, length in crossing:
        _crossing_read(any_device, region, info, off, length)
    for off, length in ((size, widths[0]), (size + 4096, widths[-1])):
        code, data = any_device.try_region_read(region.index, off, length, info)
        expect(code != 0 or not data, rule,
               f"pread(region {region.name} of {size:#x} bytes, {off:#x}, {length}) starting past the end "
               f"returned {len(data)} bytes", any_device)
    if multi and region.allows(size - 1, 1, size, write=True):
        _crossing_write(any_device, region, info, multi[0])


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
    own = read_span(device, region, info, off, inside)
    if own is None or own[0]:
        return                          # the granted widths cannot read those bytes back alone
    expect(data == own[1], "region.out-of-bounds-contained",
           f"{what} returned {data.hex()}, but the region holds {own[1].hex()} there", device)


def _crossing_write(device, region, info, width: int) -> None:
    """A `width`-byte pwrite over the last byte: an error and no change, or 1 byte stored and 1
    returned (the bytes around it read back with granted widths)."""
    last, rule = info.size - 1, "region.out-of-bounds-contained"
    back = read_span(device, region, info, last, 1)
    if back is None or back[0] or len(back[1]) != 1:
        return                          # the last byte cannot be read back with the granted widths
    before = back[1]
    head = read_span(device, region, info, 0, 8) if info.size > 8 + width else None
    first = head[1] if head is not None and not head[0] else None
    want = bytes([before[0] ^ 0xFF])
    try:
        code, n = device.try_region_write(region.index, last, want + b"\xa5" * (width - 1), info)
        after = (read_span(device, region, info, last, 1) or (0, b""))[1]
        what = f"pwrite(region {region.name} of {info.size:#x} bytes, {last:#x}, {width})"
        if code:
            expect(n == 0 and after == before, rule,
                   f"{what} failed ({errno_name(code)}) but changed the last byte {before.hex()} -> "
                   f"{after.hex()}", device)
        else:
            expect(n == 1, rule, f"{what} returned {n}; only 1 byte lies inside the region", device)
            expect(after == want, rule,
                   f"{what} returned 1 but the last byte reads {after.hex()}, not {want.hex()}", device)
        if first is not None:
            now = (read_span(device, region, info, 0, 8) or (0, b""))[1]
            expect(now == first, rule, f"{what} changed the region's first bytes {first.hex()} -> "
                                       f"{now.hex()} (a write past the end wrapped around)", device)
    finally:
        _restore_last(device, region, info, last, before)


def _restore_last(device, region, info, last: int, before: bytes) -> None:
    """Put the last byte back with a granted width (its aligned word, read then written)."""
    for width in reversed(granted(region)):
        lo = last // width * width
        if lo + width <= info.size and region.allows(lo, width, info.size, write=True):
            code, word = device.try_region_read(region.index, lo, width, info)
            if not code and len(word) == width:
                device.try_region_write(region.index, lo, word[:-1] + before, info)
            return


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
    """An access of a granted width above 1 byte (4 where granted) at offset 1 mod its width works if
    the profile says unaligned: true, fails if false."""
    need(region.unaligned is not None, region, "the profile does not declare unaligned")
    multi = [w for w in granted(region) if w > 1]
    need(bool(multi), region, f"no multi-byte access width granted (widths {list(region.widths)})")
    width = 4 if 4 in multi else multi[-1]
    info = any_device.region_info(region.index)
    base = window(region, info, 2 * width, align=width)
    need(base is not None, region, f"no allowed {2 * width}-byte window for an unaligned {width}-byte access")
    code, data = any_device.try_region_read(region.index, base + 1, width, info)
    ok = code == 0 and len(data) == width
    expect(ok == region.unaligned, "region.access-widths",
           f"unaligned {width}-byte pread at {base + 1:#x}: {errno_name(code)}, {len(data)} bytes; profile "
           f"says unaligned: {region.unaligned}", any_device)
    if ok and region.allows(base, 2 * width, info.size, write=True):
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
