"""The kernel backend: real VFIO devices found in sysfs and opened through /dev/vfio or iommufd."""
from __future__ import annotations

import os
from pathlib import Path

from ...base.errors import ConfigError
from .holdings import note_opened
from .open_paths import DeviceOpenError, OpenedDevice, open_cdev, open_group, open_noiommu
from .sysfs import FIND_HINT, DeviceLocation, list_devices, resolve
from .transport import KernelTransport

__all__ = ["open_kernel", "choose_path", "KernelTransport", "DeviceLocation", "DeviceOpenError",
           "OpenedDevice", "list_devices", "resolve", "open_group", "open_noiommu", "open_cdev"]

PATHS = ("auto", "group", "noiommu", "cdev")


def choose_path(loc: DeviceLocation, path: str = "auto", dev_root: str | Path = "/dev") -> str:
    """The open path to use: auto = cdev if it and /dev/iommu exist, else group, else noiommu."""
    if path not in PATHS:
        raise ConfigError(f"unknown open path {path!r} (choose one of {', '.join(PATHS)})")
    has_cdev = bool(loc.cdev_path) and os.path.exists(loc.cdev_path) \
        and os.path.exists(Path(dev_root) / "iommu")
    available = {"cdev": has_cdev, "group": bool(loc.group_path) and not loc.noiommu,
                 "noiommu": loc.noiommu}
    if path == "auto":
        for candidate in ("cdev", "group", "noiommu"):
            if available[candidate]:
                return candidate
        raise ConfigError(f"{loc.id} has no IOMMU group and no usable vfio cdev "
                          f"(cdev {loc.cdev_path or 'none'}, {Path(dev_root) / 'iommu'})",
                          hint="is it bound to a vfio driver and is the vfio module loaded?")
    if not available[path]:
        raise ConfigError(f"open path {path!r} is not available for {loc.id} (group "
                          f"{loc.group_path or 'none'}, cdev {loc.cdev_path or 'none'})",
                          hint="use path='auto' or check the kernel config (VFIO_NOIOMMU, IOMMUFD)")
    return path


def open_kernel(location_or_id: DeviceLocation | str, *, path: str = "auto", io_timeout: float = 30.0,
                sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev") -> KernelTransport:
    """Open a host VFIO device (BDF, mdev UUID, /dev/vfio/devices/vfioX or a DeviceLocation)."""
    loc = location_or_id if isinstance(location_or_id, DeviceLocation) else \
        resolve(location_or_id, sysfs_root, dev_root)
    if not loc.vfio_bound:
        raise ConfigError(f"{loc.id} is bound to {loc.driver or 'no driver'}, not to a vfio driver",
                          hint=FIND_HINT)
    kind = choose_path(loc, path, dev_root)
    if kind == "cdev":
        opened = open_cdev(loc.id, loc.cdev_path, str(Path(dev_root) / "iommu"))
    elif kind == "group":
        opened = open_group(loc.id, loc.group_path)
    else:
        opened = open_noiommu(loc.id, loc.group_path)
    note_opened(opened)
    try:
        return KernelTransport(opened, io_timeout=io_timeout, location=loc)
    except BaseException:      # nobody else holds the fds yet: close them, or they stay open
        opened.close()
        raise
