"""Find VFIO devices in sysfs: resolve a device id to a DeviceLocation, list all of them.

Every function takes `sysfs_root` and `dev_root` so unit tests can point them at a fake
tree; nothing here opens a device node.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ...base.errors import DeviceNotFound

_BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CDEV = re.compile(r"^vfio\d+$")

FIND_HINT = (
    "list VFIO devices with 'vfio-conform devices' (mdev instances: ls /sys/bus/mdev/devices); "
    "bind a PCI device to vfio-pci with: echo vfio-pci > /sys/bus/pci/devices/BDF/driver_override; "
    "echo BDF > /sys/bus/pci/drivers/DRIVER/unbind; echo BDF > /sys/bus/pci/drivers_probe")


@dataclasses.dataclass(frozen=True)
class DeviceLocation:
    """Where a VFIO device lives: its id, driver, PCI ids or mdev type, group and cdev nodes."""

    id: str                       # canonical BDF (0000:00:03.0) or lower-case mdev UUID
    kind: str                     # "pci" | "mdev"
    driver: str | None
    vendor_id: int | None
    device_id: int | None
    mdev_type: str | None
    iommu_group: int | None
    group_path: str | None        # /dev/vfio/N or /dev/vfio/noiommu-N
    cdev_path: str | None         # /dev/vfio/devices/vfioX
    sysfs_path: str = ""

    @property
    def noiommu(self) -> bool:
        """True if the group is a no-IOMMU group (/dev/vfio/noiommu-N)."""
        return bool(self.group_path) and os.path.basename(self.group_path).startswith("noiommu-")

    @property
    def vfio_bound(self) -> bool:
        """Bound to a VFIO driver: every mdev, or a PCI device on vfio-pci or a *vfio* variant."""
        return self.kind == "mdev" or is_vfio_driver(self.driver)


def is_vfio_driver(driver: str | None) -> bool:
    """vfio-pci or a variant driver (mlx5_vfio_pci, hisi_acc_vfio_pci, ...)."""
    return bool(driver) and "vfio" in driver


def normalize_id(device_id: str, dev_root: str | Path = "/dev") -> tuple[str, str]:
    """('pci', '0000:00:03.0'), ('mdev', uuid) or ('cdev', 'vfio0'); DeviceNotFound if none fits.

    A cdev is 'vfioN' or its node DEV_ROOT/vfio/devices/vfioN; a vfioN anywhere else is refused,
    not quietly taken for the node of the same name.
    """
    text = device_id.strip()
    if m := _BDF.match(text):
        domain, bus, dev, fn = m.groups()
        return "pci", f"{(domain or '0000').lower()}:{bus.lower()}:{dev.lower()}.{fn}"
    if _UUID.match(text):
        return "mdev", text.lower()
    if _CDEV.match(text):
        return "cdev", text
    cdev_dir = os.path.join(str(dev_root), "vfio", "devices")
    if text.startswith("/") and _CDEV.match(os.path.basename(text)):
        if os.path.normpath(os.path.dirname(text)) == os.path.normpath(cdev_dir):
            return "cdev", os.path.basename(text)
        raise DeviceNotFound(f"{device_id!r} is not a VFIO device node: cdev nodes are "
                             f"{cdev_dir}/vfioN", hint=FIND_HINT)
    raise DeviceNotFound(f"{device_id!r} is not a PCI address (0000:00:03.0 or 00:03.0), an mdev UUID "
                         f"or a /dev/vfio/devices/vfioX path", hint=FIND_HINT)


def resolve(device_id: str, sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev") -> DeviceLocation:
    """Locate one device by BDF, mdev UUID or cdev path; DeviceNotFound says how to find one."""
    sysfs = Path(sysfs_root)
    kind, key = normalize_id(device_id, dev_root)
    if kind == "cdev":
        node = sysfs / "class" / "vfio-dev" / key
        if not node.exists():
            raise DeviceNotFound(f"device {device_id!r} not found: no {node}", hint=FIND_HINT)
        target = node / "device" if (node / "device").exists() else node.resolve().parent.parent
        key = target.resolve().name
        kind = "mdev" if _UUID.match(key) else "pci"
    bus_dir = sysfs / "bus" / kind / "devices" / key
    if not bus_dir.exists():
        raise DeviceNotFound(f"device {device_id!r} not found: no {bus_dir}", hint=FIND_HINT)
    return _location(kind, key, bus_dir, sysfs, Path(dev_root))


def list_devices(sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev") -> list[DeviceLocation]:
    """Every VFIO device: PCI devices bound to a vfio driver, then all mdev devices (sorted by id)."""
    sysfs, found = Path(sysfs_root), []
    for kind in ("pci", "mdev"):
        bus = sysfs / "bus" / kind / "devices"
        if not bus.is_dir():
            continue
        for entry in sorted(bus.iterdir()):
            loc = _location(kind, entry.name, entry, sysfs, Path(dev_root))
            if loc.vfio_bound:
                found.append(loc)
    return found


def _link_name(path: Path) -> str | None:
    """Last component of a sysfs symlink (driver, iommu_group, mdev_type), None if absent."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _hex_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _group_node(group: int, sysfs: Path, dev_root: Path) -> str:
    """/dev/vfio/N if that node exists, else /dev/vfio/noiommu-N for a no-IOMMU group.

    The group name alone does not decide it: mdev groups (emulated IOMMU) are also named
    'vfio-noiommu' in sysfs, yet their node is /dev/vfio/N.
    """
    plain, noiommu = dev_root / "vfio" / str(group), dev_root / "vfio" / f"noiommu-{group}"
    if plain.exists():
        return str(plain)
    try:
        name = (sysfs / "kernel" / "iommu_groups" / str(group) / "name").read_text().strip()
    except OSError:
        name = ""
    if noiommu.exists() or name == "vfio-noiommu":
        return str(noiommu)
    return str(plain)


def _cdev_node(device_dir: Path, dev_root: Path) -> str | None:
    vfio_dev = device_dir / "vfio-dev"
    names = sorted(p.name for p in vfio_dev.iterdir()) if vfio_dev.is_dir() else []
    return str(dev_root / "vfio" / "devices" / names[0]) if names else None


def _location(kind: str, key: str, bus_dir: Path, sysfs: Path, dev_root: Path) -> DeviceLocation:
    group_name = _link_name(bus_dir / "iommu_group")
    group = int(group_name) if group_name and group_name.isdigit() else None
    pci = kind == "pci"
    return DeviceLocation(
        id=key, kind=kind, driver=_link_name(bus_dir / "driver"),
        vendor_id=_hex_file(bus_dir / "vendor") if pci else None,
        device_id=_hex_file(bus_dir / "device") if pci else None,
        mdev_type=None if pci else _link_name(bus_dir / "mdev_type"),
        iommu_group=group,
        group_path=_group_node(group, sysfs, dev_root) if group is not None else None,
        cdev_path=_cdev_node(bus_dir, dev_root),
        sysfs_path=str(bus_dir.resolve()))
