"""ctypes mirrors of the linux/vfio.h (6.12) structs, C names kept, native alignment.

Each struct quotes its C layout; `tests/test_uapi_header.py` checks every size and
offset against the installed headers with gcc.
"""
from __future__ import annotations

import ctypes
from ctypes import c_int32, c_uint16, c_uint32, c_uint64
from typing import Self

__all__ = [
    "VfioStruct", "vfio_device_info", "vfio_region_info", "vfio_info_cap_header",
    "vfio_region_sparse_mmap_area", "vfio_region_info_cap_sparse_mmap_hdr",
    "vfio_region_info_cap_type", "vfio_irq_info", "vfio_irq_set", "vfio_device_feature",
    "vfio_device_feature_migration", "vfio_device_feature_mig_state",
    "vfio_device_feature_mig_data_size", "vfio_device_feature_dma_logging_range",
    "vfio_device_feature_dma_logging_control", "vfio_device_feature_dma_logging_report",
    "vfio_precopy_info", "vfio_device_migration_info", "vfio_group_status",
    "vfio_iommu_type1_info", "vfio_iommu_type1_dma_map", "vfio_iommu_type1_dma_unmap",
    "vfio_device_bind_iommufd", "vfio_device_attach_iommufd_pt",
    "vfio_device_detach_iommufd_pt", "iommu_ioas_alloc", "iommu_destroy", "STRUCTS",
]


class VfioStruct(ctypes.Structure):
    """Base: byte round trips and a readable repr."""

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, offset: int = 0) -> Self:
        """Decode from `data[offset:]` (copies; short input raises ValueError)."""
        size = ctypes.sizeof(cls)
        if len(data) - offset < size:
            raise ValueError(f"{cls.__name__} needs {size} bytes, got {len(data) - offset}")
        return cls.from_buffer_copy(bytes(data[offset:offset + size]))

    def to_bytes(self) -> bytes:
        return bytes(self)

    def __len__(self) -> int:
        return ctypes.sizeof(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n, *_ in self._fields_)
        return f"{type(self).__name__}({fields})"


class vfio_device_info(VfioStruct):
    """struct vfio_device_info { u32 argsz, flags, num_regions, num_irqs, cap_offset, pad; } (24)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("num_regions", c_uint32),
                ("num_irqs", c_uint32), ("cap_offset", c_uint32), ("pad", c_uint32)]


class vfio_region_info(VfioStruct):
    """struct vfio_region_info { u32 argsz, flags, index, cap_offset; u64 size, offset; } (32)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("index", c_uint32),
                ("cap_offset", c_uint32), ("size", c_uint64), ("offset", c_uint64)]


class vfio_info_cap_header(VfioStruct):
    """struct vfio_info_cap_header { u16 id, version; u32 next; } (8)."""

    _fields_ = [("id", c_uint16), ("version", c_uint16), ("next", c_uint32)]


class vfio_region_sparse_mmap_area(VfioStruct):
    """struct vfio_region_sparse_mmap_area { u64 offset, size; } (16)."""

    _fields_ = [("offset", c_uint64), ("size", c_uint64)]


class vfio_region_info_cap_sparse_mmap_hdr(VfioStruct):
    """struct vfio_region_info_cap_sparse_mmap without areas[]: header, u32 nr_areas, reserved (16)."""

    _fields_ = [("header", vfio_info_cap_header), ("nr_areas", c_uint32),
                ("reserved", c_uint32)]


class vfio_region_info_cap_type(VfioStruct):
    """struct vfio_region_info_cap_type { header; u32 type, subtype; } (16)."""

    _fields_ = [("header", vfio_info_cap_header), ("type", c_uint32), ("subtype", c_uint32)]


class vfio_irq_info(VfioStruct):
    """struct vfio_irq_info { u32 argsz, flags, index, count; } (16)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("index", c_uint32),
                ("count", c_uint32)]


class vfio_irq_set(VfioStruct):
    """struct vfio_irq_set { u32 argsz, flags, index, start, count; u8 data[]; } (20 + data)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("index", c_uint32),
                ("start", c_uint32), ("count", c_uint32)]


