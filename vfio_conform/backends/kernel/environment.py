"""A host VFIO device's environment from sysfs: driver module, version, srcversion, firmware,
PCI identity and the IOMMU mode the kernel backend opens it with. Reads only; opens no device node."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ...base.errors import ConfigError, VfioConformError
from ...results.environment import NOT_EXPOSED, DeviceEnvironment
from .sysfs import DeviceLocation, resolve

#: The kernel backend's open paths (backends/kernel choose_path) as an IOMMU mode.
IOMMU_MODES = {"group": "type1 container", "noiommu": "no-IOMMU", "cdev": "iommufd cdev"}
#: sysfs attributes some drivers use for their device's firmware version (checked in this order,
#: in the device directory and in its netdev/infiniband class children).
FIRMWARE_FILES = ("fw_version", "firmware_version", "fw_ver", "fw_rev")
#: Seconds `lspci` / `ethtool` may take.
TOOL_TIMEOUT_S = 10


def describe(device_id: str, sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev",
             path: str = "auto") -> DeviceEnvironment:
    """The environment of one device (NOT_EXPOSED for what the host does not show)."""
    try:
        loc = resolve(device_id, sysfs_root, dev_root)
    except VfioConformError as exc:
        return DeviceEnvironment.uniform(device_id, f"unknown ({exc})")
    dev_dir = Path(loc.sysfs_path) if loc.sysfs_path else None
    module_dir = _module_dir(loc, dev_dir, Path(sysfs_root))
    return DeviceEnvironment(
        device=device_id, driver=loc.driver or "none",
        module=module_dir.name if module_dir else "built-in or none",
        version=_read(module_dir / "version") if module_dir else NOT_EXPOSED,
        srcversion=_read(module_dir / "srcversion") if module_dir else NOT_EXPOSED,
        firmware=_firmware(dev_dir, _pci_dir(loc, dev_dir)),
        pci_identity=_identity(loc, dev_dir), iommu_mode=iommu_mode(loc, path, dev_root))


def iommu_mode(loc: DeviceLocation, path: str = "auto", dev_root: str | Path = "/dev") -> str:
    """The open path the kernel backend takes for `loc` (the same choice `open_kernel` makes)."""
    from . import choose_path
    try:
        return IOMMU_MODES[choose_path(loc, path, dev_root)]
    except ConfigError as exc:
        return f"unavailable ({exc})"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip() or NOT_EXPOSED
    except OSError:
        return NOT_EXPOSED


def _module_dir(loc: DeviceLocation, dev_dir: Path | None, sysfs: Path) -> Path | None:
    """/sys/module/<module> of the device's driver; for an mdev whose driver has no module link,
    the parent device's driver (the vendor driver that created the mdev)."""
    if dev_dir is None:
        return None
    candidates = [dev_dir / "driver"]
    if loc.kind == "mdev":
        candidates.append(dev_dir.parent / "driver")
    for driver in candidates:
        module = driver / "module"
        if module.exists():
            return module.resolve()
    if loc.driver and (sysfs / "module" / loc.driver).is_dir():
        return sysfs / "module" / loc.driver
    return None


def _pci_dir(loc: DeviceLocation, dev_dir: Path | None) -> Path | None:
    """The PCI function behind the device: itself, or an mdev's parent when that is PCI."""
    if dev_dir is None:
        return None
    if loc.kind == "pci":
        return dev_dir
    parent = dev_dir.parent
    return parent if (parent / "vendor").exists() and (parent / "class").exists() else None


def _firmware(dev_dir: Path | None, pci_dir: Path | None) -> str:
    for base in dict.fromkeys(d for d in (dev_dir, pci_dir) if d is not None):
        dirs = [base, *sorted(base.glob("infiniband/*")), *sorted(base.glob("net/*"))]
        for d in dirs:
            for name in FIRMWARE_FILES:
                value = _read(d / name)
                if value != NOT_EXPOSED:
                    return value
        for net in sorted(base.glob("net/*")):
            value = _ethtool_firmware(net.name)
            if value:
                return value
    return NOT_EXPOSED


def _ethtool_firmware(ifname: str) -> str:
    tool = shutil.which("ethtool")
    if tool is None:
        return ""
    try:
        out = subprocess.run([tool, "-i", ifname], capture_output=True, text=True,
                             timeout=TOOL_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "firmware-version" and value.strip() not in ("", "N/A"):
            return value.strip()
    return ""


def _identity(loc: DeviceLocation, dev_dir: Path | None) -> str:
    pci = _pci_dir(loc, dev_dir)
    head = f"mdev type {loc.mdev_type or '?'} on {dev_dir.parent.name if dev_dir else '?'}\n" \
        if loc.kind == "mdev" else ""
    if pci is None:
        return head.strip() or NOT_EXPOSED
    lspci = shutil.which("lspci")
    if lspci is not None:
        try:
            proc = subprocess.run([lspci, "-vv", "-nn", "-s", pci.name], capture_output=True,
                                  text=True, timeout=TOOL_TIMEOUT_S)
            if proc.returncode == 0 and proc.stdout.strip():
                return head + proc.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    fields = [f"{name}={_read(pci / name)}" for name in
              ("vendor", "device", "subsystem_vendor", "subsystem_device", "class", "revision")]
    return head + f"{pci.name} " + " ".join(fields)

