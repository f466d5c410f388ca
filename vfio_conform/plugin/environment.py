"""Capture each selected profile's run environment (kernel, driver, firmware, identity, IOMMU mode)."""
from __future__ import annotations

import os

from .. import __version__
from ..base.build import harness_build
from ..backends import registry
from ..results.environment import NOT_EXPOSED, DeviceEnvironment, Environment
from ..results.identity import profile_hash


def capture(ctx) -> dict[str, Environment]:
    """profile name -> Environment of its run; each device described by the profile's backend."""
    release, cmdline = os.uname().release, kernel_cmdline()
    config = kernel_config(release)
    out = {}
    for name, target in ctx.targets.items():
        backend = registry.get(target.profile.backend)
        out[name] = Environment(
            kernel_release=release, kernel_cmdline=cmdline, harness_version=__version__,
            profile_hash=profile_hash(target.profile.path), backend=target.profile.backend,
            devices=tuple(_describe(backend, target.profile, d) for d in target.device_ids),
            harness_build=str(harness_build()), kernel_config=config)
    return out


def _describe(backend, profile, device_id: str) -> DeviceEnvironment:
    """The backend's description; a backend that fails to describe a device does not stop the run."""
    try:
        return backend.describe_device(profile, device_id)
    except Exception as exc:    # noqa: BLE001 - a third-party backend's bug: recorded, never fatal
        return DeviceEnvironment.uniform(device_id, f"unknown ({type(exc).__name__}: {exc})")


#: The configuration options a VFIO migration run depends on (shown beside the config's hash).
CONFIG_OPTIONS = ("CONFIG_VFIO", "CONFIG_VFIO_PCI", "CONFIG_VFIO_PCI_CORE", "CONFIG_VFIO_MDEV",
                  "CONFIG_VFIO_NOIOMMU", "CONFIG_VFIO_CONTAINER", "CONFIG_VFIO_DEVICE_CDEV",
                  "CONFIG_IOMMUFD", "CONFIG_IOMMUFD_DRIVER", "CONFIG_IOMMUFD_VFIO_CONTAINER")


def kernel_config(release: str, paths: tuple[str, ...] | None = None) -> str:
    """'sha256:<12 hex> /boot/config-<release>; CONFIG_VFIO=m ...' (NOT_EXPOSED when unreadable)."""
    import gzip
    import hashlib
    for path in paths or (f"/boot/config-{release}", "/proc/config.gz"):
        try:
            with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        values = {}
        for line in data.decode(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name in CONFIG_OPTIONS:
                values[name] = value
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                name = line[2:].split()[0]
                if name in CONFIG_OPTIONS:
                    values[name] = "n"
        options = " ".join(f"{n}={values[n]}" for n in CONFIG_OPTIONS if n in values)
        return f"sha256:{hashlib.sha256(data).hexdigest()[:12]} {path}" + (f"; {options}" if options else "")
    return NOT_EXPOSED


def kernel_cmdline(path: str = "/proc/cmdline") -> str:
    try:
        with open(path) as f:
            return f.read().strip() or NOT_EXPOSED
    except OSError:
        return NOT_EXPOSED
