"""The VFIO/iommufd ioctl table: (name, number, fd kind, argument) rows; numbers computed once."""
from __future__ import annotations

import dataclasses
import platform

VFIO_TYPE = ord(";")
VFIO_BASE = 100
IOMMUFD_CMD_BASE = 0x80

#: Architectures whose _IOC_NONE is 1 with a 29-bit direction shift (asm-generic differs).
_IOC_NONE_ONE = ("ppc", "powerpc", "mips", "sparc", "alpha")


def ioc_none_bits(machine: str | None = None) -> int:
    """The `_IOC_NONE << _IOC_DIRSHIFT` term of `_IO()` for an architecture (uname -m)."""
    machine = (machine or platform.machine()).lower()
    return 1 << 29 if machine.startswith(_IOC_NONE_ONE) else 0


def ioctl_number(nr: int, machine: str | None = None) -> int:
    """`_IO(';', nr)` for the given architecture (default: this one)."""
    return ioc_none_bits(machine) | (VFIO_TYPE << 8) | nr


@dataclasses.dataclass(frozen=True)
class Ioctl:
    """One ioctl: C name, `nr` inside _IO(';', nr), which fd it goes to, how the arg is passed."""

    name: str
    nr: int
    fd: str          # "container", "group", "device", "data", "iommufd"
    arg: str         # "none", "value", "struct", "string", "int-pointer"

    @property
    def number(self) -> int:
        return ioctl_number(self.nr)


def _vfio(name: str, n: int, fd: str, arg: str) -> Ioctl:
    return Ioctl(name, VFIO_BASE + n, fd, arg)


_ROWS = [
    _vfio("VFIO_GET_API_VERSION", 0, "container", "none"),
    _vfio("VFIO_CHECK_EXTENSION", 1, "container", "value"),
    _vfio("VFIO_SET_IOMMU", 2, "container", "value"),
    _vfio("VFIO_GROUP_GET_STATUS", 3, "group", "struct"),
    _vfio("VFIO_GROUP_SET_CONTAINER", 4, "group", "int-pointer"),
    _vfio("VFIO_GROUP_UNSET_CONTAINER", 5, "group", "none"),
    _vfio("VFIO_GROUP_GET_DEVICE_FD", 6, "group", "string"),
    _vfio("VFIO_DEVICE_GET_INFO", 7, "device", "struct"),
    _vfio("VFIO_DEVICE_GET_REGION_INFO", 8, "device", "struct"),
    _vfio("VFIO_DEVICE_GET_IRQ_INFO", 9, "device", "struct"),
    _vfio("VFIO_DEVICE_SET_IRQS", 10, "device", "struct"),
    _vfio("VFIO_DEVICE_RESET", 11, "device", "none"),
    _vfio("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", 12, "device", "struct"),
    _vfio("VFIO_DEVICE_PCI_HOT_RESET", 13, "device", "struct"),
    _vfio("VFIO_DEVICE_QUERY_GFX_PLANE", 14, "device", "struct"),
    _vfio("VFIO_DEVICE_GET_GFX_DMABUF", 15, "device", "struct"),
    _vfio("VFIO_DEVICE_IOEVENTFD", 16, "device", "struct"),
    _vfio("VFIO_DEVICE_FEATURE", 17, "device", "struct"),
    _vfio("VFIO_DEVICE_BIND_IOMMUFD", 18, "device", "struct"),
    _vfio("VFIO_DEVICE_ATTACH_IOMMUFD_PT", 19, "device", "struct"),
    _vfio("VFIO_DEVICE_DETACH_IOMMUFD_PT", 20, "device", "struct"),
    _vfio("VFIO_MIG_GET_PRECOPY_INFO", 21, "data", "struct"),
    _vfio("VFIO_IOMMU_GET_INFO", 12, "container", "struct"),
    _vfio("VFIO_IOMMU_MAP_DMA", 13, "container", "struct"),
    _vfio("VFIO_IOMMU_UNMAP_DMA", 14, "container", "struct"),
    _vfio("VFIO_IOMMU_DIRTY_PAGES", 17, "container", "struct"),
    Ioctl("IOMMU_DESTROY", IOMMUFD_CMD_BASE + 0, "iommufd", "struct"),
    Ioctl("IOMMU_IOAS_ALLOC", IOMMUFD_CMD_BASE + 1, "iommufd", "struct"),
    Ioctl("IOMMU_IOAS_MAP", IOMMUFD_CMD_BASE + 5, "iommufd", "struct"),
    Ioctl("IOMMU_IOAS_UNMAP", IOMMUFD_CMD_BASE + 6, "iommufd", "struct"),
]

#: name -> Ioctl, e.g. IOCTLS["VFIO_DEVICE_FEATURE"].number == 0x3B75 on x86_64.
IOCTLS: dict[str, Ioctl] = {row.name: row for row in _ROWS}


def number(name: str) -> int:
    """Request number of the named ioctl on this architecture."""
    return IOCTLS[name].number
