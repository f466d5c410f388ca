"""DMA dirty logging of the sim (features 6/7/8): the core's argument checks plus a tiny dirty log.

Ranges and bitmaps are user pointers (this process): read and written with ctypes, as copy_from_user
and put_user would. The device "DMAs" only when a test hook says so (`device_write`); the log keeps
dirty pages at the granule START picked and REPORT rescales them to the page size it is asked for.
"""
from __future__ import annotations

import ctypes
import errno
import mmap

from ...uapi import structs as st
from .faults import ActiveFaults
from .regions import oserror

MAX_RANGES = mmap.PAGESIZE // 16
_U64 = (1 << 64) - 1


def _pow2(value: int) -> bool:
    return value >= 4096 and not value & (value - 1)


class DmaLog:
    """Logging state: started ranges, the granule, and the dirty granule-page IOVAs not yet reported."""

    def __init__(self, faults: ActiveFaults):
        self.faults = faults
        self.maps: DmaMaps | None = None      # the device's DMA map table (set by the device)
        self.ranges: list[tuple[int, int]] | None = None
        self.page_size = 4096
        self.dirty: set[int] = set()

    @property
    def started(self) -> bool:
        return self.ranges is not None

    def start(self, ctl: st.vfio_device_feature_dma_logging_control) -> int:
        """Validate like vfio_ioctl_device_feature_logging_start; returns the granule chosen."""
        if ctl.num_ranges == 0:
            raise oserror(errno.EINVAL, "DMA_LOGGING_START with no ranges")
        if ctl.num_ranges > MAX_RANGES:
            raise oserror(errno.E2BIG, f"DMA_LOGGING_START with {ctl.num_ranges} ranges")
        if not ctl.ranges:
            raise oserror(errno.EFAULT, "DMA_LOGGING_START ranges pointer is NULL")
        raw = ctypes.string_at(ctl.ranges, 16 * ctl.num_ranges)
        ranges = [st.vfio_device_feature_dma_logging_range.from_bytes(raw, 16 * i)
                  for i in range(ctl.num_ranges)]
        checked = not self.faults.fire("dma_start_unchecked")
        spans: list[tuple[int, int]] = []
        for r in ranges:
            page = ctl.page_size or 1
            if checked and (r.iova % page or r.length % page):
                raise oserror(errno.EINVAL, f"range ({r.iova:#x}, {r.length:#x}) not {page}-aligned")
            if r.iova + r.length > _U64:
                raise oserror(errno.EOVERFLOW, f"range ({r.iova:#x}, {r.length:#x}) overflows")
            end = r.iova + r.length
            if checked and any(r.iova < e and s < end for s, e in spans):
                raise oserror(errno.EINVAL, f"range ({r.iova:#x}, {r.length:#x}) overlaps another")
            spans.append((r.iova, end))
        if self.started and not self.faults.fire("dma_start_twice_ok"):
            raise oserror(errno.EBUSY, "DMA_LOGGING_START while logging is already started")
        if self.faults.fire("dma_start_refused"):
            raise oserror(errno.EINVAL, "DMA_LOGGING_START refused (injected)")
        mapped = list(self.maps.maps.values()) if self.maps is not None else []
        if any(size < ctl.page_size for size in [e - s for s, e in spans] + mapped) \
                and self.faults.fire("dma_start_hint_refused"):
            raise oserror(errno.EINVAL, f"page_size hint {ctl.page_size} larger than a logged range or "
                          "a mapped DMA region")
        self.ranges = [(s, e - s) for s, e in spans]
        self.page_size = ctl.page_size if _pow2(ctl.page_size) else 4096
        self.dirty = set()
        if self.faults.fire("dma_start_page_size_bogus"):
            return self.page_size + self.page_size // 2
        return self.page_size

    def device_write(self, iova: int, length: int) -> None:
        """The device wrote [iova, iova + length): log every granule page of it inside a range."""
        if not self.started or length <= 0:
            return
        page = self.page_size
        first, last = iova - iova % page, iova + length - 1
        for start in range(first, last + 1, page):
            if any(s <= start < s + n for s, n in self.ranges):
                self.dirty.add(start)

    def stop(self) -> None:
        self.ranges, self.dirty = None, set()

    def report(self, rep: st.vfio_device_feature_dma_logging_report) -> None:
        """Set (only set) the bits of dirty pages in the user's bitmap, clearing them from the log."""
        if not _pow2(rep.page_size) and not self.faults.fire("dma_report_page_size_unchecked"):
            raise oserror(errno.EINVAL, f"DMA_LOGGING_REPORT page_size {rep.page_size}")
        if rep.iova + rep.length > _U64:
            raise oserror(errno.EOVERFLOW, "DMA_LOGGING_REPORT iova + length overflows")
        if not self.started and not self.faults.fire("dma_report_without_start_ok"):
            raise oserror(errno.EINVAL, "DMA_LOGGING_REPORT without DMA_LOGGING_START")
        if self.started and all(rep.iova != s for s, _ in self.ranges) \
                and self.faults.fire("dma_report_range_start_only"):
            raise oserror(errno.EOPNOTSUPP, f"DMA_LOGGING_REPORT at {rep.iova:#x}: not the start of a range")
        page = rep.page_size if _pow2(rep.page_size) else 4096
        nbits = -(-rep.length // page)
        if nbits and not rep.bitmap:
            raise oserror(errno.EFAULT, "DMA_LOGGING_REPORT bitmap pointer is NULL")
        nbytes = -(-nbits // 8)
        if nbytes and self.faults.fire("dma_report_clears_bitmap"):
            ctypes.memset(rep.bitmap, 0, ((nbytes + 7) // 8) * 8)
        granule = self.page_size
        if self.faults.fire("dma_report_rescale_wrong"):
            page = granule                   # bits at the tracking granule, whatever was asked
        end = rep.iova + rep.length
        for start in sorted(self.dirty):
            if not (rep.iova <= start < end):
                continue
            first = (start - rep.iova) // page
            last = (min(start + granule, end) - 1 - rep.iova) // page
            for bit in range(first, min(last, nbits - 1) + 1):
                cell = ctypes.c_uint8.from_address(rep.bitmap + bit // 8)
                cell.value |= 1 << (bit % 8)
            if not self.faults.fire("dma_report_keeps_log"):
                self.dirty.discard(start)


class DmaMaps:
    """The client memory the device may DMA to, as the IOMMU map table a user builds before logging
    (VFIO_IOMMU_MAP_DMA in the kernel, VFIO_USER_DMA_MAP over vfio-user): type1's checks."""

    def __init__(self, faults: ActiveFaults):
        self.faults = faults
        self.maps: dict[int, int] = {}

    def map(self, iova: int, size: int) -> None:
        if not size or iova % 4096 or size % 4096:
            raise oserror(errno.EINVAL, f"DMA map [{iova:#x}, +{size:#x}): empty or not page-aligned")
        if iova + size - 1 > _U64 and not self.faults.fire("dma_map_wrap_accepted"):
            raise oserror(errno.EINVAL, f"DMA map [{iova:#x}, +{size:#x}) wraps past 2^64")
        if any(iova < s + n and s < iova + size for s, n in self.maps.items()):
            raise oserror(errno.EEXIST, f"DMA map [{iova:#x}, +{size:#x}) overlaps a mapping")
        self.maps[iova] = size

    def unmap(self, iova: int, size: int) -> None:
        if self.maps.get(iova) != size:
            raise oserror(errno.ENOENT, f"DMA unmap [{iova:#x}, +{size:#x}): no such mapping")
        del self.maps[iova]