class vfio_device_feature(VfioStruct):
    """struct vfio_device_feature { u32 argsz, flags; u8 data[]; } (8 + payload)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32)]


class vfio_device_feature_migration(VfioStruct):
    """struct vfio_device_feature_migration { u64 flags; } (8)."""

    _fields_ = [("flags", c_uint64)]


class vfio_device_feature_mig_state(VfioStruct):
    """struct vfio_device_feature_mig_state { u32 device_state; s32 data_fd; } (8)."""

    _fields_ = [("device_state", c_uint32), ("data_fd", c_int32)]


class vfio_device_feature_mig_data_size(VfioStruct):
    """struct vfio_device_feature_mig_data_size { u64 stop_copy_length; } (8)."""

    _fields_ = [("stop_copy_length", c_uint64)]


class vfio_device_feature_dma_logging_range(VfioStruct):
    """struct vfio_device_feature_dma_logging_range { u64 iova, length; } (16)."""

    _fields_ = [("iova", c_uint64), ("length", c_uint64)]


class vfio_device_feature_dma_logging_control(VfioStruct):
    """struct vfio_device_feature_dma_logging_control { u64 page_size; u32 num_ranges, __reserved; u64 ranges; } (24)."""

    _fields_ = [("page_size", c_uint64), ("num_ranges", c_uint32), ("__reserved", c_uint32),
                ("ranges", c_uint64)]


class vfio_device_feature_dma_logging_report(VfioStruct):
    """struct vfio_device_feature_dma_logging_report { u64 iova, length, page_size, bitmap; } (32)."""

    _fields_ = [("iova", c_uint64), ("length", c_uint64), ("page_size", c_uint64),
                ("bitmap", c_uint64)]


class vfio_precopy_info(VfioStruct):
    """struct vfio_precopy_info { u32 argsz, flags; u64 initial_bytes, dirty_bytes; } (24)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("initial_bytes", c_uint64),
                ("dirty_bytes", c_uint64)]


class vfio_device_migration_info(VfioStruct):
    """Legacy v1: struct vfio_device_migration_info { u32 device_state, reserved; u64 pending_bytes, data_offset, data_size; } (32)."""

    _fields_ = [("device_state", c_uint32), ("reserved", c_uint32),
                ("pending_bytes", c_uint64), ("data_offset", c_uint64), ("data_size", c_uint64)]


class vfio_group_status(VfioStruct):
    """struct vfio_group_status { u32 argsz, flags; } (8)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32)]


class vfio_iommu_type1_info(VfioStruct):
    """struct vfio_iommu_type1_info { u32 argsz, flags; u64 iova_pgsizes; u32 cap_offset, pad; } (24)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("iova_pgsizes", c_uint64),
                ("cap_offset", c_uint32), ("pad", c_uint32)]


class vfio_iommu_type1_dma_map(VfioStruct):
    """struct vfio_iommu_type1_dma_map { u32 argsz, flags; u64 vaddr, iova, size; } (32)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("vaddr", c_uint64),
                ("iova", c_uint64), ("size", c_uint64)]


class vfio_iommu_type1_dma_unmap(VfioStruct):
    """struct vfio_iommu_type1_dma_unmap { u32 argsz, flags; u64 iova, size; u8 data[]; } (24)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("iova", c_uint64),
                ("size", c_uint64)]


class vfio_device_bind_iommufd(VfioStruct):
    """struct vfio_device_bind_iommufd { u32 argsz, flags; s32 iommufd; u32 out_devid; } (16 in 6.12)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("iommufd", c_int32),
                ("out_devid", c_uint32)]


class vfio_device_attach_iommufd_pt(VfioStruct):
    """struct vfio_device_attach_iommufd_pt { u32 argsz, flags, pt_id; } (12 in 6.12)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32), ("pt_id", c_uint32)]


class vfio_device_detach_iommufd_pt(VfioStruct):
    """struct vfio_device_detach_iommufd_pt { u32 argsz, flags; } (8 in 6.12)."""

    _fields_ = [("argsz", c_uint32), ("flags", c_uint32)]


class iommu_ioas_alloc(VfioStruct):
    """struct iommu_ioas_alloc { u32 size, flags, out_ioas_id; } (12)."""

    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("out_ioas_id", c_uint32)]


class iommu_destroy(VfioStruct):
    """struct iommu_destroy { u32 size, id; } (8)."""

    _fields_ = [("size", c_uint32), ("id", c_uint32)]


#: Every struct that has a C counterpart of the same name, with its C header
#: (sparse-mmap is checked through its full C name and flexible array separately).
STRUCTS: dict[str, tuple[type[VfioStruct], str]] = {
    cls.__name__: (cls, "linux/iommufd.h" if cls.__name__.startswith("iommu_") else "linux/vfio.h")
    for cls in (
        vfio_device_info, vfio_region_info, vfio_info_cap_header, vfio_region_sparse_mmap_area,
        vfio_region_info_cap_type, vfio_irq_info, vfio_irq_set, vfio_device_feature,
        vfio_device_feature_migration, vfio_device_feature_mig_state,
        vfio_device_feature_mig_data_size, vfio_device_feature_dma_logging_range,
        vfio_device_feature_dma_logging_control, vfio_device_feature_dma_logging_report,
        vfio_precopy_info, vfio_device_migration_info, vfio_group_status,
        vfio_iommu_type1_info, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap,
        vfio_device_bind_iommufd, vfio_device_attach_iommufd_pt, vfio_device_detach_iommufd_pt,
        iommu_ioas_alloc, iommu_destroy,
    )
}
