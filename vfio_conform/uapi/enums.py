"""Constant families of linux/vfio.h (6.12) as enums: names, not numbers, in every message."""
from __future__ import annotations

import enum


class MigState(enum.IntEnum):
    """enum vfio_device_mig_state."""

    ERROR = 0
    STOP = 1
    RUNNING = 2
    STOP_COPY = 3
    RESUMING = 4
    RUNNING_P2P = 5
    PRE_COPY = 6
    PRE_COPY_P2P = 7

    @classmethod
    def label(cls, value: int) -> str:
        """Name for any integer, including out-of-range requests (e.g. 'NR(8)')."""
        try:
            return cls(value).name
        except ValueError:
            return f"INVALID({value})"


#: First value that is not a state (VFIO_DEVICE_STATE_NR sentinel).
MIG_STATE_NR = 8


class MigFlag(enum.IntFlag):
    """vfio_device_feature_migration.flags."""

    STOP_COPY = 1 << 0
    P2P = 1 << 1
    PRE_COPY = 1 << 2


class DeviceFlag(enum.IntFlag):
    """vfio_device_info.flags."""

    RESET = 1 << 0
    PCI = 1 << 1
    PLATFORM = 1 << 2
    AMBA = 1 << 3
    CCW = 1 << 4
    AP = 1 << 5
    FSL_MC = 1 << 6
    CAPS = 1 << 7
    CDX = 1 << 8


class RegionFlag(enum.IntFlag):
    """vfio_region_info.flags."""

    READ = 1 << 0
    WRITE = 1 << 1
    MMAP = 1 << 2
    CAPS = 1 << 3


class RegionCap(enum.IntEnum):
    """Region capability ids (vfio_info_cap_header.id)."""

    SPARSE_MMAP = 1
    TYPE = 2
    MSIX_MAPPABLE = 3


class RegionType(enum.IntEnum):
    """Region type in the TYPE capability."""

    GFX = 1
    CCW = 2
    MIGRATION_DEPRECATED = 3


#: Subtype of the legacy v1 migration region.
REGION_SUBTYPE_MIGRATION_DEPRECATED = 1


class PciRegion(enum.IntEnum):
    """Fixed vfio-pci region indexes."""

    BAR0 = 0
    BAR1 = 1
    BAR2 = 2
    BAR3 = 3
    BAR4 = 4
    BAR5 = 5
    ROM = 6
    CONFIG = 7
    VGA = 8


#: VFIO_PCI_NUM_REGIONS: device-specific regions start here.
PCI_NUM_REGIONS = 9


class IrqFlag(enum.IntFlag):
    """vfio_irq_info.flags."""

    EVENTFD = 1 << 0
    MASKABLE = 1 << 1
    AUTOMASKED = 1 << 2
    NORESIZE = 1 << 3


class Feature(enum.IntEnum):
    """VFIO_DEVICE_FEATURE indexes (low 16 bits of vfio_device_feature.flags)."""

    PCI_VF_TOKEN = 0
    MIGRATION = 1
    MIG_DEVICE_STATE = 2
    LOW_POWER_ENTRY = 3
    LOW_POWER_ENTRY_WITH_WAKEUP = 4
    LOW_POWER_EXIT = 5
    DMA_LOGGING_START = 6
    DMA_LOGGING_STOP = 7
    DMA_LOGGING_REPORT = 8
    MIG_DATA_SIZE = 9


class FeatureOp(enum.IntFlag):
    """Operation bits of vfio_device_feature.flags."""

    GET = 1 << 16
    SET = 1 << 17
    PROBE = 1 << 18


FEATURE_MASK = 0xFFFF


class Extension(enum.IntEnum):
    """VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU ids."""

    TYPE1_IOMMU = 1
    SPAPR_TCE_IOMMU = 2
    TYPE1v2_IOMMU = 3
    DMA_CC_IOMMU = 4
    EEH = 5
    TYPE1_NESTING_IOMMU = 6
    SPAPR_TCE_v2_IOMMU = 7
    NOIOMMU_IOMMU = 8
    UNMAP_ALL = 9
    UPDATE_VADDR = 10


class GroupFlag(enum.IntFlag):
    """vfio_group_status.flags."""

    VIABLE = 1 << 0
    CONTAINER_SET = 1 << 1


class DmaMapFlag(enum.IntFlag):
    """vfio_iommu_type1_dma_map.flags."""

    READ = 1 << 0
    WRITE = 1 << 1
    VADDR = 1 << 2


class V1State(enum.IntFlag):
    """Legacy v1 vfio_device_migration_info.device_state bits."""

    RUNNING = 1 << 0
    SAVING = 1 << 1
    RESUMING = 1 << 2


V1_STATE_MASK = 0x7

#: Version of the vfio API (VFIO_GET_API_VERSION).
VFIO_API_VERSION = 0
