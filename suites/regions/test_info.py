"""GET_REGION_INFO of each declared region: flags, offsets, capability chain, sparse areas, profile.

Info queries never touch region contents, so they run on every declared region, fenced or not.
"""
import mmap

import pytest

from vfio_conform.api import expect, RegionCap, RegionFlag

pytestmark = pytest.mark.vc_protocol("any")
PAGE = mmap.PAGESIZE
_MAX_CAPS = 64


@pytest.mark.vc_spec("region.info-consistent")
def test_region_info_consistent(any_device, profile, region):
    """Flags are known bits, MMAP implies READ/WRITE and a page-aligned offset, and no region overlaps."""
    info = any_device.region_info(region.index)
    name = f"region {region.name}"
    expect(info.index == region.index, "region.info-consistent",
           f"{name}: info reports index {info.index}", any_device)
    expect(not int(info.flags) & ~0xF, "region.info-consistent",
           f"{name}: unknown flag bits {int(info.flags):#x}", any_device)
    if info.mmappable:
        expect(bool(info.flags & (RegionFlag.READ | RegionFlag.WRITE)), "region.info-consistent",
               f"{name}: MMAP without READ or WRITE", any_device)
        expect(info.offset % PAGE == 0, "region.info-consistent",
               f"{name}: MMAP region at unaligned fd offset {info.offset:#x}", any_device)
    if not info.size:
        return
    for other in range(any_device.info().num_regions):
        if other == region.index:
            continue
        code, peer = any_device.try_region_info(other)
        if code or not peer.size:
            continue
        overlap = info.offset < peer.offset + peer.size and peer.offset < info.offset + info.size
        expect(not overlap, "region.info-consistent",
               f"{name} [{info.offset:#x}, +{info.size:#x}) overlaps region {other} "
               f"[{peer.offset:#x}, +{peer.size:#x}) in the device fd", any_device)


@pytest.mark.vc_spec("region.cap-chain-well-formed")
def test_region_cap_chain_well_formed(any_device, profile, region):
    """cap_offset and each next lie past the struct and inside argsz; the chain ends without a loop."""
    info = any_device.region_info(region.index)
    if not info.flags & RegionFlag.CAPS:
        return
    raw, argsz, rule = info.raw, info.argsz, "region.cap-chain-well-formed"
    offset = int.from_bytes(raw[12:16], "little")
    seen = []
    while offset:
        expect(offset not in seen, rule, f"region {region.name}: capability chain loops back to "
                                         f"{offset:#x} (chain {[hex(o) for o in seen]})", any_device)
        expect(len(seen) < _MAX_CAPS, rule, f"region {region.name}: more than {_MAX_CAPS} caps", any_device)
        expect(32 <= offset and offset + 8 <= min(argsz, len(raw)), rule,
               f"region {region.name}: capability at {offset:#x} outside [32, argsz {argsz})", any_device)
        seen.append(offset)
        cap_id = int.from_bytes(raw[offset:offset + 2], "little")
        if cap_id == RegionCap.SPARSE_MMAP:
            areas = int.from_bytes(raw[offset + 8:offset + 12], "little")
            expect(offset + 16 + 16 * areas <= argsz, rule,
                   f"region {region.name}: {areas} sparse areas at {offset:#x} run past argsz {argsz}",
                   any_device)
        offset = int.from_bytes(raw[offset + 4:offset + 8], "little")


@pytest.mark.vc_spec("region.sparse-areas-valid")
def test_region_sparse_areas_valid(any_device, profile, region):
    """Sparse-mmap areas: page-aligned, non-empty, inside the region, only on an MMAP region."""
    info = any_device.region_info(region.index)
    if info.sparse_areas is None:
        return
    expect(info.mmappable, "region.sparse-areas-valid",
           f"region {region.name} has sparse-mmap areas but no MMAP flag", any_device)
    for off, size in info.sparse_areas:
        expect(off % PAGE == 0 and size % PAGE == 0 and size > 0 and off + size <= info.size,
               "region.sparse-areas-valid", f"region {region.name}: sparse area ({off:#x}, {size:#x}) "
               f"is not page-aligned and inside {info.size:#x} bytes", any_device)


@pytest.mark.vc_spec("region.matches-profile")
def test_region_matches_profile(any_device, profile, region):
    """Size and MMAP as regions.<name>.size / .mmap declare."""
    info = any_device.region_info(region.index)
    if region.size is not None:
        expect(info.size == region.size, "region.matches-profile",
               f"region {region.name} is {info.size:#x} bytes, {profile.path} declares {region.size:#x}",
               any_device)
    if region.mmap is not None:
        expect(info.mmappable == region.mmap, "region.matches-profile",
               f"region {region.name} MMAP flag is {info.mmappable}, {profile.path} declares {region.mmap}",
               any_device)
