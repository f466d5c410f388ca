"""The health check a leased device passes before its first test: it opens, answers the migration
feature its profile relies on, and resets where the profile offers reset and the inventory allows it.

A device that fails it is an infrastructure problem for this run (wrong driver loaded, device
wedged by an earlier run, firmware not ready), not a conformance failure: its tests become
infra-error with the reason, and the other devices carry on.
"""
from __future__ import annotations

from ..backends.registry import open_device
from ..base.errors import VfioConformError, errno_name
from ..base.interrupts import deferred, raise_if_terminated


def health_check(profile, device_id: str, role: str, allow_reset: bool = True) -> str | None:
    """None when the device is fit to run `profile`, else why not (one line)."""
    device = None
    try:
        # opened inside this `try`, so its `finally` closes the device whatever comes, a SIGTERM
        # included: one arriving during the open is acted on once the device is held here (an open
        # device nobody closes would keep its driver from ever being given back: the kernel's
        # unbind waits for the last user)
        with deferred():
            device = open_device(profile, device_id, role)
        raise_if_terminated()
        if profile.protocol == "v2":
            code, _ = device.try_migration_flags()
            if code:
                return (f"health check: {device_id}: VFIO_DEVICE_FEATURE(GET MIGRATION) failed with "
                        f"{errno_name(code)} (profile {profile.name} expects the migration uAPI)")
        if allow_reset and profile.reset:
            code = device.try_reset()
            if code:
                return f"health check: {device_id}: VFIO_DEVICE_RESET failed with {errno_name(code)}"
        return None
    except (OSError, VfioConformError) as exc:
        if device is None:
            return f"health check: {device_id} does not open: {exc}"
        return f"health check: {device_id}: {exc}"
    finally:
        if device is not None:
            try:
                device.close(safe=False)
            except OSError:
                pass
