"""DMA dirty logging calls (features 6/7/8) with ctypes-owned ranges and bitmaps (user pointers)."""
from __future__ import annotations

import ctypes

from ...uapi import structs as st
from ...uapi.enums import Feature, FeatureOp


def start(device, ranges: list[tuple[int, int]], page_size: int = 4096,
          num_ranges: int | None = None) -> tuple[int, int]:
    """DMA_LOGGING_START: (errno, page_size written back)."""
    arr = (st.vfio_device_feature_dma_logging_range * max(1, len(ranges)))()
    for i, (iova, length) in enumerate(ranges):
        arr[i].iova, arr[i].length = iova, length
    ctl = st.vfio_device_feature_dma_logging_control(
        page_size=page_size, num_ranges=len(ranges) if num_ranges is None else num_ranges,
        ranges=ctypes.addressof(arr))
    code, out = device.try_feature(Feature.DMA_LOGGING_START, FeatureOp.SET, bytes(ctl))
    return code, st.vfio_device_feature_dma_logging_control.from_bytes(out).page_size


def stop(device) -> int:
    return device.try_feature(Feature.DMA_LOGGING_STOP, FeatureOp.SET)[0]


def report(device, iova: int, length: int, page_size: int = 4096, fill: int = 0,
           guard: int = 8) -> tuple[int, bytes, bytes]:
    """DMA_LOGGING_REPORT into a u64-rounded bitmap pre-filled with `fill`: (errno, bitmap, guard bytes)."""
    nbits = -(-length // max(page_size, 1))
    size = max(8, -(-nbits // 64) * 8)
    buf = (ctypes.c_uint8 * (size + guard))(*([fill] * size + [0x5A] * guard))
    rep = st.vfio_device_feature_dma_logging_report(iova=iova, length=length, page_size=page_size,
                                                    bitmap=ctypes.addressof(buf))
    code, _ = device.try_feature(Feature.DMA_LOGGING_REPORT, FeatureOp.GET, bytes(rep))
    raw = bytes(buf)
    return code, raw[:size], raw[size:]
