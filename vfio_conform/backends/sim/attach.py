"""Hook the issue-5 extensions into a new SimDevice: region fault knobs and the v1 migration region."""
from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .v1 import V1Region

if TYPE_CHECKING:
    from .device import SimDevice


def attach(device: "SimDevice") -> V1Region | None:
    """Give every region the device's knobs; swap in the v1 migration region if configured."""
    for region in device.regions:
        region.faults = device.faults
    cfg = device.config.v1
    if cfg is None:
        return None
    device.regions[cfg.index].close()
    region = V1Region(cfg.spec(), device.name, random.Random(0), device, cfg)
    region.faults = device.faults
    device.regions[cfg.index] = region
    return region
