"""Capture each selected profile's run environment (kernel, driver, firmware, identity, IOMMU mode)."""
from __future__ import annotations

import os

from .. import __version__
from ..build import harness_build
from ..backends import registry
from ..results.environment import NOT_EXPOSED, DeviceEnvironment, Environment
from ..results.identity import profile_hash


def capture(ctx) -> dict[str, Environment]:
    """profile name -> Environment of its run; each device described by the profile's backend."""
    release, cmdline = os.uname().release, kernel_cmdline()
    out = {}
    for name, target in ctx.targets.items():
        backend = registry.get(target.profile.backend)
        out[name] = Environment(
            kernel_release=release, kernel_cmdline=cmdline, harness_version=__version__,
            profile_hash=profile_hash(target.profile.path), backend=target.profile.backend,
            devices=tuple(_describe(backend, target.profile, d) for d in target.device_ids),
            harness_build=str(harness_build()))
    return out


def _describe(backend, profile, device_id: str) -> DeviceEnvironment:
    """The backend's description; a backend that fails to describe a device does not stop the run."""
    try:
        return backend.describe_device(profile, device_id)
    except Exception as exc:    # noqa: BLE001 - a third-party backend's bug: recorded, never fatal
        return DeviceEnvironment.uniform(device_id, f"unknown ({type(exc).__name__}: {exc})")


def kernel_cmdline(path: str = "/proc/cmdline") -> str:
    try:
        with open(path) as f:
            return f.read().strip() or NOT_EXPOSED
    except OSError:
        return NOT_EXPOSED
