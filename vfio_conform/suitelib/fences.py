"""The profile's region fences as test preconditions: anything not allowed is skipped, never touched.

Every region access the suites issue uses an access width the profile grants for that region
(`regions.<REGION>.widths`): a device may answer only some widths (a register file that decodes
only 32-bit accesses), and the profile says which ones must work. `read_span` and `write_span`
split (or widen, for reads) an access into accesses of the granted widths.
"""
from ..results.outcomes import not_supported
from ..uapi.enums import PciRegion

#: The widths a region access can have (pread/pwrite sizes the suites use, and mmap loads).
ACCESS_WIDTHS = (1, 2, 4, 8)


def need(condition: bool, region, why: str) -> None:
    """Skip as not-supported unless the profile allows what the test is about to do."""
    if not condition:
        not_supported(f"region {region.name}: {why}")


def window(region, info, length: int, write: bool = False, align: int = 1):
    """The first allowed offset for `length` bytes, aligned to `align`, or None."""
    for off, size in region.windows(info.size):
        pos = -(-off // align) * align
        if pos + length <= off + size and region.allows(pos, length, info.size, write):
            return pos
    return None


def granted(region) -> list[int]:
    """The access widths the profile grants for `region`, smallest first."""
    return sorted(w for w in set(region.widths) if w in ACCESS_WIDTHS)


def config_widths(profile) -> tuple[int, ...]:
    """The access widths the profile grants for the config region (the reads that find its
    capabilities use only these)."""
    return tuple(granted(profile.regions.policy(int(PciRegion.CONFIG))))


def exact_width(region, off: int, length: int) -> int | None:
    """The widest granted width that tiles [off, off + length) with aligned accesses, or None."""
    fits = [w for w in granted(region) if off % w == 0 and length % w == 0]
    return fits[-1] if fits else None


def read_by(device, index: int, off: int, length: int, width: int, info) -> tuple[int, bytes]:
    """pread of [off, off + length) one access of `width` bytes at a time: (errno or -1 for a short
    read, the bytes read before it)."""
    out = bytearray()
    for pos in range(off, off + length, width):
        code, data = device.try_region_read(index, pos, width, info)
        if code or len(data) != width:
            return code or -1, bytes(out)
        out += data
    return 0, bytes(out)


def write_by(device, index: int, off: int, data: bytes, width: int, info) -> tuple[int, int]:
    """pwrite of `data` at `off` one access of `width` bytes at a time: (errno or -1 for a short
    write, bytes written)."""
    done = 0
    for pos in range(0, len(data), width):
        code, n = device.try_region_write(index, off + pos, data[pos:pos + width], info)
        if code or n != width:
            return code or -1, done + max(n, 0)
        done += n
    return 0, done


def read_span(device, region, info, off: int, length: int) -> tuple[int, bytes] | None:
    """The bytes [off, off + length) read with granted widths only: the widest granted width whose
    aligned cover of the span lies inside the region and the profile's fences (the cover is read
    and cut); None when no granted width can reach the span."""
    for width in reversed(granted(region)):
        lo = off // width * width
        hi = -(-(off + length) // width) * width
        if hi <= info.size and region.allows(lo, hi - lo, info.size):
            code, data = read_by(device, region.index, lo, hi - lo, width, info)
            return code, data[off - lo:off - lo + length] if not code else b""
    return None


def write_span(device, region, info, off: int, data: bytes) -> tuple[int, int] | None:
    """`data` written at `off` with granted widths only (aligned, never past the span); None when
    no granted width tiles the span."""
    width = exact_width(region, off, len(data))
    if width is None or not region.allows(off, len(data), info.size, write=True):
        return None
    return write_by(device, region.index, off, data, width, info)
