"""The sim as a registered backend: its `backend_config.sim` schema, its device names, its factory."""
from __future__ import annotations

import dataclasses

from ..registry import Backend, check_distinct
from .config import SimConfig
from .faults import FAULTS
from .kmsg import SimKernelLog
from .serverlog import SimServerLog
from . import faults_consumers
from .transport import SimTransport

#: What SimConfig raises for a value of the wrong shape (it reads plain YAML data).
_REFUSED = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_KIND = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}


def open_sim(profile_sim_config: dict | None, device_id: str) -> SimTransport:
    """A fresh sim device named `device_id` (RUNNING, contents seeded from the config or the id)."""
    config = SimConfig.from_dict(profile_sim_config, device_id)
    return faults_consumers.attach(SimTransport(config, device_id))


class SimBackend(Backend):
    """In-process reference devices; a profile's `devices:` are the instances it defines.

    Section `backend_config.sim`: SimConfig's keys (flags, state_size, faults, regions, ...) plus
    `per_device: {device id: {keys...}}` overriding them for one instance.
    """

    name = "sim"

    def check_config(self, profile, config: dict, field: str) -> None:
        """Validate the section as the sim will read it (keys, fault knobs and parameters), file:line."""
        _sim_keys(profile, field, config)
        per_device = config.get("per_device") or {}
        if not isinstance(per_device, dict):
            raise profile.error(f"{field}.per_device", "expected a mapping {device id: {sim keys...}}")
        for dev, override in per_device.items():
            where = f"{field}.per_device.{dev}"
            if dev not in profile.devices:
                raise profile.error(where, f"{dev!r} is not one of the profile's devices",
                                    f"devices: {', '.join(profile.devices) or 'none'}")
            if not isinstance(override, dict):
                raise profile.error(where, f"expected a mapping of sim keys, got {override!r}")
            if "per_device" in override:
                raise profile.error(f"{where}.per_device", "per_device cannot be nested")
            _sim_keys(profile, where, override)
        base = {k: v for k, v in config.items() if k != "per_device"}
        sections = [(field, base, base)] + [(f"{field}.per_device.{dev}", override, {**base, **override})
                                            for dev, override in per_device.items()]
        for where, own, merged in sections:
            try:
                SimConfig.from_dict(merged)
            except _REFUSED as exc:
                message = str(exc) if isinstance(exc, ValueError) else f"the sim cannot use this value ({exc})"
                raise profile.error(_culprit(own, where), message) from None

    def check_devices(self, profile, device_ids: tuple[str, ...]) -> str:
        """A sim profile runs only the instances it defines in `devices:` (any other name is a typo)."""
        for device_id in device_ids:
            if device_id not in profile.devices:
                raise profile.error("devices", f"sim device {device_id!r} is not defined by profile "
                                    f"{profile.name!r}", f"its devices are: {', '.join(profile.devices)}")
        check_distinct(device_ids, device_ids)
        return "sim"

    def open(self, profile, device_id: str, role: str):
        return open_sim(profile.backend_config.get(self.name) or {}, device_id)

    def kernel_log(self):
        """The sim's own log: empty unless a fault knob makes a device warn."""
        return SimKernelLog()

    def server_log(self, device_id: str):
        """The sim's "server output": empty unless a fault knob prints a sanitizer report."""
        return SimServerLog()


def _sim_keys(profile, where: str, data: dict) -> None:
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
    for key, value in data.items():
        if key in ("per_device", "faults"):
            continue
        try:
            SimConfig.from_dict({key: value})
        except _REFUSED:
            return f"{where}.{key}"
    return where


BACKEND = SimBackend()
