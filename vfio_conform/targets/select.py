"""The profiles a run selects and the devices each runs against, every one checked before any
device is touched (ConfigError): `run`, `profile check` and the pytest plugin all select through here."""
from __future__ import annotations

import dataclasses
import os
import socket

from ..backends import registry
from ..base.constants import HOST_ENV
from ..base.errors import ConfigError
from ..profile import find_profile
from ..profile.schema import Profile
from .waivers import check_waivers


@dataclasses.dataclass
class Target:
    """A profile and the device ids it runs against."""

    profile: Profile
    device_ids: tuple[str, ...]
    driver: str = ""


def run_host() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def check_profile(profile: Profile) -> None:
    """What loading a profile cannot check alone: waivers against the suites, its backend section."""
    check_waivers(profile)
    registry.check_profile(profile)


def select_targets(names: list[str], device_values: list[str], inventory=None,
                   kernel_release: str | None = None) -> dict[str, Target]:
    """Profiles and their devices, every one checked (ConfigError); nothing is opened. With
    `kernel_release`, each profile is the one for that kernel (Profile.for_kernel)."""
    if inventory is not None:
        return _inventory_targets(names, device_values, inventory, kernel_release)
    plain, scoped = _split_devices(device_values)
    if plain and len(names) > 1:
        raise ConfigError("a plain --vc-device needs exactly one --vc-profile "
                          "(with several profiles, write PROFILE=ID)")
    targets: dict[str, Target] = {}
    for name in names:
        profile = find_profile(name)
        if kernel_release is not None:
            profile = profile.for_kernel(kernel_release)
        if profile.name in targets:
            raise ConfigError(f"profile {profile.name!r} selected twice")
        check_profile(profile)
        ids = plain or scoped.pop(profile.name, ()) or profile.devices
        if not ids:
            raise ConfigError(f"profile {profile.name!r} names no device", profile.path,
                              hint="pass --device ID (list candidates with 'vfio-conform devices')")
        targets[profile.name] = Target(profile, ids, registry.check_devices(profile, ids))
    if scoped:
        raise ConfigError(f"--vc-device names profile(s) not selected: {', '.join(sorted(scoped))}")
    return targets


def _inventory_targets(names, device_values, inventory, kernel_release=None) -> dict[str, Target]:
    """Each selected profile with every inventory device that runs it (leased per worker later)."""
    if device_values:
        raise ConfigError("--device and --inventory exclude each other: the inventory names the devices")
    targets: dict[str, Target] = {}
    for name in names:
        profile = inventory.profiles.get(name) or find_profile(name)
        if kernel_release is not None:
            profile = profile.for_kernel(kernel_release)
        devices = [d for d in inventory.devices if d.profile_name == profile.name]
        if not devices:
            raise ConfigError(f"profile {profile.name!r} runs on no device of the inventory", inventory.path)
        check_profile(profile)
        targets[profile.name] = Target(profile, tuple(d.device_id for d in devices),
                                       ",".join(sorted({d.driver or profile.backend for d in devices})))
    return targets


def _split_devices(values) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Plain device ids, and PROFILE=ID ones grouped by profile (order kept: source first)."""
    plain, scoped = [], {}
    for value in values:
        profile, sep, device = value.partition("=")
        if sep:
            scoped.setdefault(profile, ())
            scoped[profile] += (device,)
        else:
            plain.append(value)
    return tuple(plain), scoped
