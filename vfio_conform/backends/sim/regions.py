"""Sim device regions: vfio-pci-like layout, each region backed by its own memfd (real mmap)."""
from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import random
from typing import Any, Mapping

from ...uapi import structs as st
from ...uapi.enums import PCI_NUM_REGIONS, PciRegion, RegionCap, RegionFlag
from ...base.errors import shown
from .faults import ActiveFaults
from .faults_regions import bent_read, bent_write, info_fields

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
    """

    index: int
    size: int = 0
    flags: RegionFlag = RegionFlag(0)
    sparse: tuple[tuple[int, int], ...] | None = None
    type: tuple[int, int] | None = None
    migrate: bool | None = None

    @property
    def migrates(self) -> bool:
        if self.migrate is not None:
            return self.migrate
        return self.size > 0 and bool(self.flags & RegionFlag.WRITE) and self.index != PciRegion.CONFIG

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RegionSpec":
        """Parse `{index, size, flags: [READ, WRITE, MMAP] | int, sparse: [[off, size]...], type: [t, s], migrate}`."""
        known = {"index", "size", "flags", "sparse", "type", "migrate"}
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
        spec = cls(int(data["index"]), size, RegionFlag(int(flags)),
                   tuple((int(o), int(s)) for o, s in sparse) if sparse is not None else None,
                   (int(rtype[0]), int(rtype[1])) if rtype is not None else None, data.get("migrate"))
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


class Region:
    """A region's contents in a memfd: pread/pwrite/mmap with vfio-pci's bounds rules."""

    def __init__(self, spec: RegionSpec, label: str, rng: random.Random):
        self.spec = spec
        self.label = label
        self.faults = ActiveFaults()         # the device's knobs, set by SimDevice
        self.fd = -1
        if spec.size:
            self.fd = os.memfd_create(f"vfio-sim-{label}-r{spec.index}", os.MFD_CLOEXEC)
            os.ftruncate(self.fd, spec.size)
            os.pwrite(self.fd, self._initial(rng), 0)

    def _initial(self, rng: random.Random) -> bytes:
        if self.spec.index == PciRegion.CONFIG:
            data = bytearray(self.spec.size)
            data[0:4] = VENDOR_ID.to_bytes(2, "little") + DEVICE_ID.to_bytes(2, "little")
            data[8:12] = bytes([1, 0, 0x80, 0xFF])     # revision 1, class ff/80 (unassigned)
            return bytes(data[:self.spec.size])
        return rng.randbytes(self.spec.size)

    @property
    def offset(self) -> int:
        return self.spec.index << OFFSET_SHIFT

    def info_fields(self, base: int) -> tuple[RegionFlag, int, int, bytes]:
        """(flags, size, offset, caps at `base`) as GET_REGION_INFO reports them (knobs may lie)."""
        return info_fields(self, base)

    def _check(self, off: int, size: int, need: RegionFlag, what: str) -> int:
        """The byte count the access transfers, by vfio-pci's bounds rules (OSError if it fails).

        An access starting at or past the end fails (EINVAL). One crossing the end fails for
        CONFIG (vfio_pci_config_rw: EFAULT) and is clamped to the bytes inside for the other
        regions (vfio_pci_bar_rw: a short count), both of which POSIX and the uAPI allow.
        """
        if not self.spec.size or not self.spec.flags & need:
            raise oserror(errno.EINVAL, f"{what}: region {self.spec.index} does not allow it")
        if off + size == self.spec.size and size > 0 and self.faults.fire("last_byte_fails"):
            raise oserror(errno.EINVAL, f"{what}: last byte of region {self.spec.index}")
        if size in (2, 4, 8) and off % size and self.faults.fire("unaligned_fails"):
            raise oserror(errno.EINVAL, f"{what}: unaligned {size}-byte access at {off:#x}")
        if size == 8 and self.faults.fire("qword_fails"):
            raise oserror(errno.EINVAL, f"{what}: 8-byte access")
        leaves = f"{what}: [{off:#x}, +{size:#x}) leaves region {self.spec.index} ({self.spec.size:#x} bytes)"
        if off >= self.spec.size:
            raise oserror(errno.EINVAL, leaves)
        if off + size > self.spec.size:
            if self.spec.index == PciRegion.CONFIG:
                raise oserror(errno.EFAULT, leaves)
            return self.spec.size - off
        return size

    def read(self, off: int, size: int) -> bytes:
        bent = bent_read(self, off, size)
        if bent is not None:
            return bent
        return os.pread(self.fd, self._check(off, size, RegionFlag.READ, "pread"), off)

    def write(self, off: int, data: bytes) -> int:
        inside = self._check(off, len(data), RegionFlag.WRITE, "pwrite")
        written = os.pwrite(self.fd, data[:inside], off)
        return bent_write(self, off, data, written)

    def mmap(self, off: int, length: int, writable: bool) -> mmap.mmap:
        """MAP_SHARED view of the memfd, only inside one sparse area (or the MMAP region), page-aligned."""
        spec = self.spec
        what = f"mmap(region {spec.index}, {off:#x}, {length:#x})"
        if not spec.flags & RegionFlag.MMAP or not spec.size or length <= 0 or off % PAGE:
            raise oserror(errno.EINVAL, what)
        if writable and not spec.flags & RegionFlag.WRITE:
            raise oserror(errno.EINVAL, f"{what}: region is read-only")
        areas = spec.sparse if spec.sparse is not None else ((0, spec.size),)
        inside = any(a_off <= off and off + length <= a_off + a_size for a_off, a_size in areas)
        past_end = not inside and off + length > spec.size and self.faults.fire("mmap_past_end")
        if not inside and not past_end:
            raise oserror(errno.EINVAL, f"{what}: not inside an mmappable area {list(areas)}")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        if past_end or self.faults.fire("mmap_incoherent"):   # a private snapshot, not the region
            copy = mmap.mmap(-1, length, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            copy.write(os.pread(self.fd, max(0, min(length, spec.size - off)), off))
            return copy
        return mmap.mmap(self.fd, length, flags=mmap.MAP_SHARED, prot=prot, offset=off)

    def snapshot(self) -> bytes:
        return os.pread(self.fd, self.spec.size, 0) if self.spec.size else b""

    def load(self, data: bytes) -> None:
        if self.spec.size:
            os.pwrite(self.fd, data, 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
