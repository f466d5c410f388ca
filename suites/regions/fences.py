"""The profile's region fences as test preconditions: anything not allowed is skipped, never touched."""
from vfio_conform.results.outcomes import not_supported



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
