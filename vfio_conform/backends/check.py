"""Check a profile's devices and its backend section before any device is opened.

Everything here is refused with a ConfigError (a usage error: nothing is opened, nothing is
recorded): a `sim:` section the sim would reject, a device id the sim does not define, a host
device that does not exist or is not bound to a VFIO driver, the same device named twice.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import ConfigError
from ..profile.schema import Profile


#: What SimConfig raises for a value of the wrong shape (it reads plain YAML data).
_REFUSED = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def check_devices(profile: Profile, device_ids: tuple[str, ...], sysfs_root: str | Path = "/sys",
                  dev_root: str | Path = "/dev") -> str:
    """Validate the profile's backend section and its devices; returns the driver name(s)."""
    if profile.backend == "sim":
        check_sim_section(profile)
        _check_sim_ids(profile, device_ids)
        return "sim"
    from .kernel.sysfs import FIND_HINT, resolve
    seen: dict[str, str] = {}
    drivers = set()
    for device_id in device_ids:
        loc = resolve(device_id, sysfs_root, dev_root)
        if loc.id in seen:
            raise ConfigError(_twice(device_id, seen[loc.id], loc.id))
        seen[loc.id] = device_id
        if not loc.vfio_bound:
            raise ConfigError(f"device {device_id!r} is bound to {loc.driver or 'no driver'}, "
                              f"not to a VFIO driver", hint=FIND_HINT)
        drivers.add(loc.driver or "?")
    return ",".join(sorted(drivers))


def _twice(given: str, first: str, canonical: str) -> str:
    same = f" ({first!r} and {given!r} are both {canonical})" if first != given else ""
    return (f"device {canonical} is named twice{same}: the source and the destination of a "
            f"migration must be two different devices")


def _check_sim_ids(profile: Profile, device_ids: tuple[str, ...]) -> None:
    """A sim profile runs only the instances it defines in `devices:` (any other name is a typo)."""
    for i, device_id in enumerate(device_ids):
        if device_id not in profile.devices:
            raise profile.error("devices", f"sim device {device_id!r} is not defined by profile "
                                f"{profile.name!r}", f"its devices are: {', '.join(profile.devices)}")
        if device_id in device_ids[:i]:
            raise ConfigError(_twice(device_id, device_id, device_id))


def check_sim_section(profile: Profile) -> None:
    """Validate `sim:` as the sim will read it (keys, fault knobs and their parameters), file:line."""
    from .sim.config import SimConfig
    data = profile.sim
    _sim_keys(profile, "sim", data)
    per_device = data.get("per_device") or {}
    if not isinstance(per_device, dict):
        raise profile.error("sim.per_device", "expected a mapping {device id: {sim keys...}}")
    for dev, override in per_device.items():
        field = f"sim.per_device.{dev}"
        if dev not in profile.devices:
            raise profile.error(field, f"{dev!r} is not one of the profile's devices",
                                f"devices: {', '.join(profile.devices) or 'none'}")
        if not isinstance(override, dict):
            raise profile.error(field, f"expected a mapping of sim keys, got {override!r}")
        if "per_device" in override:
            raise profile.error(f"{field}.per_device", "per_device cannot be nested")
        _sim_keys(profile, field, override)
    base = {k: v for k, v in data.items() if k != "per_device"}
    sections = [("sim", base, base)] + [(f"sim.per_device.{dev}", override, {**base, **override})
                                        for dev, override in per_device.items()]
    for where, own, merged in sections:
        try:
            SimConfig.from_dict(merged)
        except _REFUSED as exc:
            message = str(exc) if isinstance(exc, ValueError) else f"the sim cannot use this value ({exc})"
            raise profile.error(_culprit(own, where), message) from None


def _sim_keys(profile: Profile, where: str, data: dict) -> None:
    from .sim.config import SimConfig
    from .sim.faults import FAULTS
    known = {f.name for f in dataclasses.fields(SimConfig)}
    for key in data:
        if key not in known:
            raise profile.error(f"{where}.{key}", f"unknown sim key {key!r}",
                                f"expected one of: {', '.join(sorted(known))}")
    faults = data.get("faults")
    if faults is None:
        return
    if not isinstance(faults, list):
        raise profile.error(f"{where}.faults", f"expected a list of fault knobs, got {faults!r}")
    for i, spec in enumerate(faults):
        field = f"{where}.faults.{i}"
        spec = {"name": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise profile.error(field, f"a fault knob is a name or {{name: ..., params}}, got {spec!r}")
        fault = FAULTS.get(spec["name"])
        if fault is None:
            raise profile.error(f"{field}.name", f"unknown sim fault {spec['name']!r}",
                                "the knobs are listed in vfio_conform/backends/sim/faults*.py")
        for key, value in spec.items():
            if key == "name":
                continue
            if key not in fault.params:
                raise profile.error(f"{field}.{key}", f"sim fault {fault.name!r} has no parameter {key!r}",
                                    f"its parameters: {', '.join(sorted(fault.params)) or 'none'}")
            want = type(fault.params[key])
            if isinstance(value, bool) != (want is bool) or not isinstance(value, want):
                kind = _KIND.get(want, want.__name__)
                raise profile.error(f"{field}.{key}", f"expected {kind}, got {value!r}")


def _culprit(data: dict, where: str) -> str:
    """The first key of `data` the sim refuses on its own (else the section itself)."""
    from .sim.config import SimConfig
    for key, value in data.items():
        if key in ("per_device", "faults"):
            continue
        try:
            SimConfig.from_dict({key: value})
        except _REFUSED:
            return f"{where}.{key}"
    return where


_KIND = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}
