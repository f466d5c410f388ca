"""Sim device region layout: what each region is (size, flags, sparse areas, TYPE cap), vfio-pci-like,
and the offset encoding of the device fd. The regions themselves (memfd-backed) are regions.py."""
from __future__ import annotations

import dataclasses
import mmap
import os
from typing import Any, Mapping

from ...uapi import structs as st
from ...uapi.enums import PCI_NUM_REGIONS, PciRegion, RegionCap, RegionFlag
from ...base.errors import shown

#: Region offset inside the device fd = index << OFFSET_SHIFT (VFIO_PCI_OFFSET_SHIFT).
OFFSET_SHIFT = 40
#: The largest sim region, 1 GiB: its contents live in a memfd filled from memory at open
#: (vfio-pci's offset encoding would allow 1 << OFFSET_SHIFT; 2**64 and beyond are typos).
MAX_REGION_SIZE = 1 << 30
OFFSET_MASK = (1 << OFFSET_SHIFT) - 1
PAGE = mmap.PAGESIZE
#: Fake PCI ids written at config offset 0 (Red Hat / QEMU vendor, made-up device).
VENDOR_ID, DEVICE_ID = 0x1B36, 0x10F0
_RW = RegionFlag.READ | RegionFlag.WRITE


def oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


@dataclasses.dataclass(frozen=True)
class RegionSpec:
    """One region: size, READ/WRITE/MMAP flags, optional sparse mmap areas and TYPE cap.

    migrate: its contents are part of the migration stream (default: sized, writable, not CONFIG).
    widths: the access sizes pread/pwrite answer (None: any); another size fails with EINVAL, as a
        register block that decodes only some access widths (a profile grants only those).
    """

    index: int
    size: int = 0
    flags: RegionFlag = RegionFlag(0)
    sparse: tuple[tuple[int, int], ...] | None = None
    type: tuple[int, int] | None = None
    migrate: bool | None = None
    widths: tuple[int, ...] | None = None

    @property
    def migrates(self) -> bool:
        if self.migrate is not None:
            return self.migrate
        return self.size > 0 and bool(self.flags & RegionFlag.WRITE) and self.index != PciRegion.CONFIG

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RegionSpec":
        """Parse `{index, size, flags: [READ, WRITE, MMAP] | int, sparse: [[off, size]...], type: [t, s],
        migrate, widths: [1, 2, 4, 8]}`."""
        known = {"index", "size", "flags", "sparse", "type", "migrate", "widths"}
        unknown = set(data) - known
        if unknown or "index" not in data:
            raise ValueError(f"sim region {dict(data)!r}: needs 'index'; keys are {sorted(known)}")
        flags = data.get("flags", 0)
        if isinstance(flags, (list, tuple)):
            flags = sum(int(RegionFlag[name]) for name in flags)
        sparse = data.get("sparse")
        rtype = data.get("type")
        size = data.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_REGION_SIZE:
            raise ValueError(f"sim region {shown(data.get('index'))}: size {shown(size)} is not a byte "
                             f"count up to {MAX_REGION_SIZE >> 20} MiB (the sim keeps region contents "
                             f"in memory; a region's window is {1 << OFFSET_SHIFT >> 40} TiB)")
        widths = data.get("widths")
        if widths is not None and (not isinstance(widths, (list, tuple)) or not widths
                                   or any(w not in (1, 2, 4, 8) or isinstance(w, bool) for w in widths)):
            raise ValueError(f"sim region {shown(data.get('index'))}: widths {shown(widths)} is not a "
                             "list of access sizes from 1, 2, 4, 8")
        spec = cls(int(data["index"]), size, RegionFlag(int(flags)),
                   tuple((int(o), int(s)) for o, s in sparse) if sparse is not None else None,
                   (int(rtype[0]), int(rtype[1])) if rtype is not None else None, data.get("migrate"),
                   tuple(int(w) for w in widths) if widths is not None else None)
        for off, size in spec.sparse or ():
            if off % PAGE or size % PAGE or off + size > spec.size:
                raise ValueError(f"sim region {spec.index}: sparse area ({off}, {size}) is not "
                                 f"page-aligned inside {spec.size} bytes")
        return spec

    def caps(self, base: int) -> bytes:
        """The capability chain as it sits in the info buffer at offset `base`."""
        caps: list[bytearray] = []
        if self.sparse is not None:
            cap = bytearray(bytes(st.vfio_region_info_cap_sparse_mmap_hdr(nr_areas=len(self.sparse))))
            for off, size in self.sparse:
                cap += bytes(st.vfio_region_sparse_mmap_area(offset=off, size=size))
            caps.append(_with_header(cap, RegionCap.SPARSE_MMAP))
        if self.type is not None:
            cap = bytearray(bytes(st.vfio_region_info_cap_type(type=self.type[0], subtype=self.type[1])))
            caps.append(_with_header(cap, RegionCap.TYPE))
        out, pos = bytearray(), base
        for i, cap in enumerate(caps):
            nxt = pos + len(cap) if i + 1 < len(caps) else 0
            cap[4:8] = nxt.to_bytes(4, "little")
            out += cap
            pos += len(cap)
        return bytes(out)


def _with_header(cap: bytearray, cap_id: int) -> bytearray:
    cap[:8] = bytes(st.vfio_info_cap_header(id=cap_id, version=1, next=0))
    return cap


def default_specs() -> list[RegionSpec]:
    """BAR0 64 KiB mmappable in two sparse areas, BAR2 4 KiB registers, CONFIG 256 bytes."""
    specs = [RegionSpec(i) for i in range(PCI_NUM_REGIONS)]
    specs[PciRegion.BAR0] = RegionSpec(PciRegion.BAR0, 64 << 10, _RW | RegionFlag.MMAP,
                                       sparse=((0, 32 << 10), (32 << 10, 32 << 10)))
    specs[PciRegion.BAR2] = RegionSpec(PciRegion.BAR2, 4 << 10, _RW)
    specs[PciRegion.CONFIG] = RegionSpec(PciRegion.CONFIG, 256, _RW)
    return specs


def build_specs(overrides: list[Mapping[str, Any]] | None) -> list[RegionSpec]:
    """Default layout with `overrides` replacing or extending by index (gaps become empty regions)."""
    specs = {spec.index: spec for spec in default_specs()}
    for data in overrides or ():
        spec = RegionSpec.from_dict(data)
        specs[spec.index] = spec
    count = max(specs) + 1
    return [specs.get(i, RegionSpec(i)) for i in range(count)]
