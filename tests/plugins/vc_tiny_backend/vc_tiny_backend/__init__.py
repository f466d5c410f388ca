"""A third-party backend: devices named tiny0, tiny1, ... held in memory by the sim's reference model.

It uses vfio-conform only through its public extension interface (Backend, the Transport the sim
provides) and is found by its `vfio_conform.backends` entry point. Its section:

    backend_config:
      tiny: {flags: 3, state_size: 4096}
"""
from __future__ import annotations

import re

from vfio_conform.backends.registry import Backend, check_distinct
from vfio_conform.backends.sim import open_sim
from vfio_conform.base.errors import ConfigError

NAME = re.compile(r"tiny[0-9]+")
KEYS = {"flags": (0, 1, 3, 5, 7), "state_size": range(1, 1 << 20)}


class TinyBackend(Backend):
    name = "tiny"

    def check_config(self, profile, config: dict, field: str) -> None:
        for key, value in config.items():
            if key not in KEYS:
                raise profile.error(f"{field}.{key}", f"unknown tiny key {key!r}",
                                    f"expected one of: {', '.join(sorted(KEYS))}")
            if isinstance(value, bool) or not isinstance(value, int) or value not in KEYS[key]:
                raise profile.error(f"{field}.{key}", f"{value!r} is not a valid {key}")

    def check_devices(self, profile, device_ids: tuple[str, ...]) -> str:
        for device_id in device_ids:
            if not NAME.fullmatch(device_id):
                raise ConfigError(f"tiny device {device_id!r} is not named tinyN")
        check_distinct(device_ids, device_ids)
        return "tiny-driver"

    def open(self, profile, device_id: str, role: str):
        config = dict(profile.backend_config.get(self.name) or {})
        return open_sim(config, device_id)


BACKEND = TinyBackend()
