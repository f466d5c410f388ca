"""What the device interface decodes (device, region, irq, pre-copy info, SET results,
stream digests) and uAPI constants newer than the headers.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..uapi import structs as st
from ..uapi.enums import Feature, RegionCap, RegionFlag

if TYPE_CHECKING:
    from ..uapi.enums import DeviceFlag

_MAX_CAP_CHAIN = 64
#: VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (12) and VFIO_PRECOPY_INFO_REINIT: newer than the 6.12
#: headers (VFIO_PRECOPY_INFO_REINIT series, 2026; vfio-uapi.md 4.7).
PRECOPY_INFO_V2 = 12
PRECOPY_INFO_REINIT = 1 << 0
#: data_fd value the harness puts in a MIG_DEVICE_STATE request: the kernel overwrites it (-1 or an fd).
DATA_FD_SENTINEL = -2


@dataclasses.dataclass(frozen=True)
class CapHeader:
    id: int
    version: int
    offset: int
    next: int


@dataclasses.dataclass(frozen=True)
class RegionInfo:
    """Decoded vfio_region_info with its capability chain."""

    index: int
    flags: RegionFlag
    size: int
    offset: int
    argsz: int
    caps: tuple[CapHeader, ...] = ()
    sparse_areas: tuple[tuple[int, int], ...] | None = None   # (offset, size) pairs
    type: tuple[int, int] | None = None                         # (type, subtype)
    raw: bytes = b""

    @property
    def readable(self) -> bool:
        return bool(self.flags & RegionFlag.READ)

    @property
    def writable(self) -> bool:
        return bool(self.flags & RegionFlag.WRITE)

    @property
    def mmappable(self) -> bool:
        return bool(self.flags & RegionFlag.MMAP)


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    flags: DeviceFlag
    num_regions: int
    num_irqs: int
    cap_offset: int


@dataclasses.dataclass(frozen=True)
class IrqInfo:
    index: int
    flags: int
    count: int


@dataclasses.dataclass(frozen=True)
class PrecopyInfo:
    flags: int
    initial_bytes: int
    dirty_bytes: int


@dataclasses.dataclass
class StreamDigest:
    """What a drained stream looked like: total length and running digest (never the bytes themselves)."""

    length: int
    digest: str
    reads: int
    end: str            # "eof" (read returned 0) or "enomsg"
    algorithm: str = "xxh3_128"     # device/digest.py


def _feature_name(feature: int) -> str:
    try:
        return Feature(feature).name
    except ValueError:
        return str(feature)


def _decode_region(buf: bytearray, out: st.vfio_region_info) -> RegionInfo:
    """Walk the capability chain (bounded, loop- and bounds-checked by the region suites)."""
    caps: list[CapHeader] = []
    sparse, rtype = None, None
    flags = RegionFlag(out.flags)
    offset = out.cap_offset if flags & RegionFlag.CAPS else 0
    seen = set()
    while offset and offset not in seen and len(caps) < _MAX_CAP_CHAIN and offset + 8 <= len(buf):
        seen.add(offset)
        hdr = st.vfio_info_cap_header.from_bytes(buf, offset)
        caps.append(CapHeader(hdr.id, hdr.version, offset, hdr.next))
        if hdr.id == RegionCap.SPARSE_MMAP and offset + 16 <= len(buf):
            sm = st.vfio_region_info_cap_sparse_mmap_hdr.from_bytes(buf, offset)
            areas = []
            for i in range(min(sm.nr_areas, (len(buf) - offset - 16) // 16)):
                area = st.vfio_region_sparse_mmap_area.from_bytes(buf, offset + 16 + 16 * i)
                areas.append((area.offset, area.size))
            sparse = tuple(areas)
        elif hdr.id == RegionCap.TYPE and offset + 16 <= len(buf):
            t = st.vfio_region_info_cap_type.from_bytes(buf, offset)
            rtype = (t.type, t.subtype)
        offset = hdr.next
    return RegionInfo(out.index, flags, out.size, out.offset, out.argsz, tuple(caps), sparse, rtype,
                      bytes(buf))
