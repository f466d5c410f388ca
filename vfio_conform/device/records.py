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
    from .datafd import DataFd

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


class SetResult:
    """Outcome of a MIG_DEVICE_STATE SET, exactly as the kernel left it.

    errno: 0 on success. written_state / raw_fd: the device_state and data_fd words the kernel wrote
    back (raw_fd is DATA_FD_SENTINEL if it wrote nothing). data_fd: a DataFd for any raw_fd >= 0,
    also when errno != 0 (so a check can see it; the Device closes it at the latest on close()).
    A plain slotted class, not a dataclass: one is built per SET, and building it must stay cheap.
    """

    __slots__ = ("errno", "requested", "written_state", "data_fd", "raw_fd")

    def __init__(self, errno: int, requested: int, written_state: int, data_fd: "DataFd | None",
                 raw_fd: int = -1):
        self.errno, self.requested, self.written_state = errno, requested, written_state
        self.data_fd, self.raw_fd = data_fd, raw_fd

    @property
    def ok(self) -> bool:
        return self.errno == 0

    def _key(self) -> tuple[object, ...]:
        return (self.errno, self.requested, self.written_state, self.data_fd, self.raw_fd)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SetResult) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]   # mutable: not hashable

    def __repr__(self) -> str:
        return (f"SetResult(errno={self.errno!r}, requested={self.requested!r}, "
                f"written_state={self.written_state!r}, data_fd={self.data_fd!r}, raw_fd={self.raw_fd!r})")


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
