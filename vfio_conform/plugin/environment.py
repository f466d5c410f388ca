"""Capture each selected profile's run environment (kernel, driver, firmware, identity, IOMMU mode)."""
from __future__ import annotations

import os

from .. import __version__
from ..backends import registry
from ..results.environment import NOT_EXPOSED, Environment
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
            devices=tuple(backend.describe_device(target.profile, d) for d in target.device_ids))
    return out


def kernel_cmdline(path: str = "/proc/cmdline") -> str:
    try:
        with open(path) as f:
            return f.read().strip() or NOT_EXPOSED
    except OSError:
        return NOT_EXPOSED
