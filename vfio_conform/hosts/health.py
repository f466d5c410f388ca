"""The health check a leased device passes before its first test: it opens, answers the migration
feature its profile relies on, and resets where the profile offers reset and the inventory allows it.

A device that fails it is an infrastructure problem for this run (wrong driver loaded, device
wedged by an earlier run, firmware not ready), not a conformance failure: its tests become
infra-error with the reason, and the other devices carry on.
"""
from __future__ import annotations

from ..backends.registry import open_device
from ..base.errors import VfioConformError, errno_name


def health_check(profile, device_id: str, role: str, allow_reset: bool = True) -> str | None:
    """None when the device is fit to run `profile`, else why not (one line)."""
    try:
        device = open_device(profile, device_id, role)
    except (OSError, VfioConformError) as exc:
        return f"health check: {device_id} does not open: {exc}"
    try:
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
        return f"health check: {device_id}: {exc}"
    finally:
        try:
            device.close(safe=False)
        except OSError:
            pass
