"""Open a profile's device through its backend and wrap it in the one Device interface."""
from __future__ import annotations

from ..device import Device
from ..profile.schema import Profile
from .base import backend


def open_device(profile: Profile, device_id: str) -> Device:
    """Open `device_id` with the profile's backend; the Device is returned in whatever state it was."""
    factory = backend(profile.backend)
    if profile.backend == "sim":
        transport = factory(profile.sim, device_id)
    else:
        transport = factory(device_id, io_timeout=profile.timeouts.io)
    return Device(transport, io_timeout=profile.timeouts.io)
