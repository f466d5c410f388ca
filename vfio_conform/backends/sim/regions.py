"""Sim device regions: vfio-pci-like layout, each region backed by its own memfd (real mmap)."""
from __future__ import annotations

import errno
import mmap
import os
import random

from ...uapi.enums import PciRegion, RegionFlag
from .faults import ActiveFaults
from .faults_regions import bent_read, bent_write, info_fields
from .regionspec import (DEVICE_ID, MAX_REGION_SIZE, OFFSET_MASK, OFFSET_SHIFT, PAGE, VENDOR_ID,  # noqa: F401
                         RegionSpec, _RW, _with_header, build_specs, default_specs, oserror)


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
        if self.spec.widths is not None and size not in self.spec.widths:
            raise oserror(errno.EINVAL, f"{what}: region {self.spec.index} answers only "
                                        f"{list(self.spec.widths)}-byte accesses, not {size}")
        if "width_fails" in self.faults and size == self.faults.param("width_fails", "width") \
                and self.faults.fire("width_fails"):
            raise oserror(errno.EINVAL, f"{what}: {size}-byte access")
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
